#!/usr/bin/env bash
# Fetch and build pjdfstest (the POSIX suite bench/posix_suite.py runs) in DIR (default
# /var/tmp/pjdfstest), at a pinned revision, installing what the build and `prove` need.
#   bash bench/get_pjdfstest.sh [DIR]
#   PJDFSTEST_GIT  where to clone from (default https://github.com/pjd/pjdfstest; a local mirror works)
#   PJDFSTEST_REV  the commit (default: the one every table in bench/results-* was made with)
#   PYCLONE_CI_NO_INSTALL=1  never run apt-get
set -euo pipefail
dir=${1:-${PJDFSTEST:-/var/tmp/pjdfstest}}
git_url=${PJDFSTEST_GIT:-https://github.com/pjd/pjdfstest}
rev=${PJDFSTEST_REV:-85a8aea9e685999ef0540392fd80535f873d7ff7}
if [ -x "$dir/pjdfstest" ] && [ "$(cat "$dir/.source-rev" 2>/dev/null)" = "$rev" ]; then
    echo "pjdfstest $rev already built in $dir"
    exit 0
fi
need=(git autoconf automake gcc make perl)  # perl: prove; autoconf+automake: autoreconf
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "${PYCLONE_CI_NO_INSTALL:-0}" = 1 ]; then
        echo "pjdfstest needs: ${missing[*]} (PYCLONE_CI_NO_INSTALL=1: not installing)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
tmp="$dir.tmp.$$"
trap 'rm -rf "$tmp"' EXIT
rm -rf "$tmp"
git clone -q "$git_url" "$tmp"
git -C "$tmp" -c advice.detachedHead=false checkout -q "$rev"
(cd "$tmp" && autoreconf -ifs >/dev/null 2>&1 && ./configure -q >/dev/null && make -s pjdfstest >/dev/null)
echo "$rev" > "$tmp/.source-rev"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "pjdfstest $rev built in $dir"
