#!/usr/bin/env bash
# Cold-pull benchmark: `ctr images pull --plain-http` of the ~185 MB, 5-layer "big" image against
# berthd and against containerd 1.6, each on a fresh root for every pull, interleaved (the order
# alternates per round), N rounds (default 5). Prints each sample, both medians, the ratio
# berthd/containerd, daemon start times and idle RSS (after the pull, image in store, as in
# /work/shared/anchor-figures.md). A third column, berthd-pull, is berthd pulling server-side
# (`berth pull`, the Pull API), compared with the same containerd figure.
#
# Usage: bench/pull/run.sh            (as root; needs ./bin/berthd)
# Env:   ROUNDS=5  BERTHD=./bin/berthd  BERTHD_ARGS="--log-level warn"  KEEP_LOGS=1
#        QUIET_MAX=15 (max seconds to wait for an idle machine before each pull)
#        SETTLE=0 (seconds to wait after the sync before each pull; see below)
# On a journal-less ext4 (this VM's root), allocating an inode steps over every inode of its block
# group freed in the last 60 s, so a pull right after the previous round's root was removed pays
# for that removal; SETTLE=65 measures both daemons without that effect.
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

# Short: berthd keeps unix sockets under its state dir (at most 40 bytes).
work=$(mktemp -d /tmp/bbp.XXXXXX)
registry_pid=
daemon_pid=
start_ms=

source bench/lib.sh

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

pull_with() {
  if [ "$1" = berthd-pull ]; then
    ./bin/berth --address "$2/daemon.sock" -n "$NS" pull --plain-http "$ref"
  else
    ctr --address "$2/daemon.sock" --connect-timeout 5s -n "$NS" images pull --plain-http "$ref"
  fi
}

# One cold pull on daemon $1 in round $2; appends "kind start_ms pull_ms rss_kib children_kib".
measure() {
  local kind=$1 round=$2 d="$work/$2-$1" t0 pull rss kids usr sys
  # Earlier rounds' dirty pages (and their removal) would otherwise be written back during this
  # pull, charging one daemon for the other's I/O: every pull starts with nothing to write back.
  sync
  sleep "${SETTLE:-0}"
  wait_quiet
  # "berth-pull" is berthd pulling server-side through its Pull API (`berth pull`, issue 5).
  start_daemon "${kind%-pull}" "$d"
  t0=$(now_ms)
  if ! pull_with "$kind" "$d" >"$d/pull.log" 2>&1; then
    log "$kind pull failed:"; tail -n 20 "$d/pull.log" >&2; tail -n 50 "$d/daemon.log" >&2
    exit 1
  fi
  pull=$(($(now_ms) - t0))
  sleep 1 # let the daemon settle before reading its idle RSS
  rss=$(rss_kib "$daemon_pid")
  kids=$(children_rss_kib "$daemon_pid")
  # The daemon's own CPU since it started, user and system apart (clock ticks → ms): the pull's
  # work on the daemon side; system time is mostly the kernel writing files.
  read -r usr sys < <(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int($12 * 1000 / hz), int($13 * 1000 / hz) }' "/proc/$daemon_pid/stat")
  stop_pid "$daemon_pid"
  daemon_pid=
  kill_leftovers "$d"
  unmount_under "$d"
  [ -n "${KEEP_LOGS:-}" ] || rm -rf "$d"
  log "  round $round $kind: pull ${pull} ms, start ${start_ms} ms, idle RSS $((rss / 1024)) MiB, daemon CPU user ${usr} ms system ${sys} ms"
  echo "$kind $start_ms $pull $rss $kids $usr $sys" >>"$work/samples"
}

col() { awk -v k="$1" -v c="$2" '$1 == k { print $c }' "$work/samples" | median; }

# --- main -------------------------------------------------------------------------------------

layout=$(image_layout)
port=$(free_port)
start_registry "$port"
ref="127.0.0.1:$port/big:latest"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$layout:latest" "docker://$ref"
log "image $ref ($(jq -r '.manifests[0].digest' "$layout/index.json")), $ROUNDS rounds"

for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order=(berthd containerd berthd-pull); else order=(berthd-pull containerd berthd); fi
  for kind in "${order[@]}"; do measure "$kind" "$round"; done
done

b=$(col berthd 3)
c=$(col containerd 3)
p=$(col berthd-pull 3)
printf '\ncold pull of big (%s rounds, median ms):  berthd %s   containerd %s   ratio berthd/containerd %s\n' \
  "$ROUNDS" "$b" "$c" "$(awk -v b="$b" -v c="$c" 'BEGIN { printf "%.2f", b / c }')"
printf 'server-side `berth pull` (median ms):       berthd %s   ratio to containerd ctr pull %s\n' \
  "$p" "$(awk -v b="$p" -v c="$c" 'BEGIN { printf "%.2f", b / c }')"
printf 'daemon CPU user, start + pull (median ms):   berthd %s   containerd %s\n' "$(col berthd 6)" "$(col containerd 6)"
printf 'daemon CPU system, start + pull (median ms): berthd %s   containerd %s\n' "$(col berthd 7)" "$(col containerd 7)"
printf 'start to first OK ctr version (median ms):  berthd %s   containerd %s\n' "$(col berthd 2)" "$(col containerd 2)"
printf 'idle VmRSS after pull (median MiB):         berthd %.1f   containerd %.1f\n' \
  "$(awk -v v="$(col berthd 4)" 'BEGIN { print v / 1024 }')" "$(awk -v v="$(col containerd 4)" 'BEGIN { print v / 1024 }')"
printf '  plus child processes (median MiB):        berthd %.1f   containerd %.1f\n' \
  "$(awk -v v="$(col berthd 5)" 'BEGIN { print v / 1024 }')" "$(awk -v v="$(col containerd 5)" 'BEGIN { print v / 1024 }')"
