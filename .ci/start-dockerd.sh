#!/usr/bin/env bash
# Start a dockerd for the end-to-end tests (idempotent).
#
#   .ci/start-dockerd.sh
#
# * If `docker info` already works, exit 0 without touching anything.
# * Otherwise install docker.io (and fuse3, which the plugin needs) if missing,
#   clean up leftovers of a previously killed run (stale dockerd/containerd
#   processes, pid files, mounts, FUSE mounts), make sure cgroups are usable,
#   start `dockerd` in the background (log: /tmp/dockerd.log) and wait up to
#   60 s for `docker info`.  On failure print the end of the log and exit 1.
#
# Must run as root.  Environment knobs:
#   DOCKERD_LOG            log file (default /tmp/dockerd.log)
#   DOCKERD_WAIT           seconds to wait for `docker info` (default 60)
#   DOCKERD_EXTRA_ARGS     extra dockerd arguments (word-split)
#   PYCLONE_CI_NO_INSTALL  set to 1 to never run apt-get
set -uo pipefail

LOG=${DOCKERD_LOG:-/tmp/dockerd.log}
WAIT=${DOCKERD_WAIT:-60}
PIDFILE=/var/run/docker.pid
CONTAINERD_PIDFILE=/run/docker/containerd/containerd.pid

log() { printf '[start-dockerd] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# True if $1 is a live (non-zombie) process.
is_alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

docker_ok() { timeout 20 docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && docker_ok; then
    log "docker info works already; nothing to do"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || die "must run as root"

# --------------------------------------------------------------------------
# 1. Packages (CI starts from a fresh Debian machine).
# --------------------------------------------------------------------------
need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
command -v fusermount3 >/dev/null 2>&1 || need_pkgs+=(fuse3)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
    [ "${PYCLONE_CI_NO_INSTALL:-0}" = 1 ] && die "missing packages: ${need_pkgs[*]}"
    log "installing: ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # On a systemd host the docker.io postinst starts docker.service itself;
    # that is fine, we re-check `docker info` below.
    apt-get update -qq || log "apt-get update failed (continuing)"
    # shellcheck disable=SC2046
    apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need_pkgs[@]}" | sort -u) \
        || die "apt-get install ${need_pkgs[*]} failed"
    if docker_ok; then
        log "docker info works (started by the package)"
        exit 0
    fi
fi
command -v dockerd >/dev/null 2>&1 || die "dockerd not found"

# --------------------------------------------------------------------------
# 2. Stale processes from a killed run.
# --------------------------------------------------------------------------
# Only processes that belong to a docker daemon are touched: dockerd itself,
# the containerd that dockerd manages (it runs with the config under
# /var/run/docker/containerd/) and the shims of the moby namespaces.  A
# system containerd (e.g. for Kubernetes) is left alone.
stale_pids() {
    local pid cmd
    for pid in $(pgrep -x dockerd 2>/dev/null); do echo "$pid"; done
    for pid in $(pgrep -x containerd 2>/dev/null); do
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        case $cmd in *"/run/docker/containerd/"*) echo "$pid" ;; esac
    done
    for pid in $(pgrep -f '^(/usr/bin/)?containerd-shim' 2>/dev/null); do
        cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
        case $cmd in *"-namespace moby "* | *"-namespace plugins.moby "*) echo "$pid" ;; esac
    done
    for f in "$PIDFILE" "$CONTAINERD_PIDFILE"; do
        [ -s "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null)
        case $pid in '' | *[!0-9]*) continue ;; esac
        [ -d "/proc/$pid" ] || continue
        # A recycled pid could belong to anything: check the name.
        case $(cat "/proc/$pid/comm" 2>/dev/null) in dockerd | containerd) echo "$pid" ;; esac
    done
}

pids=""
for p in $(stale_pids | sort -un); do is_alive "$p" && pids="$pids $p"; done
if [ -n "$pids" ]; then
    log "stopping stale docker processes: $pids"
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null
    for _ in $(seq 1 30); do
        alive=""
        for p in $pids; do is_alive "$p" && alive="$alive $p"; done
        [ -z "$alive" ] && break
        sleep 0.5
    done
    if [ -n "${alive:-}" ]; then
        log "SIGKILL:$alive"
        # shellcheck disable=SC2086
        kill -KILL $alive 2>/dev/null
        sleep 1
    fi
