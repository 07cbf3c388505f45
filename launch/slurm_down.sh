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
NAME=slurm_down
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
