#!/usr/bin/env bash
# Build a Docker managed plugin directory: build/plugin/pyclone-<arch>/{config.json,rootfs/}.
#
# The rootfs comes from Debian packages: a debootstrap bookworm minbase with python3, fuse3,
# ca-certificates and openssh-client (the sftp backend runs ssh), upgraded from bookworm-security/-updates, trimmed (apt itself, docs, man pages,
# locales, logs), with the zipapp at /pyclone-docker.pyz. config.json is
# tools/plugin-config.json (rclone's managed-plugin contract). Then, as root:
#
#   mkdir -p /var/lib/docker-plugins/pyclone/config /var/lib/docker-plugins/pyclone/cache
#   docker plugin create pyclone/pyclone:<arch> build/plugin/pyclone-<arch>
#   docker plugin enable --timeout 60 pyclone/pyclone:<arch>
#
# Usage: tools/build_plugin.sh [amd64|arm64|armv7]     (default: this interpreter's arch)
# Needs root, debootstrap and dist/pyclone-docker-<arch>.pyz (`make plugin` builds both).
# A foreign arch runs the packages' scripts under qemu-user-static (binfmt_misc), slowly.
# The debootstrapped tree is cached in build/plugin/rootfs-cache-<debian arch>; `make
# plugin-clean` (or PLUGIN_FRESH=1) starts over. DEBIAN_MIRROR overrides deb.debian.org.
set -euo pipefail
cd "$(dirname "$0")/.."

host_arch() {
    python3 -c "import os, struct; m = os.uname().machine; b = struct.calcsize('P') * 8; \
print('amd64' if m == 'x86_64' else 'arm64' if b == 64 else 'armv7')"
}
arch=${1:-$(host_arch)}
case "$arch" in
    amd64) deb=amd64 qemu= ;;
    arm64) deb=arm64 qemu=qemu-aarch64 ;;
    armv7) deb=armhf qemu=qemu-arm ;;
    *) echo "unknown arch $arch (amd64, arm64, armv7)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "build_plugin.sh must run as root (debootstrap, device nodes)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
pyz=dist/pyclone-docker-$arch.pyz
[ -f "$pyz" ] || { echo "$pyz missing: run make zipapp (or make plugin)" >&2; exit 1; }
if [ "$arch" != "$(host_arch)" ] && [ ! -e "/proc/sys/fs/binfmt_misc/$qemu" ]; then
    echo "building a $arch rootfs here needs qemu-user-static ($qemu in binfmt_misc)" >&2
    exit 1
fi

mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,fuse3,ca-certificates,openssh-client
out=build/plugin/pyclone-$arch
cache=$PWD/build/plugin/rootfs-cache-$deb
stamp="bookworm minbase $packages $mirror, upgraded, apt purged"

# ---- the Debian tree (cached: debootstrap takes minutes, much longer under qemu) ----
if [ "${PLUGIN_FRESH:-0}" = 1 ] || [ "$(cat "$cache.stamp" 2>/dev/null)" != "$stamp" ] \
        || [ ! -x "$cache/usr/bin/python3" ]; then
    rm -rf "$cache" "$cache.stamp"
    debootstrap --arch="$deb" --variant=minbase --include="$packages" bookworm "$cache" "$mirror"
    # point releases and security fixes (openssl, python3.11) on top of the bookworm snapshot
    cat > "$cache/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security} bookworm-security main
EOF
    cp /etc/resolv.conf "$cache/etc/resolv.conf"
    chroot "$cache" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
        sh -c 'apt-get update -qq && apt-get -y -qq -o Dpkg::Options::=--force-confold dist-upgrade \
               && apt-get clean' >/dev/null
    # the rootfs is rebuilt, never updated in place: apt goes, and so do the ext2 tools
    chroot "$cache" dpkg --purge apt libapt-pkg6.0 e2fsprogs libext2fs2 logsave libss2 >/dev/null
    # nothing of apt's lists and caches, docs, translations, man pages or logs is needed at run time
    rm -rf "$cache"/var/lib/apt/lists/* "$cache"/var/cache/apt/* "$cache"/var/cache/debconf/*-old \
        "$cache"/var/lib/dpkg/*-old "$cache"/usr/share/doc/* "$cache"/usr/share/man/* \
        "$cache"/usr/share/info/* "$cache"/usr/share/locale/* "$cache"/usr/share/lintian \
        "$cache"/usr/share/bug "$cache"/usr/share/bash-completion "$cache"/usr/lib/python3.11/pydoc_data \
        "$cache"/usr/lib/*-linux-gnu*/gconv "$cache"/tmp/* "$cache"/root/.[!.]* 2>/dev/null || true
    find "$cache/var/log" -type f -delete
    # dockerd bind-mounts the host's /etc/hosts and /etc/resolv.conf (network: host)
    : > "$cache/etc/resolv.conf"
    : > "$cache/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$cache/etc/hosts"
    echo "$stamp" > "$cache.stamp"
fi

# ---- the plugin dir; config.json is written last (make uses it as the target) ----
rm -rf "$out"
mkdir -p "$out"
cp -a "$cache" "$out/rootfs"
mkdir -p "$out/rootfs/run/docker/plugins" "$out/rootfs/mnt" "$out/rootfs/data/config" "$out/rootfs/data/cache"
grep -qx user_allow_other "$out/rootfs/etc/fuse.conf" || echo user_allow_other >> "$out/rootfs/etc/fuse.conf"
install -m 0644 "$pyz" "$out/rootfs/pyclone-docker.pyz"
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' tools/plugin-config.json
cp tools/plugin-config.json "$out/config.json"
echo "plugin dir: $out (rootfs $(du -sh "$out/rootfs" | cut -f1))"
