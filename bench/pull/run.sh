#!/usr/bin/env bash
# Cold-pull benchmark: `ctr images pull --plain-http` of the ~185 MB, 5-layer "big" image against
# berthd and against containerd 1.6, each on a fresh root for every pull, interleaved (the order
# alternates per round), N rounds (default 5). Prints each sample, both medians, the ratio
# berthd/containerd, daemon start times and idle RSS (after the pull, image in store, as in
# /work/shared/anchor-figures.md).
#
# Usage: bench/pull/run.sh            (as root; needs ./bin/berthd)
# Env:   ROUNDS=5  BERTHD=./bin/berthd  BERTHD_ARGS="--log-level warn"  KEEP_LOGS=1
#        QUIET_MAX=15 (max seconds to wait for an idle machine before each pull)
# Everything it starts is stopped by PID; mounts under its temp dir are unmounted and the dir is
# removed on exit. The image is built once and cached under /var/tmp/berth-bench.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C

ROUNDS=${ROUNDS:-5}
QUIET_MAX=${QUIET_MAX:-15}
BERTHD=${BERTHD:-./bin/berthd}
read -r -a BERTHD_ARGS <<<"${BERTHD_ARGS:---log-level warn}"
NS=bench
CACHE_ROOT=/var/tmp/berth-bench

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$BERTHD" ] || { echo "$BERTHD not found or not executable (set BERTHD=...)" >&2; exit 1; }

work=$(mktemp -d /tmp/berth-bench-pull.XXXXXX)
registry_pid=
daemon_pid=
start_ms=

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
  local pid=$1 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 200); do pid_gone "$pid" && return 0; sleep 0.05; done
  log "pid $pid ignored SIGTERM; killing"
  kill -KILL "$pid" 2>/dev/null || true
  for i in $(seq 100); do pid_gone "$pid" && return 0; sleep 0.05; done
}

# SIGKILLs processes whose command line names a path under dir $1 (e.g. a shim the daemon left
# running: shims outlive their daemon by design), and waits for them.
kill_leftovers() {
  local dir=$1 p pids=() args
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = $$ ] && continue
    mapfile -d "" args 2>/dev/null <"$p/cmdline" || continue # builtins only: no grep to match itself
    [[ "${args[*]}" == *"$dir/"* ]] && pids+=("${p#/proc/}")
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

cleanup() {
  stop_pid "$daemon_pid"
  stop_pid "$registry_pid"
  kill_leftovers "$work"
  unmount_under "$work"
  if [ -n "${KEEP_LOGS:-}" ]; then
    find "$work" -mindepth 1 -not -name '*.log' -delete 2>/dev/null || true
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- image and registry -----------------------------------------------------------------------

image_layout() {
  local key dir
  key=$(cat bench/pull/build-big.sh test/fixtures/oci-lib.sh /bin/busybox | sha256sum | cut -c1-16)
  dir="$CACHE_ROOT/big-$key"
  if [ ! -f "$dir/.complete" ]; then
    log "building the big image (once; cached in $dir)"
    rm -rf "$dir.tmp"
    mkdir -p "$CACHE_ROOT"
    bash bench/pull/build-big.sh "$dir.tmp" >/dev/null
    touch "$dir.tmp/.complete"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir"
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
# to first OK `ctr version`). Not for $(...): the daemon must be this shell's child.
start_daemon() {
  local kind=$1 d=$2 t0
  mkdir -p "$d/root" "$d/state"
  t0=$(now_ms)
  if [ "$kind" = containerd ]; then
    containerd_config "$d"
    /usr/bin/containerd --config "$d/config.toml" >"$d/daemon.log" 2>&1 &
  else
    "$BERTHD" --root "$d/root" --state "$d/state" --address "$d/daemon.sock" "${BERTHD_ARGS[@]}" >"$d/daemon.log" 2>&1 &
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

# VmRSS of all descendants of $1 (e.g. a launcher's node child or a warm spare shim), in KiB.
children_rss_kib() {
  local pid total=0 kids
  kids=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
  for pid in $kids; do
    total=$((total + $(rss_kib "$pid" 2>/dev/null || echo 0) + $(children_rss_kib "$pid")))
  done
  echo "$total"
}

# Waits (at most QUIET_MAX s) until the machine is under 10 % busy for 3 consecutive 1 s samples.
wait_quiet() {
  local quiet=0 a b busy=0
  for _ in $(seq "$QUIET_MAX"); do
    a=$(awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat)
    busy=$(awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; print (d > 0 ? int(100 * (y[1] - x[1]) / d) : 0) }')
    if [ "$busy" -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ "$quiet" -ge 3 ] && return 0
  done
  log "  (machine still busy: ${busy}% — measuring anyway)"
}

# One cold pull on daemon $1 in round $2; appends "kind start_ms pull_ms rss_kib children_kib".
measure() {
  local kind=$1 round=$2 d="$work/$1-$2" t0 pull rss kids
  wait_quiet
  start_daemon "$kind" "$d"
  t0=$(now_ms)
  if ! ctr --address "$d/daemon.sock" --connect-timeout 5s -n "$NS" images pull --plain-http "$ref" >"$d/pull.log" 2>&1; then
    log "$kind pull failed:"; tail -n 20 "$d/pull.log" >&2; tail -n 50 "$d/daemon.log" >&2
    exit 1
  fi
  pull=$(($(now_ms) - t0))
  sleep 1 # let the daemon settle before reading its idle RSS
  rss=$(rss_kib "$daemon_pid")
  kids=$(children_rss_kib "$daemon_pid")
  stop_pid "$daemon_pid"
  daemon_pid=
  kill_leftovers "$d"
  unmount_under "$d"
  [ -n "${KEEP_LOGS:-}" ] || rm -rf "$d"
  log "  round $round $kind: pull ${pull} ms, start ${start_ms} ms, idle RSS $((rss / 1024)) MiB"
  echo "$kind $start_ms $pull $rss $kids" >>"$work/samples"
}

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$work/samples" | median; }

# --- main -------------------------------------------------------------------------------------

layout=$(image_layout)
port=$(free_port)
start_registry "$port"
ref="127.0.0.1:$port/big:latest"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$layout:latest" "docker://$ref"
log "image $ref ($(jq -r '.manifests[0].digest' "$layout/index.json")), $ROUNDS rounds"

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order=(berthd containerd); else order=(containerd berthd); fi
  for kind in "${order[@]}"; do measure "$kind" "$round"; done
done

b=$(col berthd 3)
c=$(col containerd 3)
printf '\ncold pull of big (%s rounds, median ms):  berthd %s   containerd %s   ratio berthd/containerd %s\n' \
  "$ROUNDS" "$b" "$c" "$(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", b / c }')"
printf 'start to first OK ctr version (median ms):  berthd %s   containerd %s\n' "$(col berthd 2)" "$(col containerd 2)"
printf 'idle VmRSS after pull (median MiB):         berthd %.1f   containerd %.1f\n' \
  "$(awk -v v="$(col berthd 4)" 'BEGIN { print v / 1024 }')" "$(awk -v v="$(col containerd 4)" 'BEGIN { print v / 1024 }')"
printf '  plus child processes (median MiB):        berthd %.1f   containerd %.1f\n' \
  "$(awk -v v="$(col berthd 5)" 'BEGIN { print v / 1024 }')" "$(awk -v v="$(col containerd 5)" 'BEGIN { print v / 1024 }')"
