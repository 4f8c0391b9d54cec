#!/usr/bin/env bash
# Task benchmarks (issue 4): berthd vs containerd 1.6 + runc, both started here, interleaved per
# round, medians. Every sample is printed, then a summary with both medians and the ratio
# berthd/containerd:
#   1. `ctr run --rm IMAGE ID /bin/true`, ROUNDS_RUN rounds (default 20); a third column runs
#      berthd with containerd's shim (`[runtime] shim = containerd-shim-runc-v2`), for context.
#   2. N (20) concurrent `ctr run -d IMAGE ID sleep 300` until `ctr task ls` lists all N
#      RUNNING, ROUNDS rounds (default 5); the tasks are removed between rounds (untimed).
#   3. Memory with N running: VmRSS and PSS sums of the daemon, its shims and the containers.
#   4. Daemon SIGKILL -> restart -> `ctr task ls` lists all N RUNNING, ROUNDS rounds.
# The image is the test fixture busybox (test/fixtures/build-images.sh), served by a private
# docker-registry on 127.0.0.1 and pulled into every daemon once before measuring. Each section
# waits for a quiet machine first (at most QUIET_MAX s) and says how busy the machine was.
# Sections 1, 2 and 4 also report the daemon side's CPU time (daemon + shims + OCI runtime calls,
# from a cpuacct cgroup per daemon, including the background work an operation sets off, read
# once the cgroup is idle again), which a busy machine distorts much less than wall time.
#
# berthd runs from a snapshot of the checkout's build (dist/, bin/, the addon, berth-runtime;
# node_modules linked) taken when dist/ has been still for 3 s, so a rebuild by someone else
# during the run cannot change or break what is measured. SNAPSHOT=0 runs ./bin/berthd directly.
#
# Usage: bench/tasks/run.sh          (as root; needs a built checkout, ctr, containerd, skopeo, jq)
# Env:   ROUNDS_RUN=20 ROUNDS=5 N=20 QUIET_MAX=30 SNAPSHOT=1 BERTHD=./bin/berthd (implies SNAPSHOT=0)
#        RM_GAP=0 (s; section 1 waits until each daemon's previous run ended at least this long
#        ago: RM_GAP=11 outlasts berth-shim's 10 s linger, so every berthd run starts a shim)
#        BERTHD_ARGS="--log-level warn" RUNC_SHIM=/usr/bin/containerd-shim-runc-v2 KEEP_LOGS=1
#
# Everything it starts is stopped by PID. At exit it removes its containers, stops the daemons
# and the registry, kills processes left under its temp dir, unmounts, deletes the containerd
# shims' sockets and runc state of its namespaces, rmdirs /sys/fs/cgroup/*/<namespace>, and
# removes the temp dir (a short path: berth-shim's socket path must fit in sun_path).
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C

ROUNDS_RUN=${ROUNDS_RUN:-20}
ROUNDS=${ROUNDS:-5}
N=${N:-20}
QUIET_MAX=${QUIET_MAX:-30}
RM_GAP=${RM_GAP:-0}
SNAPSHOT=${SNAPSHOT:-1}
[ -z "${BERTHD:-}" ] || SNAPSHOT=0
BERTHD=${BERTHD:-./bin/berthd}
read -r -a BERTHD_ARGS <<<"${BERTHD_ARGS:---log-level warn}"
RUNC_SHIM=${RUNC_SHIM:-/usr/bin/containerd-shim-runc-v2}
FIXTURE_CACHE=/var/tmp/berth-fixtures # test/setup/fixtures.ts's cache, same key
CACHE_ROOT=/var/tmp/berth-bench

