#!/usr/bin/env bash
# Stop the single-node Grid Engine cell that scripts/sge/start.sh started:
# delete every job, then stop sge_execd and sge_qmaster by the pids in their
# pidfiles (nothing is killed by name). Idempotent. Must run as root.
set -euo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SPOOL=/var/spool/gridengine
STEP=sge-stop
# shellcheck source=../lib/steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/steps.sh"
[[ $(id -u) == 0 ]] || die "run as root"

# shellcheck source=../lib/daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/daemons.sh"

# --qmaster-only stops qmaster alone, leaving execd and its jobs running (the
# tests use it to see what gantry does while qmaster is down).
if [[ ${1:-} == --qmaster-only ]]; then
    stop_daemons say "sge_qmaster:$SPOOL/qmaster/qmaster.pid"
    exit 0
fi
if command -v qdel >/dev/null && qstat >/dev/null 2>&1; then
    qdel -u '*' >/dev/null 2>&1 || true
    say "deleted every job"
fi
for pidfile in "$SPOOL/execd/localhost/execd.pid" "$SPOOL/execd/$(hostname)/execd.pid"; do
    [[ -e $pidfile ]] && stop_daemons say "sge_execd:$pidfile"
done
stop_daemons say "sge_qmaster:$SPOOL/qmaster/qmaster.pid"
say "stopped"
