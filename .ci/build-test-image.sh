#!/usr/bin/env bash
# Build the e2e test image pyclone-test-bb:latest with `docker import` from the
# host's static busybox (no registry needed).
#
#   .ci/build-test-image.sh [--force]
#
# Idempotent: does nothing if the image exists, unless --force.
# Env: BUSYBOX (path of the static busybox, default /bin/busybox),
#      TEST_IMAGE (default pyclone-test-bb:latest),
#      PYCLONE_CI_NO_INSTALL=1 to never run apt-get.
set -euo pipefail

IMAGE=${TEST_IMAGE:-pyclone-test-bb:latest}
BUSYBOX=${BUSYBOX:-/bin/busybox}
FORCE=0

log() { printf '[build-test-image] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for arg in "$@"; do
    case $arg in
        --force | -f) FORCE=1 ;;
        -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
        *) die "unknown argument: $arg" ;;
    esac
done

command -v docker >/dev/null 2>&1 || die "docker CLI not found (run .ci/start-dockerd.sh first)"
timeout 20 docker info >/dev/null 2>&1 || die "dockerd is not reachable (run .ci/start-dockerd.sh first)"

if [ "$FORCE" -eq 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
    log "$IMAGE exists already (use --force to rebuild)"
    exit 0
fi

if [ ! -e "$BUSYBOX" ] && [ "$BUSYBOX" = /bin/busybox ] && [ ! -e /usr/bin/busybox ]; then
    if [ "${PYCLONE_CI_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" -eq 0 ]; then
        log "installing busybox-static"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || true
        apt-get install -y -qq --no-install-recommends busybox-static || die "apt-get install busybox-static failed"
    fi
fi
if [ ! -e "$BUSYBOX" ] && [ -e /usr/bin/busybox ]; then
    BUSYBOX=/usr/bin/busybox
fi
[ -x "$BUSYBOX" ] || die "$BUSYBOX not found; install the Debian package busybox-static"

# The image has no libc, so busybox must be statically linked.  Detect a
# PT_INTERP program header (dynamic executables have one) without relying
# on `file` being installed.
is_dynamic() {
    if command -v readelf >/dev/null 2>&1; then
        readelf -l "$1" 2>/dev/null | grep -q 'INTERP'
    elif command -v file >/dev/null 2>&1; then
        file -L "$1" | grep -q 'dynamically linked'
    else
        # Fall back on the dynamic loader's own opinion.
        ldd "$1" 2>&1 | grep -q '=>'
    fi
}
if is_dynamic "$BUSYBOX"; then
    die "$BUSYBOX is dynamically linked and cannot run inside a scratch image.
    Install the static build instead:  apt-get install busybox-static
    (it replaces the dynamic 'busybox' package), or set BUSYBOX=/path/to/static/busybox."
fi

ROOT=$(mktemp -d /tmp/pyclone-bbroot.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT

mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/data" "$ROOT/tmp" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev"
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
chmod 755 "$ROOT/bin/busybox"

APPLETS="sh ls cat echo sleep id stat touch mkdir df mount umount grep dd sha256sum md5sum wc rm mv cp
         head tail sync find du sort uniq tr cut sed awk env printf test [ seq ln chmod chown date
         hostname ps kill true false tee xargs basename dirname readlink realpath truncate rmdir uname"
# Only link applets this busybox actually has.  (Read the list into a
# variable: `busybox --list | grep -q` can die of SIGPIPE under pipefail.)
HAVE=" $("$BUSYBOX" --list 2>/dev/null | tr '\n' ' ') "
for a in $APPLETS; do
    case $HAVE in *" $a "*) ln -s busybox "$ROOT/bin/$a" ;; esac
done
for a in sh ls cat echo sleep id stat touch mkdir df mount grep dd sha256sum wc rm mv cp head tail sync; do
    [ -L "$ROOT/bin/$a" ] || die "busybox at $BUSYBOX lacks the required applet '$a'"
done

echo 'root:x:0:0:root:/:/bin/sh' >"$ROOT/etc/passwd"
echo 'root:x:0:' >"$ROOT/etc/group"
echo hello >"$ROOT/data/from-image.txt"

old_id=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
log "importing $IMAGE from $BUSYBOX"
tar --numeric-owner --owner=0 --group=0 -C "$ROOT" -c . |
    docker import \
        -c 'ENV PATH=/bin' \
        -c 'CMD ["/bin/sh"]' \
        -m "pyclone-docker e2e test image (busybox-static)" \
        - "$IMAGE" >/dev/null

# Smoke test.
out=$(docker run --rm "$IMAGE" cat /data/from-image.txt)
[ "$out" = hello ] || die "smoke test failed: got '$out'"
# --force: drop the previous image if nothing else uses it (no dangling layers).
new_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
log "built $IMAGE"