[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
[ -x "$BERTHD" ] || { echo "$BERTHD not found or not executable (set BERTHD=...)" >&2; exit 1; }
[ -x "$RUNC_SHIM" ] || { echo "$RUNC_SHIM not found" >&2; exit 1; }

# Short on purpose: berth-shim listens on <state>/s/<64 hex>, and a unix socket path must fit
# in 107 bytes (see bench/README.md).
work=$(mktemp -d /tmp/bbt.XXXXXX)
registry_pid=
daemon_pid=
start_ms=
source bench/lib.sh

KINDS=(berthd containerd berthd-runc)
declare -A pid ns
declare -A dir=([berthd]="$work/b" [containerd]="$work/c" [berthd-runc]="$work/r") # short, see above
tag=${work##*.}
for k in "${KINDS[@]}"; do
  ns[$k]="bt-$tag-$k"
  pid[$k]=
done
# Each daemon runs in its own cpuacct cgroup, which its shims and OCI runtime calls inherit (the
# containers move to /<ns>/<id>): its cpuacct.usage is the daemon side's CPU time.
CPU_CG=/sys/fs/cgroup/cpuacct/bt-$tag-daemons

# --- cleanup ----------------------------------------------------------------------------------

# Containerd's runc shim keeps its socket in /run/containerd/s/sha256(<address>/<ns>/<id>) and
# runc's state in /run/containerd/runc/<ns>: outside our temp dir, so removed by name.
runc_shim_sockets() {
  local k id
  [ -f "$work/ids" ] || return 0
  while read -r k id; do
    [ "$k" = berthd ] && continue
    printf '/run/containerd/s/%s\n' "$(printf '%s' "${dir[$k]}/daemon.sock/${ns[$k]}/$id" | sha256sum | cut -c1-64)"
  done <"$work/ids"
}

remove_cgroups() {
  local n=$1 d
  for d in /sys/fs/cgroup/*/"$n" /sys/fs/cgroup/unified/"$n"; do
    [ -d "$d" ] || continue
    for _ in 1 2 3 4 5; do
      find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$d" ] || break
      sleep 0.2
    done
    [ ! -d "$d" ] || log "  could not remove cgroup $d"
  done
}

# PIDs of the descendants of $1 (a child that should have exited with the daemon; this is in case
# one did not).
descendants() {
  ps -e -o pid=,ppid= | awk -v root="$1" '{ pp[$1] = $2 }
    END { in_set[root] = 1; do { changed = 0; for (p in pp) if (!(p in in_set) && (pp[p] in in_set)) { in_set[p] = 1; changed = 1 } } while (changed)
          for (p in in_set) if (p != root) print p }'
}

cleanup() {
  local k p s kids=()
  set +e
  for k in "${KINDS[@]}"; do
    [ -n "${pid[$k]}" ] && ! pid_gone "${pid[$k]}" && remove_all "$k" >/dev/null 2>&1
    [ -n "${pid[$k]}" ] && mapfile -t -O "${#kids[@]}" kids < <(descendants "${pid[$k]}")
    stop_pid "${pid[$k]}"
  done
  stop_pid "$registry_pid"
  kill_leftovers "$work"
  for p in "${kids[@]}"; do
    pid_gone "$p" && continue
    sleep 1; pid_gone "$p" && continue
    log "  killing leftover child process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"; kill -KILL "$p" 2>/dev/null
  done
  for k in "${KINDS[@]}"; do # container processes whose shim is gone
    while read -r p; do
      log "  killing leftover container process $p"; kill -KILL "$p" 2>/dev/null
    done < <(cat /sys/fs/cgroup/pids/"${ns[$k]}"/*/cgroup.procs 2>/dev/null)
  done
  unmount_under "$work"
  for s in $(runc_shim_sockets); do [ -S "$s" ] && rm -f "$s"; done
  for k in containerd berthd-runc; do rm -rf "/run/containerd/runc/${ns[$k]}"; done
  for k in "${KINDS[@]}"; do remove_cgroups "${ns[$k]}"; done
  remove_cgroups "bt-$tag-daemons"
  if [ -n "${KEEP_LOGS:-}" ]; then
    find "$work" -mindepth 1 -not -name '*.log' -delete 2>/dev/null
    log "logs kept in $work"
  else
    rm -rf "$work"
  fi
  check_clean
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Reports anything of ours still there after cleanup.
check_clean() {
  local left
  left=$(ps -e -ww -o pid=,args= | awk -v d="$work/" 'index($0, d) && !/awk -v d=/' || true)
  [ -z "$left" ] || log "LEFT BEHIND: processes: $left"
  left=$(awk -v d="$work/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo)
  [ -z "$left" ] || log "LEFT BEHIND: mounts: $left"
  left=$(ls -d /sys/fs/cgroup/*/"bt-$tag-"* /sys/fs/cgroup/unified/"bt-$tag-"* /run/containerd/runc/"bt-$tag-"* 2>/dev/null || true)
  [ -z "$left" ] || log "LEFT BEHIND: $left"
}

# --- berthd snapshot -------------------------------------------------------------------------

# Copies what berthd, berth-shim and berth-runtime load at run time into $work/berth once the
# build looks complete and still; sets BERTHD to the copy. Prints what it copied.
snapshot_berth() {
  local dst=$work/berth newest
  for _ in $(seq 120); do
    newest=$(find dist -type f -printf '%T@\n' 2>/dev/null | sort -n | tail -1)
    if [ -x native/runtime/build/berth-runtime ] && [ -f native/addon/build/Release/berth_native.node ] &&
      [ -x shim/build/berth-shim ] && [ -f dist/berthd.cjs ] && [ -n "$newest" ] &&
      awk -v n="$newest" -v now="$(date +%s.%N)" 'BEGIN { exit !(now - n > 3) }'; then
      mkdir -p "$dst/native/runtime/build" "$dst/native/addon/build/Release" "$dst/shim/build"
      cp -a dist bin package.json "$dst/"
      cp -L native/runtime/build/berth-runtime "$dst/native/runtime/build/"
      cp -L shim/build/berth-shim "$dst/shim/build/"
      cp -L native/addon/build/Release/berth_native.node "$dst/native/addon/build/Release/"
      ln -s "$PWD/node_modules" "$dst/node_modules"
      BERTHD=$dst/bin/berthd
      printf 'berthd from a snapshot of this checkout: dist/ last written %s, berth-runtime built %s\n' \
        "$(date -u -d "@$newest" '+%T UTC')" "$(date -u -r native/runtime/build/berth-runtime '+%T UTC')"
      return 0
    fi
    sleep 1
  done
  log "the checkout's build is incomplete or still changing (dist/, native/*/build); try later or SNAPSHOT=0"
  exit 1
}

# --- image and registry -----------------------------------------------------------------------

# The fixture busybox layout: the tests' cache if it holds the current build (same key as
# test/setup/fixtures.ts), else built once into our own cache with build-images.sh.
busybox_layout() {
  local key f src=$PWD/test/fixtures dir
  key=$(for f in "$src/build-images.sh" "$src/oci-lib.sh" /bin/busybox; do printf '%s' "$f"; cat "$f"; done | sha256sum | cut -c1-16)
  if [ -f "$FIXTURE_CACHE/$key/.complete" ]; then echo "$FIXTURE_CACHE/$key/busybox"; return; fi
  dir="$CACHE_ROOT/fixtures-$key"
  if [ ! -f "$dir/.complete" ]; then
    log "building the fixture images (once; cached in $dir)"
    rm -rf "$dir.tmp"
    mkdir -p "$CACHE_ROOT"
    bash test/fixtures/build-images.sh "$dir.tmp" >/dev/null
    touch "$dir.tmp/.complete"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
  fi
  echo "$dir/busybox"
}

# --- daemons and ctr --------------------------------------------------------------------------

c() { # kind, ctr args...
  local k=$1
  shift
  ctr --address "${dir[$k]}/daemon.sock" --connect-timeout 5s --timeout 120s -n "${ns[$k]}" "$@"
}

# Starts daemon $1 in its dir (fresh or existing); sets pid[$1] and start_ms.
start_kind() {
  local k=$1
  case $k in
    containerd) start_daemon containerd "${dir[$k]}" ;;
    berthd) start_daemon berthd "${dir[$k]}" ;;
    berthd-runc)
      mkdir -p "${dir[$k]}"
      printf '[runtime]\nshim = "%s"\n' "$RUNC_SHIM" >"${dir[$k]}/berthd.toml"
      start_daemon berthd "${dir[$k]}" --config "${dir[$k]}/berthd.toml" ;;
  esac
  pid[$k]=$daemon_pid
  cpu_join "$k"
}

