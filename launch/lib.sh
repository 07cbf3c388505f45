# Shared helpers of slurm_up.sh and slurm_down.sh (sourced; expects NAME to be set for messages).
T0=$(date +%s.%N)

say() { printf '%s: %s\n' "$NAME" "$*"; }
die() { printf '%s: error: %s\n' "$NAME" "$*" >&2; exit 1; }
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

# stop_pid PIDFILE COMM: TERM the process if alive, wait up to 15 s, then KILL; report it.
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
