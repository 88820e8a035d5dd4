#!/usr/bin/env bash
# Stop the single-node Slurm cluster that scripts/slurm/start.sh started:
# cancel every job, then stop slurmd, slurmctld, slurmdbd, mariadbd and munged,
# each by the pid in its pidfile (nothing is killed by name). Idempotent.
set -euo pipefail

RUN=/run/slurm
T0=$SECONDS
say() { printf '[slurm-stop %3ds] %s\n' "$((SECONDS - T0))" "$*"; }

[[ $(id -u) == 0 ]] || { echo "[slurm-stop] ERROR: run as root" >&2; exit 1; }

# stop NAME:PIDFILE...: TERM each running daemon, wait up to 15 s for all of
# them to exit, then KILL the rest. Daemons in one call stop in parallel.
stop() {
    local entry name pidfile pid
    local -A pids=()
    for entry in "$@"; do
        name=${entry%%:*} pidfile=${entry#*:}
        if [[ -s $pidfile ]] && pid=$(cat "$pidfile") && kill -0 "$pid" 2>/dev/null; then
            say "stopping $name (pid $pid)"
            kill "$pid"
            pids[$name]=$pid
        else
            say "$name is not running"
        fi
        rm -f "$pidfile"
    done
    for _ in $(seq 150); do
        for name in "${!pids[@]}"; do
            kill -0 "${pids[$name]}" 2>/dev/null || unset "pids[$name]"
        done
        ((${#pids[@]})) || return 0
        sleep 0.1
    done
    for name in "${!pids[@]}"; do
        say "$name (pid ${pids[$name]}) did not stop within 15 s: killing it"
        kill -9 "${pids[$name]}" 2>/dev/null || true
    done
}

if [[ -s $RUN/slurmctld.pid ]] && kill -0 "$(cat "$RUN/slurmctld.pid")" 2>/dev/null; then
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
stop "slurmd:$RUN/slurmd.pid" "slurmctld:$RUN/slurmctld.pid"
stop "slurmdbd:$RUN/slurmdbd.pid"
stop mariadbd:/run/mysqld/mysqld.pid munged:/run/munge/munged.pid
say "stopped"
