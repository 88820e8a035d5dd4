#!/usr/bin/env bash
# Start a single-node Grid Engine cell (sge_qmaster + sge_execd) on this
# machine, for gantry's sge backend tests and benchmarks.
#
# Idempotent and fast when already running: installs what is missing (with
# debconf preseeded so gridengine-master creates the cell), configures this
# host as admin/submit/exec host, a queue gantry.q and a parallel environment
# "smp" (for the cores option), scheduler intervals of one second, then starts
# only the daemons that are not running. No systemd: daemons are started
# directly and tracked by their pidfiles. Must run as root.
#
# Hostname gotcha: Debian maps the hostname to 127.0.0.1, whose reverse name
# is "localhost", and qmaster then refuses clients ("client IP resolved to
# host name localhost. This is not identical to clients host name vm"). SGE's
# own host_aliases file makes both names one host; /etc/hosts stays as it is.
#
# Environment: SGE_START_TIMEOUT (seconds to wait for each step, default 30).
set -euo pipefail

TIMEOUT="${SGE_START_TIMEOUT:-30}"
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
COMMON=$SGE_ROOT/$SGE_CELL/common
SPOOL=/var/spool/gridengine
HOST=$(hostname)
STEP=sge-start
# shellcheck source=../lib/steps.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/steps.sh"
# shellcheck source=../lib/daemons.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/daemons.sh"

[[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"

# --- packages ----------------------------------------------------------------
if ! command -v qsub >/dev/null || [[ ! -x /usr/sbin/sge_qmaster || ! -x /usr/sbin/sge_execd ]]; then
    say "installing gridengine-master gridengine-exec gridengine-client (apt)"
    for pkg in gridengine-common gridengine-client; do
        debconf-set-selections <<SEL
$pkg shared/gridenginemaster string $HOST
$pkg shared/gridenginecell string default
$pkg shared/gridengineconfig boolean true
SEL
    done
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        gridengine-master gridengine-exec gridengine-client >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            gridengine-master gridengine-exec gridengine-client >/dev/null; }
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
fi
[[ -s $COMMON/act_qmaster ]] || die "$COMMON/act_qmaster missing: the cell was not created (debconf preseed?)"
[[ $(cat "$COMMON/act_qmaster") == "$HOST" ]] || echo "$HOST" >"$COMMON/act_qmaster"
echo "$HOST localhost" >"$COMMON/host_aliases"

# --- qmaster -----------------------------------------------------------------
mkdir -p /var/run/gridengine && chown sgeadmin:sgeadmin /var/run/gridengine
if daemon_running "$SPOOL/qmaster/qmaster.pid" sge_qmaster; then
    say "sge_qmaster already running"
else
    say "starting sge_qmaster"
    /usr/sbin/sge_qmaster
fi
wait_for "qmaster answers" qconf -sh || die "qmaster did not answer within ${TIMEOUT}s (see $SPOOL/qmaster/messages)"

# --- configuration (only what differs is changed) -------------------------------
qconf -sh | grep -qx "$HOST" || qconf -ah "$HOST" >/dev/null
qconf -ss 2>/dev/null | grep -qx "$HOST" || qconf -as "$HOST" >/dev/null
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
if ! qconf -sel 2>/dev/null | grep -qx "$HOST"; then
    printf 'hostname %s\nload_scaling NONE\ncomplex_values NONE\nuser_lists NONE\nxuser_lists NONE\nprojects NONE\nxprojects NONE\nusage_scaling NONE\nreport_variables NONE\n' \
        "$HOST" >"$TMP/exec"
    qconf -Ae "$TMP/exec" >/dev/null
    say "added $HOST as exec host"
fi
# gantry's tests run as root; Grid Engine refuses uid < 1000 by default. execd
# checks limits (h_rt) at each load report: every 2 s, not 40. qmaster writes
# each accounting record at once (accounting_flush_time 0, not every 15 s): the
# backend reads ends from that file.
if ! qconf -sconf | grep -q 'accounting_flush_time=00:00:00'; then
    qconf -sconf | sed -e ':a' -e '/\\$/{N;s/\\\n[[:space:]]*/ /;ba' -e '}' \
        -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
        -e 's/^load_report_time .*/load_report_time 00:00:02/' \
        -e 's/^\(reporting_params .*\) accounting_flush_time=[^ ]*/\1/' \
        -e 's/^reporting_params .*/& accounting_flush_time=00:00:00/' >"$TMP/global"
    qconf -Mconf "$TMP/global" >/dev/null 2>&1
    say "jobs of root allowed (min_uid 0), load reports every 2 s, accounting unbuffered"
fi
if [[ $(qconf -ssconf | awk '$1=="schedule_interval"{print $2}') != 0:0:1 ]]; then
    qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
        -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
        -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"$TMP/sched"
    qconf -Msconf "$TMP/sched" >/dev/null
    say "scheduler interval set to 1 s"
fi
if ! qconf -spl 2>/dev/null | grep -qx smp; then
    printf 'pe_name smp\nslots 999\nuser_lists NONE\nxuser_lists NONE\nstart_proc_args NONE\nstop_proc_args NONE\nallocation_rule $pe_slots\ncontrol_slaves FALSE\njob_is_first_task TRUE\nurgency_slots min\naccounting_summary FALSE\nqsort_args NONE\n' \
        >"$TMP/pe"
    qconf -Ap "$TMP/pe" >/dev/null
    say "added parallel environment smp"
fi
if ! qconf -sql 2>/dev/null | grep -qx gantry.q; then
    # Many trivial test jobs share the cores: 16 slots per host.
    qconf -sq | sed -e 's/^qname .*/qname gantry.q/' -e "s/^hostlist .*/hostlist $HOST/" \
        -e 's/^slots .*/slots 16/' -e 's/^pe_list .*/pe_list smp/' \
        -e 's/^load_thresholds .*/load_thresholds NONE/' \
        -e 's/^shell .*/shell \/bin\/bash/' -e 's/^shell_start_mode .*/shell_start_mode unix_behavior/' \
        >"$TMP/queue"
    qconf -Aq "$TMP/queue" >/dev/null
    say "added queue gantry.q"
fi
# The machine is shared and busy: SGE's default np_load_avg=1.75 would stop scheduling.
if [[ $(qconf -sq gantry.q | awk '$1=="load_thresholds"{print $2}') != NONE ]]; then
    qconf -rattr queue load_thresholds NONE gantry.q >/dev/null
    say "gantry.q schedules whatever the load"
fi

# --- execd -------------------------------------------------------------------
if daemon_running "$SPOOL/execd/localhost/execd.pid" sge_execd || daemon_running "$SPOOL/execd/$HOST/execd.pid" sge_execd; then
    say "sge_execd already running"
else
    say "starting sge_execd"
    /usr/sbin/sge_execd
fi
host_up() { qhost -h "$HOST" | awk -v h="$HOST" '$1==h && $4!="-" {ok=1} END {exit !ok}'; }
wait_for "execd reports load" host_up || die "execd did not report within ${TIMEOUT}s"
say "ready: qsub/qstat/qacct talk to cell $SGE_CELL on $HOST"
