# Shared by scripts/slurm and scripts/sge: progress lines and waiting.
# The caller sets STEP (its name in the lines, e.g. "slurm-start") and, for
# wait_for, TIMEOUT in seconds, before using these.

T0=${T0:-$SECONDS}

# say MESSAGE...: one progress line with the seconds since the script began.
say() { printf '[%s %3ds] %s\n' "$STEP" "$((SECONDS - T0))" "$*"; }

# die MESSAGE...: the error on stderr, then exit 1.
die() { printf '[%s] ERROR: %s\n' "$STEP" "$*" >&2; exit 1; }

# wait_for DESCRIPTION COMMAND...: run COMMAND until it succeeds, at most
# $TIMEOUT s; say DESCRIPTION once it does, status 1 if it never did.
wait_for() {
    local what=$1 deadline=$((SECONDS + TIMEOUT))
    shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    say "$what"
}
