#!/usr/bin/env bash
# Stop the single-node SLURM cluster started by launch/slurm_up.sh: cancel root's jobs, then stop
# slurmd, slurmctld, slurmdbd, MariaDB and munged — only the daemons slurm_up.sh started, by the pid
# files it keeps under SLURM_CI_ROOT (each checked against /proc/PID/comm; a zombie counts as stopped).
# State, logs and the accounting database stay in SLURM_CI_ROOT (slurm_up.sh SLURM_FRESH=1 wipes them).
#
# Environment knobs:
#   SLURM_CI_ROOT   the scratch dir given to slurm_up.sh (default /tmp/transfer-slurm)
set -euo pipefail

ROOT=${SLURM_CI_ROOT:-/tmp/transfer-slurm}
T0=$(date +%s.%N)

say() { printf 'slurm_down: %s\n' "$*"; }
elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
timed() { say "$(printf '%-34s at %6s s' "$1" "$(elapsed)")"; }

# alive PIDFILE COMM: the pid file names a live (non-zombie) process whose /proc/PID/comm is COMM.
alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null | tr -dc '0-9')   # the daemon may remove its pid file at any moment
    [[ -n $pid && -r /proc/$pid/comm && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]] || return 1
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $state != Z ]]
}

# stop_pid PIDFILE COMM: TERM the process if alive, wait up to 15 s, then KILL.
stop_pid() {
    if alive "$1" "$2"; then
        local pid; pid=$(cat "$1" 2>/dev/null | tr -dc '0-9')
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 150); do alive "$1" "$2" || break; sleep 0.1; done
        alive "$1" "$2" && kill -KILL "$pid" 2>/dev/null || true
        timed "$2 stopped (pid $pid)"
    fi
    rm -f "$1"
}

[[ -d $ROOT ]] || { say "nothing to stop: $ROOT does not exist"; exit 0; }

if alive "$ROOT/run/slurmctld.pid" slurmctld; then
    # job processes would outlive slurmd otherwise
    scancel --user=root 2>/dev/null || true
    for _ in $(seq 100); do [[ -z $(squeue -h -u root -t RUNNING,COMPLETING 2>/dev/null) ]] && break; sleep 0.1; done
    timed "jobs cancelled"
fi
stop_pid "$ROOT/run/slurmd.pid" slurmd
stop_pid "$ROOT/run/slurmctld.pid" slurmctld
stop_pid "$ROOT/run/slurmdbd.pid" slurmdbd
stop_pid "$ROOT/mysql-run/mariadbd.pid" mariadbd
stop_pid "$ROOT/run/munged.pid" munged   # present only if slurm_up.sh started munged
timed "down"
