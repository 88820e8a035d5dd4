#!/usr/bin/env bash
# Start a single-node Slurm cluster (munge, mariadb, slurmdbd, slurmctld, slurmd)
# on this machine, for gantry's slurm backend tests and benchmarks.
#
# Idempotent: installs what is missing, rewrites the configs, starts only the
# daemons that are not running (and restarts the Slurm ones whose config
# changed), then waits until the node is idle. No systemd: every daemon is
# started directly and tracked by its pidfile. Must run as root.
#
# Environment: SLURM_START_TIMEOUT (seconds to wait for each step, default 60).
set -euo pipefail

TIMEOUT="${SLURM_START_TIMEOUT:-60}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLUSTER=gantry
ETC=/etc/slurm
RUN=/run/slurm
LOGS=/var/log/slurm
STATE=/var/lib/slurm
DB_SOCKET=/run/mysqld/mysqld.sock
DB_PIDFILE=/run/mysqld/mysqld.pid
STEP=slurm-start
# shellcheck source=../lib/steps.sh
source "$HERE/../lib/steps.sh"
# shellcheck source=../lib/daemons.sh
source "$HERE/../lib/daemons.sh"

[[ $(id -u) == 0 ]] || die "run as root (it installs packages and starts daemons)"

# --- packages ----------------------------------------------------------------
missing=()
for pair in slurm-wlm:slurmctld slurm-wlm:slurmd munge:munged slurmdbd:slurmdbd \
    mariadb-server:mariadbd; do
    command -v "${pair#*:}" >/dev/null || missing+=("${pair%%:*}")
done
if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    say "installing ${missing[*]} (apt)"
    # Package scripts must not try to start services (no init system here):
    # policy-rc.d exit code 101 means "action forbidden".
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            slurm-wlm munge slurmdbd mariadb-server mariadb-client >/dev/null
    }
    apt_install || { say "apt-get install failed; running apt-get update and retrying"
                     apt-get update -q >/dev/null && apt_install; } || {
        ((made_policy)) && rm -f /usr/sbin/policy-rc.d
        die "could not install Slurm packages (see the apt-get errors above)"
    }
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    say "installed"
else
    say "packages present"
fi

id slurm >/dev/null 2>&1 || { useradd --system --no-create-home --shell /usr/sbin/nologin slurm
                              say "created user slurm"; }

install -d -o slurm -g slurm -m 755 "$RUN" "$LOGS" "$STATE" "$STATE/slurmctld" "$STATE/slurmd"
install -d -o munge -g munge -m 700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 755 /run/munge
install -d -o mysql -g mysql -m 755 /run/mysqld

# --- configs -------------------------------------------------------------------
# write_conf SRC DEST OWNER MODE: install SRC at DEST if it differs; status 0 if
# it changed (so the daemon reading it must be restarted).
write_conf() {
    local src=$1 dest=$2 owner=$3 mode=$4
    if [[ -f $dest ]] && cmp -s "$src" "$dest"; then
        rm -f "$src"
        chown "$owner" "$dest" && chmod "$mode" "$dest"
        return 1
    fi
    install -o "${owner%%:*}" -g "${owner#*:}" -m "$mode" "$src" "$dest"
    rm -f "$src"
    say "wrote $dest"
}