fi
rm -f "$PIDFILE" "$CONTAINERD_PIDFILE"

# --------------------------------------------------------------------------
# 3. Stale mounts.
# --------------------------------------------------------------------------
# Print mount points (deepest first) strictly below $1 whose fstype matches
# the awk regex $2.  mountinfo escapes blanks as \040 etc.; decode them.
mounts_below() {
    local prefix=$1 fsre=$2
    awk -v pre="$prefix/" -v fsre="$fsre" '
        function unesc(s,   out, i, c) {
            out = ""
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                if (c == "\\" && substr(s, i + 1, 3) ~ /^[0-7][0-7][0-7]$/) {
                    out = out sprintf("%c", (substr(s, i + 1, 1) * 64) + (substr(s, i + 2, 1) * 8) + substr(s, i + 3, 1))
                    i += 3
                } else out = out c
            }
            return out
        }
        {
            mp = unesc($5)
            for (i = 7; i <= NF; i++) if ($i == "-") break
            fstype = $(i + 1)
            if (index(mp, pre) == 1 && fstype ~ fsre) print length(mp) "\t" mp
        }' /proc/self/mountinfo | sort -rn | cut -f2-
}

lazy_umount_below() {
    local prefix=$1 fsre=$2 mp n=0
    # Several rounds: unmounting a parent can reveal nothing new, but stacked
    # mounts on the same mount point need one umount each.
    for _ in 1 2 3 4 5; do
        mapfile -t mps < <(mounts_below "$prefix" "$fsre")
        [ "${#mps[@]}" -eq 0 ] && break
        for mp in "${mps[@]}"; do
            if umount -l "$mp" 2>/dev/null || fusermount3 -uz "$mp" 2>/dev/null || fusermount -uz "$mp" 2>/dev/null; then
                n=$((n + 1))
            fi
        done
    done
    [ "$n" -gt 0 ] && log "lazily unmounted $n stale mount(s) below $prefix"
    return 0
}

lazy_umount_below /var/lib/docker '.*'
lazy_umount_below /run/docker '.*'
[ /var/run/docker -ef /run/docker ] || lazy_umount_below /var/run/docker '.*'
lazy_umount_below /var/lib/docker-volumes '^fuse'
lazy_umount_below /tmp '^fuse'

# --------------------------------------------------------------------------
# 4. cgroups.
# --------------------------------------------------------------------------
cgroup_ok() {
    [ -f /sys/fs/cgroup/cgroup.controllers ] && return 0   # cgroup v2
    local d
    for d in memory cpu pids devices; do                    # cgroup v1
        mountpoint -q "/sys/fs/cgroup/$d" 2>/dev/null && return 0
    done
    return 1
}

if ! cgroup_ok; then
    log "no usable cgroup hierarchy mounted; mounting one"
    mountpoint -q /sys/fs/cgroup || mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup 2>/dev/null \
        || mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
    if ! cgroup_ok; then
        # cgroupfs-mount style v1 layout.
        mountpoint -q /sys/fs/cgroup || mount -t tmpfs -o uid=0,gid=0,mode=0755 cgroup /sys/fs/cgroup
        awk '!/^#/ { if ($4) print $1 }' /proc/cgroups | while read -r ss; do
            mkdir -p "/sys/fs/cgroup/$ss"
            mountpoint -q "/sys/fs/cgroup/$ss" || mount -n -t cgroup -o "$ss" cgroup "/sys/fs/cgroup/$ss" || true
        done
    fi
    cgroup_ok || die "could not set up cgroups"
fi

