#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (Debian 12, run as root, no systemd needed):
# munged, MariaDB + slurmdbd (so `sacct` works), slurmctld and slurmd, all on 127.0.0.1.
# Installs the Debian packages if missing. Idempotent: re-running while up is a fast no-op.
# Stop it with launch/slurm_down.sh (stops only what this script started, by pid).
#
# Environment knobs:
#   SLURM_CI_ROOT     scratch dir for state, logs, pid files and the MariaDB datadir (default /tmp/transfer-slurm)
#   SLURM_CPUS        CPU slots the node offers; more than the real cores gives a small grid some parallelism
#                     (default: the real core count; slots > cores rely on SlurmdParameters=config_overrides)
#   SLURM_MEM_MB      RealMemory of the node in MB (default: 85% of MemTotal); jobs get DefMemPerCPU=1000 MB per CPU
#   SLURM_ACCOUNTING  1 = slurmdbd + MariaDB so sacct (and submitit's job-state polling) works; 0 = no accounting (default 1)
#   SLURM_DB_PORT     TCP port of the private MariaDB on 127.0.0.1 (default 3307, away from a system MariaDB)
#   SLURM_FRESH       1 = stop and wipe SLURM_CI_ROOT first (job ids restart at 1, old accounting is dropped) (default 0)
#   SLURM_WAIT_S      seconds to wait for the node to become idle (default 30)
set -euo pipefail

ROOT=${SLURM_CI_ROOT:-/tmp/transfer-slurm}
ACCOUNTING=${SLURM_ACCOUNTING:-1}
DB_PORT=${SLURM_DB_PORT:-3307}
WAIT_S=${SLURM_WAIT_S:-30}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CONF=/etc/slurm/slurm.conf
DBD_CONF=/etc/slurm/slurmdbd.conf
MARKER="# written by transfer launch/slurm_up.sh"
HOST=$(hostname -s)

