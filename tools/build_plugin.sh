#!/usr/bin/env bash
# Build a Docker managed plugin directory: build/plugin/pyclone-<arch>/{config.json,rootfs/}.
# The rootfs comes from Debian packages (debootstrap minbase + python3 + fuse3), trimmed,
# with the zipapp at /pyclone-docker.pyz. Then:
#   docker plugin create pyclone/pyclone:<arch> build/plugin/pyclone-<arch>
# Usage: tools/build_plugin.sh [amd64|arm64|armv7]   (needs root, debootstrap; dist/*.pyz built)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-amd64}
case "$arch" in
    amd64) deb=amd64 ;; arm64) deb=arm64 ;; armv7) deb=armhf ;;
    *) echo "unknown arch $arch" >&2; exit 2 ;;
esac
out=build/plugin/pyclone-$arch
cache=$PWD/build/plugin/rootfs-cache-$deb
pyz=dist/pyclone-docker-$arch.pyz
[ -f "$pyz" ] || { echo "$pyz missing: run make zipapp" >&2; exit 1; }
if [ ! -x "$cache/usr/bin/python3" ]; then
    rm -rf "$cache"
    debootstrap --arch="$deb" --variant=minbase --include=python3,fuse3,ca-certificates \
        bookworm "$cache" http://deb.debian.org/debian
    # nothing of apt, docs, locales or man pages is needed at run time
    rm -rf "$cache"/var/lib/apt/lists/* "$cache"/var/cache/apt/* "$cache"/usr/share/doc/* \
        "$cache"/usr/share/man/* "$cache"/usr/share/locale/* "$cache"/usr/share/info/*
fi
rm -rf "$out"
mkdir -p "$out"
cp -a "$cache" "$out/rootfs"
mkdir -p "$out/rootfs/run/docker/plugins" "$out/rootfs/mnt" "$out/rootfs/data/config" "$out/rootfs/data/cache"
echo user_allow_other >> "$out/rootfs/etc/fuse.conf"
install -m 0755 "$pyz" "$out/rootfs/pyclone-docker.pyz"
cp tools/plugin-config.json "$out/config.json"
du -sh "$out/rootfs" | awk '{print "rootfs size: " $1}'
