# Shared by scripts/slurm and scripts/sge: find and stop daemons by pidfile.
#
# A pidfile can outlive its daemon (a machine image taken while it ran, a
# kill -9), and its pid can then belong to some other process. So a daemon
# counts as running only if the pid is alive *and* is the program named,
# and nothing is ever signalled on a pid that fails that check.

# daemon_pid PIDFILE NAME: print the pid if PIDFILE names a live NAME process.
daemon_pid() {
    local pidfile=$1 name=$2 pid comm
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    # /proc/PID/comm holds at most 15 characters of the program's name.
    [[ $comm == "${name:0:15}" ]] || return 1
    echo "$pid"
}

# daemon_running PIDFILE NAME: status 0 if daemon_pid finds it.
daemon_running() { daemon_pid "$1" "$2" >/dev/null; }

# stop_daemons SAY NAME:PIDFILE...: TERM each running daemon, wait up to 15 s
# for all of them to exit, then KILL the rest; stale pidfiles are removed.
# SAY is the caller's logging function. Daemons in one call stop in parallel.
stop_daemons() {
    local say=$1 entry name pidfile pid
    shift
    local -A pids=()
    for entry in "$@"; do
        name=${entry%%:*} pidfile=${entry#*:}
        if pid=$(daemon_pid "$pidfile" "$name"); then
            "$say" "stopping $name (pid $pid)"
            kill "$pid"
            pids[$name]=$pid
        else
            "$say" "$name is not running"
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
        "$say" "$name (pid ${pids[$name]}) did not stop within 15 s: killing it"
        kill -9 "${pids[$name]}" 2>/dev/null || true
    done
}