NAME=slurm_up
source "$HERE/lib.sh"

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND every 0.1 s.
wait_for() {
    local what=$1 secs=$2; shift 2
    for _ in $(seq $((secs * 10))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "$what not ready after ${secs}s (logs in $ROOT/log)"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons), got uid $(id -u)"
[[ $ACCOUNTING == 0 || $ACCOUNTING == 1 ]] || die "SLURM_ACCOUNTING must be 0 or 1, got '$ACCOUNTING'"

if [[ ${SLURM_FRESH:-0} == 1 ]]; then
    SLURM_CI_ROOT=$ROOT bash "$HERE/slurm_down.sh"
    rm -rf "$ROOT"
    timed "wiped $ROOT"
fi

# ---- packages ---------------------------------------------------------------------------------
packages=(munge slurm-client slurmctld slurmd)
[[ $ACCOUNTING == 1 ]] && packages+=(slurmdbd mariadb-server)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    timed "packages installed"
fi

# ---- configuration ----------------------------------------------------------------------------
CORES=$(nproc)
CPUS=${SLURM_CPUS:-$CORES}
MEM_MB=${SLURM_MEM_MB:-$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.85 }' /proc/meminfo)}
[[ $CPUS =~ ^[1-9][0-9]*$ ]] || die "SLURM_CPUS must be a positive integer, got '$CPUS'"
[[ $MEM_MB =~ ^[1-9][0-9]*$ ]] || die "SLURM_MEM_MB must be a positive integer, got '$MEM_MB'"
mkdir -p "$ROOT"/{run,state,spool,log}

if [[ $ACCOUNTING == 1 ]]; then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
JobAcctGatherType=jobacct_gather/linux"
else
    accounting="AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none"
fi

new_conf=$(cat <<EOF
$MARKER (SLURM_CI_ROOT=$ROOT)
ClusterName=transfer
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job may start again after 5 s instead of 120 s
AuthInfo=cred_expire=5
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmctldPidFile=$ROOT/run/slurmctld.pid
SlurmdPidFile=$ROOT/run/slurmd.pid
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# without a default, a job that asks no memory takes the whole node and the array runs serially
DefMemPerCPU=1000
# a dependency that can never be satisfied cancels the job instead of leaving it pending forever
DependencyParameters=kill_invalid_depend
# finished jobs stay known for 5 min, so --dependency on them is still accepted
MinJobAge=300
KillWait=5
# jobs on partition 'high' preempt (requeue) jobs on 'debug'; the job gets its --signal (USR2) first
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
# advertise SLURM_CPUS slots even when the machine has fewer cores
SlurmdParameters=config_overrides
$accounting
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS Boards=1 SocketsPerBoard=1 CoresPerSocket=$CPUS ThreadsPerCore=1 RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=1 GraceTime=10
PartitionName=high Nodes=$HOST Default=NO MaxTime=INFINITE State=UP OverSubscribe=NO PriorityTier=10 PreemptMode=OFF
EOF
)

new_dbd_conf=$(cat <<EOF
$MARKER (SLURM_CI_ROOT=$ROOT)
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
EOF
)

# install_conf PATH CONTENT MODE: write if different; refuse to replace a file this script did not write.
# Returns 0 when the file changed.
install_conf() {
    if [[ -e $1 ]]; then
        head -n1 "$1" | grep -qF "$MARKER" || die "$1 exists and was not written by this script; move it away first"
        [[ $(cat "$1") == "$2" ]] && return 1
    fi
    mkdir -p "$(dirname "$1")"
    printf '%s\n' "$2" >"$1.tmp" && chmod "$3" "$1.tmp" && mv "$1.tmp" "$1"
}
conf_changed=0
install_conf "$CONF" "$new_conf" 644 && conf_changed=1
if [[ $ACCOUNTING == 1 ]]; then
    install_conf "$DBD_CONF" "$new_dbd_conf" 600 && conf_changed=1
fi

# ---- fast path: everything already up with this configuration -----------------------------------
node_ready() {
    # usable (idle, or busy with jobs; not down/drained) and registered by a slurmd started at or after $1 (epoch s)
    local line start
    line=$(scontrol -o show node "$HOST" 2>/dev/null) || return 1
    [[ $line =~ State=(IDLE|MIXED|ALLOCATED)[[:space:]] ]] || return 1
    start=$(sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p' <<<"$line")
    [[ -n $start && $start != None ]] || return 1
    (($(date -d "$start" +%s) >= $1))
}
if ((conf_changed == 0)) && alive "$ROOT/run/slurmctld.pid" slurmctld && alive "$ROOT/run/slurmd.pid" slurmd \
    && { [[ $ACCOUNTING == 0 ]] || alive "$ROOT/run/slurmdbd.pid" slurmdbd; } && node_ready 0; then
    timed "already up ($CPUS slots)"
    exit 0
fi
if ((conf_changed)); then
    # new configuration: restart the SLURM daemons this script runs
    stop_pid "$ROOT/run/slurmd.pid" slurmd
    stop_pid "$ROOT/run/slurmctld.pid" slurmctld
    stop_pid "$ROOT/run/slurmdbd.pid" slurmdbd
fi
if ! alive "$ROOT/run/slurmctld.pid" slurmctld && scontrol ping 2>/dev/null | grep -q UP; then
    die "a slurmctld not started from SLURM_CI_ROOT=$ROOT answers; stop it (its slurm_down.sh) first"
fi

# ---- munge -------------------------------------------------------------------------------------
mkdir -p /run/munge && chown munge:munge /run/munge && chmod 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall the munge package)"
    runuser -u munge -- /usr/sbin/munged --force
    wait_for munged 10 bash -c 'munge -n | unmunge'
    cp /run/munge/munged.pid "$ROOT/run/munged.pid"   # marks it as ours for slurm_down.sh
    timed "munged started"
fi

# ---- MariaDB + slurmdbd --------------------------------------------------------------------------
if [[ $ACCOUNTING == 1 ]]; then
    DB_DIR=$ROOT/mysql
    DB_RUN=$ROOT/mysql-run
    mkdir -p "$DB_RUN" && chown mysql:mysql "$DB_RUN"
    if [[ ! -d $DB_DIR/mysql ]]; then
        mkdir -p "$DB_DIR" && chown mysql:mysql "$DB_DIR"
        mariadb-install-db --user=mysql --datadir="$DB_DIR" --auth-root-authentication-method=socket \
            --skip-test-db >"$ROOT/log/mariadb-install.log" 2>&1
        timed "MariaDB datadir initialised"
    fi
    if ! alive "$DB_RUN/mariadbd.pid" mariadbd; then
        # mariadbd drops to user mysql before it writes pid and socket: both live in the mysql-owned $DB_RUN
        setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$DB_DIR" \
            --socket="$DB_RUN/mysqld.sock" --pid-file="$DB_RUN/mariadbd.pid" \
            --bind-address=127.0.0.1 --port="$DB_PORT" --innodb-buffer-pool-size=64M \
            --log-error="$DB_DIR/mariadb.err" --skip-name-resolve </dev/null >/dev/null 2>&1 &
        wait_for MariaDB 30 mariadb-admin --socket="$DB_RUN/mysqld.sock" ping
        mariadb --socket="$DB_RUN/mysqld.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmpw';
            GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        timed "MariaDB started (port $DB_PORT)"
    fi
    if ! alive "$ROOT/run/slurmdbd.pid" slurmdbd; then
        /usr/sbin/slurmdbd
        wait_for slurmdbd 30 port_open 6819
        timed "slurmdbd started"
    fi
fi

# ---- slurmctld + slurmd --------------------------------------------------------------------------
STARTED_AT=$(date +%s)
if ! alive "$ROOT/run/slurmctld.pid" slurmctld; then
    /usr/sbin/slurmctld
    timed "slurmctld started"
fi
fresh_slurmd=0
if ! alive "$ROOT/run/slurmd.pid" slurmd; then
    /usr/sbin/slurmd
    fresh_slurmd=1
    timed "slurmd started"
fi
# slurmctld reports the node's saved state before slurmd registers: wait for this slurmd's registration
((fresh_slurmd)) || STARTED_AT=0
wait_for "node $HOST" "$WAIT_S" node_ready "$STARTED_AT"
timed "up: node $HOST ready, $CPUS slots, accounting=$ACCOUNTING"