# The daemon's command for a restart (same as start_kind, without waiting).
spawn_kind() {
  local k=$1 d=${dir[$1]}
  case $k in
    containerd) /usr/bin/containerd --config "$d/config.toml" >>"$d/daemon.log" 2>&1 & ;;
    berthd) "$BERTHD" --root "$d/root" --state "$d/state" --address "$d/daemon.sock" "${BERTHD_ARGS[@]}" >>"$d/daemon.log" 2>&1 & ;;
    berthd-runc) "$BERTHD" --root "$d/root" --state "$d/state" --address "$d/daemon.sock" "${BERTHD_ARGS[@]}" --config "$d/berthd.toml" >>"$d/daemon.log" 2>&1 & ;;
  esac
  pid[$k]=$!
  cpu_join "$k"
}

# Moves daemon $1 into its CPU cgroup (no-op without cpuacct); call before it starts shims.
cpu_join() {
  [ -d "${CPU_CG%/*}" ] || return 0
  mkdir -p "$CPU_CG/$1"
  echo "${pid[$1]}" >"$CPU_CG/$1/cgroup.procs" 2>/dev/null || true
}
cpu_ns() { cat "$CPU_CG/$1/cpuacct.usage" 2>/dev/null || echo 0; }
# CPU time of daemon $1's own process (utime + stime), in ns (clock-tick resolution).
TICK_NS=$((1000000000 / $(getconf CLK_TCK)))
proc_ns() { sed 's/^.*) //' "/proc/${pid[$1]}/stat" 2>/dev/null | awk -v t="$TICK_NS" '{ print ($12 + $13) * t }' || echo 0; }
cpu_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
# Daemon $1's cgroup CPU (ns) once the work an operation set off in the background (a shim
# exiting) is done: when it has used under 2 ms in 200 ms,
# at most 3 s after the call. Outside the timed window.
cpu_settled() {
  local a b
  b=$(cpu_ns "$1")
  for _ in $(seq 15); do
    a=$b
    sleep 0.2
    b=$(cpu_ns "$1")
    [ $((b - a)) -ge 2000000 ] || break
  done
  echo "$b"
}