host=$(hostname -s)
# The node's hardware as slurmd sees it; only the first line (NodeName=... RealMemory=...).
node_line=$(slurmd -C | head -n1)
[[ $node_line == NodeName=* ]] || die "unexpected 'slurmd -C' output: $node_line"
node_name=${node_line#NodeName=}
node_name=${node_name%% *}

mkdir -p "$ETC"
tmp=$(mktemp)
sed -e "s/@HOST@/$host/g" -e "s/@CLUSTER@/$CLUSTER/g" -e "s|@NODE_LINE@|$node_line|" \
    -e "s/@NODE@/$node_name/g" -e "s|@RUN@|$RUN|g" -e "s|@LOGS@|$LOGS|g" \
    -e "s|@STATE@|$STATE|g" "$HERE/slurm.conf.in" >"$tmp"
slurm_conf_changed=0
write_conf "$tmp" "$ETC/slurm.conf" root:root 644 && slurm_conf_changed=1

# The DB password lives only in slurmdbd.conf (mode 600); keep it across runs.
db_pass=$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf" 2>/dev/null || true)
[[ -n $db_pass ]] || db_pass=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
tmp=$(mktemp)
sed -e "s|@DB_PASS@|$db_pass|" -e "s|@RUN@|$RUN|g" -e "s|@LOGS@|$LOGS|g" \
    -e "s|@DB_SOCKET@|$DB_SOCKET|g" "$HERE/slurmdbd.conf.in" >"$tmp"
dbd_conf_changed=0
write_conf "$tmp" "$ETC/slurmdbd.conf" slurm:slurm 600 && dbd_conf_changed=1

# A changed config is read only at start: restart the daemons that read it.
if ((slurm_conf_changed)); then
    say "slurm.conf changed: restarting slurmd and slurmctld if running"
    stop_daemons say "slurmd:$RUN/slurmd.pid" "slurmctld:$RUN/slurmctld.pid"
fi
if ((dbd_conf_changed)); then
    say "slurmdbd.conf changed: restarting slurmdbd if running"
    stop_daemons say "slurmdbd:$RUN/slurmdbd.pid"
fi

# --- munge -----------------------------------------------------------------------
if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    say "created munge key"
fi
chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
if daemon_running /run/munge/munged.pid munged; then
    say "munged already running (pid $(cat /run/munge/munged.pid))"
else
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    wait_for "munged started (pid $(cat /run/munge/munged.pid 2>/dev/null))" \
        bash -c 'munge -n | unmunge' || die "munged did not start: see /var/log/munge/munged.log"
fi

# --- mariadb -----------------------------------------------------------------------
if [[ ! -d /var/lib/mysql/mysql ]]; then
    say "initialising the MariaDB data directory"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
fi
if daemon_running "$DB_PIDFILE" mariadbd; then
    say "mariadbd already running (pid $(cat "$DB_PIDFILE"))"
else
    # setsid: its own session, so it outlives this shell and CI steps.
    setsid mariadbd --user=mysql --bind-address=127.0.0.1 --socket="$DB_SOCKET" \
        --pid-file="$DB_PIDFILE" </dev/null >>"$LOGS/mariadb.log" 2>&1 &
    wait_for "mariadbd started" mariadb-admin --socket="$DB_SOCKET" ping ||
        die "mariadbd did not start: see $LOGS/mariadb.log"
fi
# root logs in through the unix socket (Debian's default); the password is
# reset every run so it always matches slurmdbd.conf.
mariadb --socket="$DB_SOCKET" <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$db_pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
SQL
say "database user slurm ready"

# --- slurmdbd, slurmctld, slurmd ----------------------------------------------------
if daemon_running "$RUN/slurmdbd.pid" slurmdbd; then
    say "slurmdbd already running (pid $(cat "$RUN/slurmdbd.pid"))"
else
    slurmdbd
    wait_for "slurmdbd started" sacctmgr -n show cluster ||
        die "slurmdbd did not answer within ${TIMEOUT}s: see $LOGS/slurmdbd.log"
fi
if [[ -z $(sacctmgr -n -P show cluster format=cluster where cluster="$CLUSTER") ]]; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
    say "registered cluster $CLUSTER in slurmdbd"
fi
if daemon_running "$RUN/slurmctld.pid" slurmctld; then
    say "slurmctld already running (pid $(cat "$RUN/slurmctld.pid"))"
else
    slurmctld
    wait_for "slurmctld started" scontrol ping ||
        die "slurmctld did not answer within ${TIMEOUT}s: see $LOGS/slurmctld.log"
fi
if daemon_running "$RUN/slurmd.pid" slurmd; then
    say "slurmd already running (pid $(cat "$RUN/slurmd.pid"))"
else
    slurmd
    say "slurmd started"
fi

# --- wait for the node --------------------------------------------------------------
node_state() { sinfo -h -N -n "$node_name" -o %T 2>/dev/null; }
node_ready() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }
deadline=$((SECONDS + TIMEOUT))
resumed=0
until node_ready; do
    state=$(node_state || true)
    # A node left down/drained by an earlier run (e.g. a changed RealMemory).
    if ((!resumed)) && [[ $state =~ ^(down|drain|drained|draining) ]]; then
        scontrol update nodename="$node_name" state=resume 2>/dev/null || true
        say "node $node_name was $state: resumed it"
        resumed=1
    fi
    ((SECONDS < deadline)) || die "node $node_name is '${state:-not reported}' after ${TIMEOUT}s, not idle: see $LOGS/slurmd.log and $LOGS/slurmctld.log"
    sleep 0.2
done
say "cluster $CLUSTER ready: node $node_name is $(node_state) (partition debug)"
