#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm/start.sh started:
# cancel every job, then stop slurmd, slurmctld, slurmdbd, mariadbd and munged,
# each by the pid in its pidfile (nothing is killed by name). Idempotent.
set -euo pipefail

RUN=/run/slurm
STEP=slurm-stop
# shellcheck source=../lib/steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/steps.sh"

[[ $(id -u) == 0 ]] || die "run as root"

# shellcheck source=../lib/daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/daemons.sh"

if daemon_running "$RUN/slurmctld.pid" slurmctld; then
    mapfile -t jobs < <(squeue --noheader --format=%A 2>/dev/null || true)
    if ((${#jobs[@]})); then
        say "cancelling ${#jobs[@]} job(s)"
        scancel "${jobs[@]}" 2>/dev/null || true
        # Let slurmd end the jobs' processes before it goes away itself.
        for _ in $(seq 50); do
            [[ -z $(squeue --noheader --states=RUNNING,COMPLETING --format=%A 2>/dev/null) ]] && break
            sleep 0.2
        done
    else
        say "no jobs to cancel"
    fi
fi

# slurmctld and slurmd first (slurmctld reports to slurmdbd as it stops), then
# slurmdbd, then what it stands on.
stop_daemons say "slurmd:$RUN/slurmd.pid" "slurmctld:$RUN/slurmctld.pid"
stop_daemons say "slurmdbd:$RUN/slurmdbd.pid"
stop_daemons say mariadbd:/run/mysqld/mysqld.pid munged:/run/munge/munged.pid
say "stopped"