daemon_log_tail() { tail -n "${2:-20}" "${dir[$1]}/daemon.log" | sed 's/^/    | /' >&2; }

# Removes every container of daemon $1 (SIGKILL, task rm, container rm), in parallel.
remove_all() {
  local k=$1 id ids left jobs=()
  ids=$(c "$k" containers ls -q 2>/dev/null) || return 0
  for id in $ids; do
    {
      c "$k" tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 # may fail: no task, or already stopped
      c "$k" tasks rm -f "$id" >"$work/rm-$id.log" 2>&1 || echo "  (ctr tasks rm -f $id failed)" >>"$work/rm-$id.log"
      c "$k" containers rm "$id" >>"$work/rm-$id.log" 2>&1 || echo "  (ctr containers rm $id failed)" >>"$work/rm-$id.log"
    } &
    jobs+=($!)
  done
  for id in "${jobs[@]}"; do wait "$id" || true; done # not a bare wait: the daemons are children too
  left=$(c "$k" containers ls -q 2>/dev/null) || return 0
  if [ -n "$left" ]; then
    log "  $k: could not remove containers: $(echo "$left" | tr '\n' ' ')"
    for id in $left; do
      sed "s/^/    | $id: /" "$work/rm-$id.log" >&2
      c "$k" tasks ls 2>&1 | awk -v id="$id" '$1 == id' | sed 's/^/    | task ls: /' >&2
    done
    daemon_log_tail "$k" 10
  fi
  for id in $ids; do rm -f "$work/rm-$id.log"; done
}

# How many of daemon $1's tasks whose id starts with $2 are RUNNING; empty if ctr failed.
running_count() {
  local out
  out=$(c "$1" tasks ls 2>/dev/null) || return 0
  awk -v p="$2" 'index($1, p) == 1 && $3 == "RUNNING" { n++ } END { print n + 0 }' <<<"$out"
}

# --- measurement helpers ----------------------------------------------------------------------

us() { echo "${EPOCHREALTIME/./}"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1000 }'; }

cpu_sample() { awk '/^cpu / { print $2+$3+$4+$6+$7+$8, $2+$3+$4+$5+$6+$7+$8 }' /proc/stat; }
busy_pct() { awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); d = y[2] - x[2]; print (d > 0 ? int(100 * (y[1] - x[1]) / d) : 0) }'; }
# Machine busy % over the next $1 s, while this script does nothing.
bg_busy() { local a; a=$(cpu_sample); sleep "$1"; busy_pct "$a" "$(cpu_sample)"; }

