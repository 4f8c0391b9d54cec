#!/usr/bin/env bash
# CLI start-up (issue 5): wall time of `berth version` (grpc-js, the protos and one Version RPC
# to a berthd started here) and of `berth --help` (argument parsing only), each beside
# `node -e 0`, Node's own floor, and `ctr version` for context. The commands are interleaved,
# N rounds (default 20); prints medians and the ratios to `node -e 0`.
#
# Usage: bench/cli/startup.sh        (as root; needs a built checkout and ctr)
# Env:   N=20 QUIET_MAX=15 BERTHD=./bin/berthd
# The daemon it starts is stopped by PID and its temp dir removed on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C

N=${N:-20}
QUIET_MAX=${QUIET_MAX:-15}
BERTHD=${BERTHD:-./bin/berthd}
BERTHD_ARGS=(--log-level warn)
work=$(mktemp -d /tmp/bbc.XXXXXX)
registry_pid=
daemon_pid=
start_ms=
source bench/lib.sh

trap cleanup_run EXIT
trap 'exit 130' INT TERM

start_daemon berthd "$work/d"
sock="$work/d/daemon.sock"

# Wall ms of one run of the command in "$@"; its output is discarded, a failure ends the run.
time_ms() {
  local t0
  t0=$(now_ms)
  "$@" >/dev/null 2>&1 || { log "failed: $*"; exit 1; }
  echo $(($(now_ms) - t0))
}

declare -A label=(
  [node]='node -e 0'
  [help]='berth --help'
  [version]='berth version'
  [ctr]='ctr version'
)
run_kind() {
  case $1 in
    node) time_ms node -e 0 ;;
    help) time_ms ./bin/berth --help ;;
    version) time_ms ./bin/berth --address "$sock" version ;;
    ctr) time_ms ctr --address "$sock" version ;;
  esac
}

wait_quiet
for kind in node help version ctr; do run_kind "$kind" >/dev/null; done # warm the page cache
for _ in $(seq "$N"); do
  for kind in node help version ctr; do echo "$kind $(run_kind "$kind")" >>"$work/samples"; done
done

med() { awk -v k="$1" '$1 == k { print $2 }' "$work/samples" | median; }
node_ms=$(med node)
printf '\nCLI start-up, median of %s (ms; ratio to node -e 0):\n' "$N"
for kind in node help version ctr; do
  m=$(med "$kind")
  printf '  %-14s %7s   %s\n' "${label[$kind]}" "$m" "$(awk -v a="$m" -v b="$node_ms" 'BEGIN { printf "%.2f", a / b }')"
done
