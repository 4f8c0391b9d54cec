#!/usr/bin/env bash
# `run` of /bin/true on one busybox bundle with berth-runtime, runc and crun, interleaved, N rounds
# (default 20). Prints each runtime's median wall time and the ratios berth/crun and berth/runc,
# then the median CPU time (user+sys of the runtime and everything it reaped, i.e. the container
# too), which varies much less than wall time on a busy host.
#
# crun 1.8 refuses this host's hybrid cgroups (cgroup2 lists hugetlb), so crun runs in a helper
# shell inside a private mount namespace with /sys/fs/cgroup/unified unmounted. That helper
# times crun itself with $EPOCHREALTIME, as the main loop does for the others, so the namespace
# plumbing is not counted against crun.
#
# Usage: bench/runtime/bench.sh [N]     (as root; needs runc, crun, busybox-static, jq)
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-20}
BERTH=${BERTH:-$PWD/bin/berth-runtime}
# State roots on tmpfs (/run), as each runtime's default is; the bundle is read-only input.
work=$(mktemp -d /run/berth-bench-runtime.XXXXXX)
cleanup() {
	[ -n "${CRUN_PID:-}" ] && kill "$CRUN_PID" 2>/dev/null || true
	for r in berth runc crun; do
		for d in "$work/$r"/*/; do
			[ -d "$d" ] || continue
			id=$(basename "$d")
			case $r in
			berth) "$BERTH" --root "$work/berth" delete -f "$id" ;;
			runc) runc --root "$work/runc" delete -f "$id" ;;
			esac >/dev/null 2>&1 || true
		done
	done
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bundle/rootfs/bin" "$work/bundle/rootfs/proc" "$work/bundle/rootfs/sys" "$work/bundle/rootfs/dev"
cp /bin/busybox "$work/bundle/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$work/bundle/rootfs/bin/$a"
done
(cd "$work/bundle" && runc spec && jq '.process.terminal=false | .process.args=["/bin/true"]' config.json >c && mv c config.json)

# CPU seconds (user+sys) of the reaped children of the shell, from a `times` snapshot (a builtin:
# taking it forks nothing, so only what ran between two snapshots is in their difference).
cpu_of() {
	awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } print t }' "$1"
}
export -f cpu_of

coproc CRUN {
	exec unshare -m --propagation private bash -c '
		umount /sys/fs/cgroup/unified
		while read -r id; do
			times >"$1/crun.t0"
			s=$EPOCHREALTIME
			crun --root "$1/crun" run --bundle "$1/bundle" "$id" >/dev/null 2>&1 </dev/null || echo "crun failed" >&2
			e=$EPOCHREALTIME
			times >"$1/crun.t1"
			echo "$s $e $(cpu_of "$1/crun.t0") $(cpu_of "$1/crun.t1")"
		done' bash "$work"
}

time_one() { # runtime round -> appends "runtime start end cpu0 cpu1" to samples
	local r=$1 id="bench-$1-$2" s e c0 c1
	case $r in
	berth | runc)
		times >"$work/t0"
		s=$EPOCHREALTIME
		if [ "$r" = berth ]; then
			"$BERTH" --root "$work/berth" run --bundle "$work/bundle" "$id" >/dev/null </dev/null
		else
			runc --root "$work/runc" run --bundle "$work/bundle" "$id" >/dev/null </dev/null
		fi
		e=$EPOCHREALTIME
		times >"$work/t1"
		c0=$(cpu_of "$work/t0") c1=$(cpu_of "$work/t1") ;;
	crun)
		echo "$id" >&"${CRUN[1]}"
		read -r s e c0 c1 <&"${CRUN[0]}" ;;
	esac
	echo "$r $s $e $c0 $c1" >>"$work/samples"
}

# One warm-up each, not counted; then rounds in rotating order so drift hits all three alike.
for r in berth runc crun; do time_one "$r" warm; done
: >"$work/samples"
order=(berth runc crun)
for ((i = 0; i < N; i++)); do
	for ((k = 0; k < 3; k++)); do time_one "${order[(i + k) % 3]}" "$i"; done
done

median() { # runtime column-pair(wall|cpu) -> median ms
	awk -v r="$1" -v what="$2" '$1 == r { printf "%.3f\n", (what == "wall" ? $3 - $2 : $5 - $4) * 1000 }' "$work/samples" |
		sort -n | awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}
b=$(median berth wall) r=$(median runc wall) c=$(median crun wall)
echo "runs per runtime: $N (interleaved, after one warm-up each)"
printf 'median berth-runtime run:   %7.2f ms\nmedian runc run:            %7.2f ms\nmedian crun run:            %7.2f ms\n' "$b" "$r" "$c"
awk -v b="$b" -v r="$r" -v c="$c" 'BEGIN { printf "ratio berth/crun: %.2f\nratio berth/runc: %.2f\n", b / c, b / r }'
b=$(median berth cpu) r=$(median runc cpu) c=$(median crun cpu)
printf 'median CPU time (user+sys, 1 ms resolution): berth-runtime %.1f ms, runc %.1f ms, crun %.1f ms\n' "$b" "$r" "$c"