# Pure cgroup v2 without systemd (container-like CI runners): controllers must
# be enabled in the root's subtree_control, and that fails with EBUSY while
# processes live in the root cgroup.  Same trick as docker's dind script.
if [ -f /sys/fs/cgroup/cgroup.controllers ] && [ "$(ps -p 1 -o comm= 2>/dev/null)" != systemd ]; then
    if ! grep -qw memory /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null \
        && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
        log "enabling cgroup v2 controllers in the root cgroup"
        mkdir -p /sys/fs/cgroup/init
        xargs -rn1 </sys/fs/cgroup/cgroup.procs >/sys/fs/cgroup/init/cgroup.procs 2>/dev/null || :
        sed -e 's/ / +/g' -e 's/^/+/' </sys/fs/cgroup/cgroup.controllers \
            >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || log "could not enable all controllers"
    fi
fi

# --------------------------------------------------------------------------
# 5. Start dockerd.
# --------------------------------------------------------------------------
mkdir -p /run/docker/plugins /etc/docker/plugins

DOCKERD_PID=""

start_dockerd() {
    # Plain `dockerd` by default.  NEVER add --bridge=none: it deletes the
    # host's docker0 bridge (see docs reference §8.4).
    local -a args=("$@")
    # shellcheck disable=SC2206
    [ -n "${DOCKERD_EXTRA_ARGS:-}" ] && args+=(${DOCKERD_EXTRA_ARGS})
    printf '\n===== %s start-dockerd: dockerd %s =====\n' "$(date -Is)" "${args[*]}" >>"$LOG"
    LOG_START=$(wc -l <"$LOG")
    log "starting: dockerd ${args[*]} (log: $LOG)"
    # setsid + nohup: dockerd must outlive this script and the CI step shell.
    setsid nohup dockerd "${args[@]}" </dev/null >>"$LOG" 2>&1 &
    DOCKERD_PID=$!
}

# Wait until `docker info` works (0), dockerd died (2) or timeout (1).
wait_dockerd() {
    local deadline=$((SECONDS + WAIT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            sleep 0.5
            docker_ok && return 0
            return 2
        fi
        docker_ok && return 0
        sleep 1
    done
    return 1
}

this_log() { tail -n "+$((LOG_START + 1))" "$LOG" 2>/dev/null; }

fail() {
    log "dockerd did not come up; last 50 lines of $LOG:"
    tail -n 50 "$LOG" >&2
    exit 1
}

touch "$LOG"
start_dockerd
wait_dockerd
rc=$?
if [ "$rc" -eq 2 ]; then
    # dockerd exited.  The usual reason on stripped-down VMs is that the
    # default bridge network cannot be created because iptables does not work
    # ("Error initializing network controller ... iptables ...").  Two
    # fallbacks, keeping docker0 (never --bridge=none):
    #  (a) the kernel has no nf_tables: switch to iptables-legacy and retry;
    #  (b) no usable netfilter at all: --iptables=false (and --ip6tables=false)
    #      - containers still get docker0 addresses, dockerd just doesn't add
    #      NAT/filter rules.  The e2e tests need no network access.
    if this_log | grep -qiE 'nf_tables|nft|Protocol not supported' \
        && command -v iptables-legacy >/dev/null 2>&1 \
        && iptables-legacy -t nat -L -n >/dev/null 2>&1 \
        && [ "$(readlink -f "$(command -v iptables)")" != "$(readlink -f "$(command -v iptables-legacy)")" ]; then
        log "dockerd failed with nftables errors; switching iptables to iptables-legacy"
        update-alternatives --set iptables /usr/sbin/iptables-legacy >/dev/null 2>&1 || true
        update-alternatives --set ip6tables /usr/sbin/ip6tables-legacy >/dev/null 2>&1 || true
        start_dockerd
        wait_dockerd
        rc=$?
    fi
fi
if [ "$rc" -eq 2 ] && this_log | grep -qiE 'iptables|network controller|bridge|nat'; then
    log "dockerd failed to set up networking; retrying with --iptables=false --ip6tables=false"
    start_dockerd --iptables=false --ip6tables=false
    wait_dockerd
    rc=$?
fi
[ "$rc" -eq 0 ] || fail

log "dockerd is up (pid $(cat "$PIDFILE" 2>/dev/null || echo "$DOCKERD_PID"))"
docker version --format 'client {{.Client.Version}} / server {{.Server.Version}}' >&2 2>/dev/null || true
exit 0
