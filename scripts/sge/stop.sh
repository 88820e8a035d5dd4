#!/usr/bin/env bash
# Stop the single-node Grid Engine cell that scripts/sge/start.sh started:
# delete every job, then stop sge_execd and sge_qmaster by the pids in their
# pidfiles (nothing is killed by name). Idempotent. Must run as root.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SPOOL=/var/spool/gridengine
T0=$SECONDS
say() { printf '[sge-stop %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
[[ $(id -u) == 0 ]] || { echo "[sge-stop] ERROR: run as root" >&2; exit 1; }

stop() {
    local name=$1 pidfile=$2 pid
    if [[ -s $pidfile ]] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
        say "stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
        say "$name did not stop within 15 s: killing it"
        kill -9 "$pid" 2>/dev/null || true
    else
        say "$name is not running"
    fi
}

# --qmaster-only stops qmaster alone, leaving execd and its jobs running (the
# tests use it to see what gantry does while qmaster is down).
if [[ ${1:-} == --qmaster-only ]]; then
    stop sge_qmaster "$SPOOL/qmaster/qmaster.pid"
    exit 0
fi
if command -v qdel >/dev/null && qstat >/dev/null 2>&1; then
    qdel -u '*' >/dev/null 2>&1 || true
    say "deleted every job"
fi
for pidfile in "$SPOOL/execd/localhost/execd.pid" "$SPOOL/execd/$(hostname)/execd.pid"; do
    [[ -e $pidfile ]] && stop sge_execd "$pidfile"
done
stop sge_qmaster "$SPOOL/qmaster/qmaster.pid"
say "stopped"
