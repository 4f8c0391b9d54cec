# shellcheck shell=bash disable=SC2034,SC2154 # globals shared with the sourcing script
# Shell functions shared by the benchmarks (bench/pull/run.sh, bench/tasks/run.sh): process,
# mount and registry hygiene, daemon start, RSS, quiet-machine gating, medians. Source it after
# `cd` to the repo root. It uses the caller's globals: work (the run's temp dir), registry_pid,
# daemon_pid, start_ms (set here), BERTHD, BERTHD_ARGS (array), QUIET_MAX.

log() { printf '%s\n' "$*" >&2; }

# --- process and mount hygiene ----------------------------------------------------------------

# A zombie counts as gone: an orphan re-parented to PID 1 stays a zombie for a second or two.
pid_gone() {
  local state
  state=$(sed -n 's/^[^)]*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 0
  [ -z "$state" ] || [ "$state" = Z ] || [ "$state" = X ]
}

# SIGTERM, then SIGKILL after 10 s.
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 200); do pid_gone "$pid" && return 0; sleep 0.05; done
  log "pid $pid ignored SIGTERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 100); do pid_gone "$pid" && return 0; sleep 0.05; done
}

# SIGKILLs processes whose command line names a path under dir $1 (e.g. a shim the daemon left
# running: shims outlive their daemon by design), and waits for them.
kill_leftovers() {
  local dir=$1 p pids=() args cwd
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    mapfile -d "" args 2>/dev/null <"$p/cmdline" || continue # builtins only: no grep to match itself
    # A shim's command line need not name the state dir, but it runs in it (its cwd).
    cwd=$(readlink "$p/cwd" 2>/dev/null) || cwd=
    [[ "${args[*]}" == *"$dir/"* || "$cwd/" == "$dir/"* ]] && pids+=("${p#/proc/}")
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  log "  killing leftover processes ${pids[*]}"
  kill -KILL "${pids[@]}" 2>/dev/null || true
  for p in "${pids[@]}"; do
    for _ in $(seq 100); do pid_gone "$p" && break; sleep 0.05; done
  done
}

unmount_under() {
  local dir=$1 mp
  for _ in 1 2 3; do
    mapfile -t mps < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    [ ${#mps[@]} -gt 0 ] || return 0
    for mp in "${mps[@]}"; do umount -l "$mp" 2>/dev/null || true; done
  done
}

# --- registry ---------------------------------------------------------------------------------

# The usual exit trap: stops this run's daemon and registry, kills and unmounts what is left
# under the run's temp dir, and removes it.
cleanup_run() {
  stop_pid "$daemon_pid"
  stop_pid "$registry_pid"
  kill_leftovers "$work"
  unmount_under "$work"
  rm -rf "$work"
}

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

start_registry() {
  local port=$1 dir="$work/registry"
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
EOF
  /usr/bin/docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  registry_pid=$!
  wait_port "$port" || { cat "$dir/registry.log" >&2; exit 1; }
}

# --- daemons ----------------------------------------------------------------------------------

# Writes a containerd config for root/state/socket under dir $1 (CRI off, own opt dir).
containerd_config() {
  local d=$1
  cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "$d/daemon.sock"

[ttrpc]
  address = "$d/daemon.sock.ttrpc"

[debug]
  level = "warn"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$d/root/opt"
EOF
}

now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# Starts daemon $1 (berthd | containerd) in fresh dir $2; sets daemon_pid and start_ms (spawn
# to first OK `ctr version`). Arguments after $2 are added to berthd's command line. Not for
# $(...): the daemon must be this shell's child.
start_daemon() {
  local kind=$1 d=$2 t0
  shift 2
  mkdir -p "$d/root" "$d/state"
  t0=$(now_ms)
  if [ "$kind" = containerd ]; then
    containerd_config "$d"
    /usr/bin/containerd --config "$d/config.toml" >"$d/daemon.log" 2>&1 &
  else
    "$BERTHD" --root "$d/root" --state "$d/state" --address "$d/daemon.sock" "${BERTHD_ARGS[@]}" "$@" >"$d/daemon.log" 2>&1 &
  fi
  daemon_pid=$!
  for _ in $(seq 600); do
    pid_gone "$daemon_pid" && break
    if [ -S "$d/daemon.sock" ] && ctr --address "$d/daemon.sock" --connect-timeout 1s version >/dev/null 2>&1; then
      start_ms=$(($(now_ms) - t0))
      return 0
    fi
    sleep 0.02
  done
  log "$kind did not become ready; log:"; tail -n 50 "$d/daemon.log" >&2
  exit 1
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# VmRSS of all descendants of $1 (e.g. a launcher's node child), in KiB.
children_rss_kib() {
  local pid total=0 kids
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
  for pid in $kids; do
    total=$((total + $(rss_kib "$pid" 2>/dev/null || echo 0) + $(children_rss_kib "$pid")))
  done
  echo "$total"
}

# Waits (at most QUIET_MAX s) until the machine is under 10 % busy for 3 consecutive 1 s samples.
# Leaves what it saw in quiet_ok (1 or 0), quiet_waited (seconds) and quiet_busy (each 1 s
# sample's busy %, space-separated) for callers that report it.
quiet_ok=0 quiet_waited=0 quiet_busy=
wait_quiet() {
  local quiet=0 a b busy=0
  quiet_ok=0 quiet_waited=0 quiet_busy=
  for _ in $(seq "$QUIET_MAX"); do
    a=$(awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    busy=$(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; print (d > 0 ? int(100 * (y[1] - x[1]) / d) : 0) }')
    quiet_waited=$((quiet_waited + 1)) quiet_busy="${quiet_busy:+$quiet_busy }$busy"
    if [ "$busy" -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ "$quiet" -ge 3 ] && { quiet_ok=1; return 0; }
  done
  log "  (machine still busy: ${busy}% — measuring anyway)"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