# Gates a section on a quiet machine and records what it saw; section_end adds the busy % over
# the whole section (this benchmark's own work included).
section_start() {
  SECTION=$1
  printf '\n== %s\n' "$2"
  wait_quiet 2>/dev/null
  local l
  l=$(cut -d' ' -f1-3 /proc/loadavg)
  if [ "$quiet_ok" = 1 ]; then
    printf '   quiet gate: quiet after %s s (busy %% per s: %s); loadavg %s\n' "$quiet_waited" "$quiet_busy" "$l"
  else
    printf '   quiet gate: NOT quiet after %s s cap (busy %% per s: %s); loadavg %s; measuring anyway\n' "$quiet_waited" "$quiet_busy" "$l"
  fi
  echo "$SECTION gate $quiet_ok $(awk '{ v[NR] = $1 } END { for (i = NR > 3 ? NR - 2 : 1; i <= NR; i++) { s += v[i]; n++ } printf "%d", n ? s / n : 0 }' <<<"${quiet_busy// /$'\n'}") $l" >>"$work/machine"
  section_cpu0=$(cpu_sample)
  section_t0=$(us)
}
section_end() {
  local b
  b=$(busy_pct "$section_cpu0" "$(cpu_sample)")
  printf '   section took %s s; machine busy %s%% during it (includes this benchmark)\n' "$(awk -v a="$section_t0" -v b="$(us)" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')" "$b"
  echo "$SECTION during $b" >>"$work/machine"
}

sample() { echo "$*" >>"$work/samples"; } # section kind value...
median_of() {
  [ "$(count_of "$@")" -gt 0 ] || return 0
  awk -v s="$1" -v k="$2" -v c="${3:-3}" '$1 == s && $2 == k && $c != "FAIL" { print $c }' "$work/samples" | median
}
count_of() { awk -v s="$1" -v k="$2" -v c="${3:-3}" '$1 == s && $2 == k && $c != "FAIL" { n++ } END { print n + 0 }' "$work/samples"; }
fails_of() { awk -v s="$1" -v k="$2" -v c="${3:-3}" '$1 == s && $2 == k && $c == "FAIL" { n++ } END { print n + 0 }' "$work/samples"; }
ratio() { awk -v b="$1" -v c="$2" 'BEGIN { if (b == "" || c == "" || c == 0) print "n/a"; else printf "%.2f", b / c }'; }

# Interleaving: round r runs the kinds rotated by r, so none is always first.
order_for() {
  local r=$1 kinds=("${@:2}") i n=$(($# - 1))
  for i in $(seq 0 $((n - 1))); do echo "${kinds[$(((i + r) % n))]}"; done
}

# --- section 1: ctr run --rm ------------------------------------------------------------------

# When each daemon's last run --rm ended (us): berth-shim's group shim lingers 2 s after its last
# task for the group's next one, so the gap decides whether a run finds it or needs a new shim.
declare -A last_end
run_rm_once() {
  local k=$1 r=$2 id="rm-$2" t0 t1 u0 u1 p0 p1 gap=-
  echo "$k $id" >>"$work/ids"
  if [ -n "${last_end[$k]:-}" ] && [ "$RM_GAP" != 0 ]; then # at least RM_GAP s since its last run
    sleep "$(awk -v a="${last_end[$k]}" -v b="$(us)" -v g="$RM_GAP" 'BEGIN { w = g - (b - a) / 1e6; printf "%.2f", (w > 0 ? w : 0) }')"
  fi
  u0=$(cpu_ns "$k") p0=$(proc_ns "$k")
  t0=$(us)
  [ -z "${last_end[$k]:-}" ] || gap=$(awk -v a="${last_end[$k]}" -v b="$t0" 'BEGIN { printf "%.1f", (b - a) / 1e6 }')
  if c "$k" run --rm "$ref" "$id" /bin/true >"$work/out.log" 2>&1; then
    t1=$(us)
    last_end[$k]=$t1
    u1=$(cpu_settled "$k") p1=$(proc_ns "$k")
    sample s1 "$k" "$(ms_between "$t0" "$t1")" "$(cpu_ms "$u0" "$u1")" "$(cpu_ms "$p0" "$p1")"
    printf '   run --rm  round %2d  %-11s %7s ms   daemon-side CPU %6s ms (daemon process %s)   %s s after its previous run\n' "$r" "$k" "$(ms_between "$t0" "$t1")" "$(cpu_ms "$u0" "$u1")" "$(cpu_ms "$p0" "$p1")" "$gap"
  else
    sample s1 "$k" FAIL FAIL FAIL
    last_end[$k]=$(us)
    printf '   run --rm  round %2d  %-11s FAILED: %s\n' "$r" "$k" "$(tr '\n' ' ' <"$work/out.log")"
    daemon_log_tail "$k" 10
    c "$k" tasks rm -f "$id" >/dev/null 2>&1 || true
    c "$k" containers rm "$id" >/dev/null 2>&1 || true
  fi
}

section_run_rm() {
  local r k
  section_start s1 "1. ctr run --rm IMAGE ID /bin/true, $ROUNDS_RUN rounds (after 1 untimed warm-up per daemon)"
  for k in "${KINDS[@]}"; do
    c "$k" run --rm "$ref" warmup /bin/true >/dev/null 2>&1 || log "  $k: warm-up run failed"
    last_end[$k]=$(us)
    echo "$k warmup" >>"$work/ids"
  done
  for r in $(seq "$ROUNDS_RUN"); do
    printf '   round %d: machine busy %s%% over 0.5 s before it\n' "$r" "$(bg_busy 0.5)"
    for k in $(order_for "$r" "${KINDS[@]}"); do run_rm_once "$k" "$r"; done
  done
  section_end
}

# --- section 2: N concurrent ctr run -d -------------------------------------------------------

# Starts N `sleep 300` tasks on daemon $1 with ids $2-1..$2-N concurrently; prints
# "ms_all_ctr_returned ms_all_running failures" (or FAIL for the times).
start_n() {
  local k=$1 p=$2 i t0 t_ret t_run n fails=0 pids=()
  for i in $(seq "$N"); do echo "$k $p-$i" >>"$work/ids"; done
  t0=$(us)
  for i in $(seq "$N"); do
    c "$k" run -d "$ref" "$p-$i" sleep 300 >"$work/run-$p-$i.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do wait "${pids[$i]}" || fails=$((fails + 1)); done
  t_ret=$(us)
  t_run=
  for _ in $(seq 3000); do
    n=$(running_count "$k" "$p-")
    [ "${n:-0}" -ge "$N" ] && { t_run=$(us); break; }
    if [ "$fails" -gt 0 ] || [ $(($(us) - t0)) -gt 120000000 ]; then break; fi
  done
  if [ -n "$t_run" ]; then
    echo "$(ms_between "$t0" "$t_ret") $(ms_between "$t0" "$t_run") $fails"
  else
    echo "FAIL FAIL $fails"
  fi
}

section_start_n() {
  local r k res a b f u0 u1 p0 p1 cpu pcpu
  section_start s2 "2. $N concurrent ctr run -d IMAGE ID sleep 300 -> ctr task ls shows $N RUNNING, $ROUNDS rounds"
  for r in $(seq "$ROUNDS"); do
    printf '   round %d: machine busy %s%% over 1 s before it\n' "$r" "$(bg_busy 1)"
    for k in $(order_for "$r" berthd containerd); do
      u0=$(cpu_ns "$k") p0=$(proc_ns "$k")
      res=$(start_n "$k" "c$r")
      u1=$(cpu_settled "$k") p1=$(proc_ns "$k")
      read -r a b f <<<"$res"
      cpu=FAIL pcpu=FAIL
      if [ "$b" != FAIL ]; then cpu=$(cpu_ms "$u0" "$u1") pcpu=$(cpu_ms "$p0" "$p1"); fi
      sample s2 "$k" "$b" "$a" "$cpu" "$pcpu"
      if [ "$b" = FAIL ]; then
        printf '   %d x run -d  round %d  %-10s FAILED (%s ctr failed); first errors:\n' "$N" "$r" "$k" "$f"
        cat "$work"/run-c"$r"-*.log | sort | uniq -c | head -5 | sed 's/^/    | /'
        daemon_log_tail "$k" 10
      else
        printf '   %d x run -d  round %d  %-10s %8s ms to %d RUNNING  (all ctr returned %s ms; %s ctr failed)   daemon-side CPU %s ms (daemon process %s)\n' "$N" "$r" "$k" "$b" "$N" "$a" "$f" "$cpu" "$pcpu"
      fi
      rm -f "$work"/run-c"$r"-*.log
      remove_all "$k" # untimed
      sleep 1
    done
  done
  section_end
}

# --- section 3: memory ------------------------------------------------------------------------

kib() { awk -v f="$2" '$1 == f":" { print $2; exit }' "$1" 2>/dev/null || true; }

# Prints "daemon_rss daemon_pss shims shim_rss shim_pss containers ctr_rss ctr_pss" (KiB) for
# daemon $1: its shims are its descendants or processes whose command line names its dir, the
# containers are the processes among those that sit in the namespace's cgroup.
memory_of() {
  local k=$1 d=${dir[$1]} snap set p rss pss cls sr=0 sp=0 sn=0 cr=0 cp=0 cn=0
  snap="$work/ps.txt"
  ps -e -ww -o pid=,ppid=,args= >"$snap"
  set=$(awk -v d="$d/" -v root="${pid[$k]}" '
    { pp[$1] = $2; if (index($0, d) || $1 == root) in_set[$1] = 1 }
    END {
      do { changed = 0; for (p in pp) if (!(p in in_set) && (pp[p] in in_set)) { in_set[p] = 1; changed = 1 } } while (changed)
      for (p in in_set) print p
    }' "$snap")
  for p in $set; do
    [ "$p" = "${pid[$k]}" ] && continue
    [ -r "/proc/$p/status" ] || continue
    rss=$(kib "/proc/$p/status" VmRSS)
    pss=$(kib "/proc/$p/smaps_rollup" Pss)
    cls=shim
    grep -q ":/${ns[$k]}/" "/proc/$p/cgroup" 2>/dev/null && cls=container
    if [ "$cls" = container ]; then
      cr=$((cr + ${rss:-0})) cp=$((cp + ${pss:-0})) cn=$((cn + 1))
    else
      sr=$((sr + ${rss:-0})) sp=$((sp + ${pss:-0})) sn=$((sn + 1))
      printf '     %s shim-side process %s: VmRSS %s KiB, PSS %s KiB: %s\n' "$k" "$p" "${rss:-?}" "${pss:-?}" "$(awk -v p="$p" '$1 == p { $1 = ""; $2 = ""; print substr($0, 3, 110); exit }' "$snap")" >&2
    fi
  done
  echo "$(kib "/proc/${pid[$k]}/status" VmRSS) $(kib "/proc/${pid[$k]}/smaps_rollup" Pss) $sn $sr $sp $cn $cr $cp"
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

section_memory() {
  local k res dr dp sn sr sp cn cr cp f
  section_start s3 "3. memory with $N running (sleep 300): daemon + shims + containers"
  for k in berthd containerd; do
    f=$(start_n "$k" m)
    case $f in FAIL*) printf '   %s: could not start %d tasks (%s)\n' "$k" "$N" "$f"; daemon_log_tail "$k" 10 ;; esac
  done
  sleep 3 # settle
  for k in berthd containerd; do
    res=$(memory_of "$k" 2>"$work/mem-$k.txt")
    read -r dr dp sn sr sp cn cr cp <<<"$res"
    sed 's/^/  /' "$work/mem-$k.txt"
    printf '   %-10s daemon VmRSS %6s MiB PSS %6s | %2d shim-side processes VmRSS %6s MiB PSS %6s | %2d containers VmRSS %5s MiB PSS %5s | total VmRSS %6s MiB PSS %6s MiB\n' \
      "$k" "$(mib "$dr")" "$(mib "$dp")" "$sn" "$(mib "$sr")" "$(mib "$sp")" "$cn" "$(mib "$cr")" "$(mib "$cp")" "$(mib $((dr + sr + cr)))" "$(mib $((dp + sp + cp)))"
    sample s3 "$k" $((dr + sr + cr)) $((dp + sp + cp)) "$dr" "$sn" "$sr" "$cn" "$cr"
  done
  section_end
}

# --- section 4: restart -----------------------------------------------------------------------

task_pids() { c "$1" tasks ls 2>/dev/null | awk 'index($1, "m-") == 1 { print $1, $2, $3 }' | sort; }

# SIGKILLs daemon $1 with N running and restarts it; sets r_api and r_run (ms from exec to the
# first OK `ctr task ls` and to one listing N RUNNING; FAIL if never), r_cpu (daemon-side CPU ms
# from exec until settled, see cpu_settled), r_alive (containers alive
# while the daemon was down) and r_same (task pids unchanged). Not for $(...): the new daemon
# must be this shell's child.
restart_once() {
  local k=$1 before after t0 t_api='' t_run='' out n alive=0 p u0 u1
  before=$(task_pids "$k")
  exec 3>&2 2>/dev/null # bash's "Killed" job notice
  kill -KILL "${pid[$k]}"
  for _ in $(seq 400); do pid_gone "${pid[$k]}" && break; sleep 0.01; done
  wait "${pid[$k]}" || true
  exec 2>&3 3>&-
  while read -r _ p _; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done <<<"$before"
  u0=$(cpu_ns "$k")
  t0=$(us)
  spawn_kind "$k"
  for _ in $(seq 6000); do
    if out=$(c "$k" tasks ls 2>/dev/null); then
      [ -n "$t_api" ] || t_api=$(us)
      n=$(awk 'index($1, "m-") == 1 && $3 == "RUNNING" { n++ } END { print n + 0 }' <<<"$out")
      [ "$n" -ge "$N" ] && { t_run=$(us); break; }
    fi
    pid_gone "${pid[$k]}" && break
    [ $(($(us) - t0)) -gt 60000000 ] && break
  done
  [ -z "$t_run" ] || u1=$(cpu_settled "$k")
  after=$(task_pids "$k")
  r_api=FAIL r_run=FAIL r_cpu=FAIL r_alive=$alive r_same=no
  [ -z "$t_api" ] || r_api=$(ms_between "$t0" "$t_api")
  [ -z "$t_run" ] || { r_run=$(ms_between "$t0" "$t_run"); r_cpu=$(cpu_ms "$u0" "$u1"); }
  [ "$before" != "$after" ] || r_same=yes
}

section_restart() {
  local r k
  section_start s4 "4. daemon SIGKILL -> restart -> ctr task ls shows $N RUNNING, $ROUNDS rounds"
  for r in $(seq "$ROUNDS"); do
    printf '   round %d: machine busy %s%% over 1 s before it\n' "$r" "$(bg_busy 1)"
    for k in $(order_for "$r" berthd containerd); do
      restart_once "$k"
      # A restart the script could not see through would leave no daemon for the next round.
      if [ "$r_run" = FAIL ] || pid_gone "${pid[$k]}"; then
        printf '   restart  round %d  %-10s FAILED (first OK API call: %s ms; %s/%d containers alive while down)\n' "$r" "$k" "$r_api" "$r_alive" "$N"
        daemon_log_tail "$k" 15
        sample s4 "$k" FAIL FAIL FAIL
        if pid_gone "${pid[$k]}"; then start_kind "$k"; fi
      else
        printf '   restart  round %d  %-10s %7s ms to %d RUNNING  (first OK API call %s ms; %d/%d containers alive while down; task pids unchanged: %s)   daemon-side CPU %s ms\n' \
          "$r" "$k" "$r_run" "$N" "$r_api" "$r_alive" "$N" "$r_same" "$r_cpu"
        sample s4 "$k" "$r_run" "$r_api" "$r_cpu"
      fi
      sleep 1
    done
  done
  section_end
}

# --- main -------------------------------------------------------------------------------------

printf 'berth task benchmarks, %s; %s; %d vCPU; berthd %s; containerd %s\n' "$(date -u '+%F %T UTC')" "$(uname -r)" "$(nproc)" \
  "$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- services shim native 2>/dev/null || echo ' + uncommitted changes')" \
  "$(/usr/bin/containerd --version | awk '{ print $3 }')"
if [ "$SNAPSHOT" = 1 ]; then snapshot_berth; fi
layout=$(busybox_layout)
port=$(free_port)
start_registry "$port"
ref="127.0.0.1:$port/busybox:latest"
skopeo copy --quiet --preserve-digests --dest-tls-verify=false "oci:$layout:latest" "docker://$ref"
printf 'image %s (%s)\n' "$ref" "$(jq -r '.manifests[0].digest' "$layout/index.json")"
for k in "${KINDS[@]}"; do
  start_kind "$k"
  c "$k" images pull --plain-http "$ref" >"$work/pull.log" 2>&1 || { log "$k: pull failed:"; cat "$work/pull.log" >&2; daemon_log_tail "$k" 30; exit 1; }
  printf 'started %-11s pid %-7s ready in %s ms, namespace %s; image pulled\n' "$k" "${pid[$k]}" "$start_ms" "${ns[$k]}"
done

section_run_rm
# The berthd-with-runc-shim daemon is only for section 1.
stop_pid "${pid[berthd-runc]}"
pid[berthd-runc]=
section_start_n
section_memory
section_restart

# --- summary ----------------------------------------------------------------------------------

row() { # label section col target
  local b c
  b=$(median_of "$2" berthd "$3")
  c=$(median_of "$2" containerd "$3")
  printf '%-58s %10s %12s %8s %8s\n' "$1" "${b:-n/a}" "${c:-n/a}" "$(ratio "$b" "$c")" "$4"
}
mrow() { # label col target
  local b c
  b=$(awk -v c="$2" '$1 == "s3" && $2 == "berthd" { printf "%.1f", $c / 1024 }' "$work/samples")
  c=$(awk -v c="$2" '$1 == "s3" && $2 == "containerd" { printf "%.1f", $c / 1024 }' "$work/samples")
  printf '%-58s %10s %12s %8s %8s\n' "$1" "${b:-n/a}" "${c:-n/a}" "$(ratio "$b" "$c")" "$3"
}

printf '\n== summary (medians; ratio = berthd / containerd)\n'
printf '%-58s %10s %12s %8s %8s\n' "" berthd containerd ratio target
row "1. ctr run --rm /bin/true, ms (n=$(count_of s1 berthd)/$(count_of s1 containerd))" s1 3 "<= 0.5"
row "   daemon-side CPU per run, ms" s1 4 ""
row "     of which the daemon process, ms" s1 5 ""
b=$(median_of s1 berthd-runc)
printf '   berthd + containerd-shim-runc-v2 (context), ms (n=%s): %s, ratio to containerd %s; daemon-side CPU %s ms (daemon process %s), ratio %s\n' \
  "$(count_of s1 berthd-runc)" "${b:-n/a}" "$(ratio "$b" "$(median_of s1 containerd)")" "$(median_of s1 berthd-runc 4)" "$(median_of s1 berthd-runc 5)" "$(ratio "$(median_of s1 berthd-runc 4)" "$(median_of s1 containerd 4)")"
row "2. $N x run -d -> $N RUNNING, ms (n=$(count_of s2 berthd)/$(count_of s2 containerd))" s2 3 "<= 0.5"
row "   (all $N ctr run -d returned), ms" s2 4 ""
row "   daemon-side CPU per round, ms" s2 5 ""
row "     of which the daemon process, ms" s2 6 ""
mrow "3. VmRSS daemon + shims + $N containers, MiB" 3 "<= 0.5"
mrow "   PSS, same processes, MiB" 4 ""
mrow "   daemon VmRSS, MiB" 5 ""
mrow "   shim-side processes VmRSS, MiB" 7 ""
mrow "   container processes VmRSS, MiB" 9 ""
row "4. SIGKILL -> restart -> $N RUNNING, ms (n=$(count_of s4 berthd)/$(count_of s4 containerd))" s4 3 ""
row "   (exec -> first OK ctr task ls), ms" s4 4 ""
row "   daemon-side CPU from exec until idle again, ms" s4 5 ""
for s in s1 s2 s4; do
  for k in berthd containerd berthd-runc; do
    f=$(fails_of "$s" "$k")
    [ "$f" = 0 ] || printf '   %s: %s failed samples of %s (excluded from the median)\n' "$s" "$f" "$k"
  done
done
printf '\nmachine (%s vCPU, shared): gate = quiet or not when the section started (cap %s s), with the busy %% of its last 3 s; during = busy %% over the section, this benchmark included\n' "$(nproc)" "$QUIET_MAX"
awk '$2 == "gate" { g[$1] = ($3 == 1 ? "quiet" : "NOT quiet") " (last 3 s: " $4 "% busy), loadavg " $5 " " $6 " " $7 } $2 == "during" { d[$1] = $3 }
  END { for (s = 1; s <= 4; s++) { k = "s" s; if (k in g) printf "   section %d: gate %s; during %s%%\n", s, g[k], d[k] } }' "$work/machine"
