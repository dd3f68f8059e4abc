#!/usr/bin/env bash
# Stop the dockerd started by .ci/start-dockerd.sh (idempotent).
#
# SIGTERM first: dockerd stops its containers (which delivers Unmount calls to
# volume plugins), shuts down its managed containerd and removes its pid file.
# SIGKILL only if it is still alive after DOCKERD_STOP_TIMEOUT seconds
# (default 45; dockerd's own shutdown timeout for containers is 15 s).
set -uo pipefail

PIDFILE=/var/run/docker.pid
TIMEOUT=${DOCKERD_STOP_TIMEOUT:-45}

# True if $1 is a live (non-zombie) process.
is_alive() {
    local st
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

log() { printf '[stop-dockerd] %s\n' "$*" >&2; }

pids=""
if [ -s "$PIDFILE" ]; then
    p=$(cat "$PIDFILE")
    case $p in
        '' | *[!0-9]*) ;;
        *) [ "$(cat "/proc/$p/comm" 2>/dev/null)" = dockerd ] && is_alive "$p" && pids=$p ;;
    esac
fi
for p in $(pgrep -x dockerd 2>/dev/null); do
    is_alive "$p" || continue
    case " $pids " in *" $p "*) ;; *) pids="$pids $p" ;; esac
done
pids=${pids# }

if [ -z "$pids" ]; then
    log "dockerd is not running"
    rm -f "$PIDFILE"
    exit 0
fi

log "SIGTERM dockerd ($pids)"
# shellcheck disable=SC2086
kill -TERM $pids 2>/dev/null
deadline=$((SECONDS + TIMEOUT))
alive=$pids
while [ "$SECONDS" -lt "$deadline" ]; do
    alive=""
    for p in $pids; do is_alive "$p" && alive="$alive $p"; done
    [ -z "$alive" ] && break
    sleep 0.5
done
if [ -n "$alive" ]; then
    log "still alive after ${TIMEOUT}s, SIGKILL:$alive"
    # shellcheck disable=SC2086
    kill -KILL $alive 2>/dev/null
    sleep 1
    # Its managed containerd would be orphaned; stop it too.
    cpid=$(cat /run/docker/containerd/containerd.pid 2>/dev/null)
    case $cpid in
        '' | *[!0-9]*) ;;
        *) [ "$(cat "/proc/$cpid/comm" 2>/dev/null)" = containerd ] && kill -TERM "$cpid" 2>/dev/null ;;
    esac
    rm -f "$PIDFILE" /run/docker/containerd/containerd.pid
fi
log "dockerd stopped"
exit 0
