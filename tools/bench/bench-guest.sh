#!/bin/bash
# Guest script of the benchmark (driven by tools/bench/bench.py on the host).
# The first BENCH_DISKS disks are the fixture's simulated rotating disks; the
# disk after them is the control disk through which the host acknowledges
# marks.
#
# For BENCH_RUNS rounds, for each job in BENCH_JOBS, for each of its modes,
# from a cold cache (unmount, drop caches, mount):
#   extent, csum  one `reada --tree T --mode M`, M = plain, forward, readahead
#                 (and with BENCH_COMPARE, readahead-cmp: the readahead of
#                 another build of the module, /job/compare.ko)
#   both          extent and csum at once (two processes), same modes
#   scrub         `btrfs scrub start -B` without the module (stock) and with it
# Around each run the guest prints a mark and waits for the host's
# acknowledgement (or ABORT) on the control disk, so the host can snapshot
# the disks' statistics exactly before and after the run. Then it prints one result line:
#   @@BENCH-RESULT {"job": ..., "mode": ..., "round": N, "seconds": S,
#                   "marks": [BEFORE, AFTER], "reada": [...], "scrub": {...}}@@
set -euo pipefail
. /job/env

letters=abcdefghijklmnop
devs=()
for ((i = 0; i < BENCH_DISKS; i++)); do devs+=("/dev/vd${letters:i:1}"); done
control=/dev/vd${letters:BENCH_DISKS:1}
mnt=/mnt
module=/reada/btrfs_reada.ko

for d in "${devs[@]}"; do
	echo 1 > "/sys/block/${d#/dev/}/queue/rotational"
done
info() { echo "@@BENCH-INFO $1 $2@@"; }
info kernel "$(uname -r)"
info cpus "$(nproc)"
info scheduler "$(cat /sys/block/vda/queue/scheduler)"
info nr_requests "$(cat /sys/block/vda/queue/nr_requests)"

# load_module [KO]: the module (or the build KO of it) loaded, and no other
loaded=
load_module() {
	local ko=${1:-$module}
	[ "$loaded" = "$ko" ] && return
	unload_module
	insmod "$ko" ${BENCH_MAX_IN_FLIGHT:+max_in_flight=$BENCH_MAX_IN_FLIGHT}
	loaded=$ko
}
unload_module() {
	[ ! -d /sys/module/btrfs_reada ] || rmmod btrfs_reada
	loaded=
}
load_module
info max_in_flight "$(cat /sys/module/btrfs_reada/parameters/max_in_flight)"

btrfs device scan "${devs[@]}" > /dev/null
mount -o noatime "${devs[0]}" $mnt

# mark: tell the host to snapshot the disks, wait for its acknowledgement.
marks=0
mark() {
	marks=$((marks + 1))
	echo "@@BENCH-MARK $marks@@"
	local ack
	while :; do
		ack=$(dd if=$control bs=4096 count=1 iflag=direct 2> /dev/null | head -n 1)
		[ "$ack" = "ACK $marks" ] && return
		[ "$ack" != ABORT ] || { echo "the host aborted the benchmark"; exit 1; }
		sleep 0.05
	done
}

cold_mount() {
	umount $mnt
	sync
	echo 3 > /proc/sys/vm/drop_caches
	mount -o noatime "${devs[0]}" $mnt
}

# scrub_json FILE: the per-device figures of `btrfs scrub start -B -d -R`,
# as JSON members "DEVID": {"FIELD": N, ...}
scrub_json() {
	awk '
		/^[Ss]crub device .*\(id [0-9]+\)/ {
			if (id != "") printf "}, "
			id = $0; sub(/.*\(id /, "", id); sub(/\).*/, "", id)
			printf "\"%s\": {\"devid\": %s", id, id
		}
		id != "" && $1 ~ /^[a-z_]+:$/ && $2 ~ /^[0-9]+$/ {
			k = $1; sub(/:$/, "", k); printf ", \"%s\": %s", k, $2
		}
		END { if (id != "") printf "}" }' "$1"
}

modes_of() {
	case $1 in
	scrub) echo stock module ;;
	*) echo plain forward readahead ${BENCH_COMPARE:+readahead-cmp} ;;
	esac
}

# run_job JOB MODE: the job itself, timed; sets seconds and detail (JSON)
run_job() {
	local job=$1 mode=$2 t0 t1
	rm -f /tmp/out.*
	t0=$EPOCHREALTIME
	case $job in
	extent | csum)
		reada $mnt --tree "$job" --mode "${mode%-cmp}" --json > /tmp/out.1
		;;
	both)
		reada $mnt --tree extent --mode "${mode%-cmp}" --json > /tmp/out.1 &
		local extent=$!
		reada $mnt --tree csum --mode "${mode%-cmp}" --json > /tmp/out.2 &
		wait $extent
		wait $!
		;;
	scrub)
		# (the guest kernel has no unix sockets for scrub's progress file)
		btrfs scrub start -B -d -R $mnt > /tmp/out.scrub 2> >(grep -v 'progress status socket' >&2)
		;;
	esac
	t1=$EPOCHREALTIME
	seconds=$(((${t1/./} - ${t0/./}) / 1000))
	seconds=$((seconds / 1000)).$(printf '%03d' $((seconds % 1000)))
	case $job in
	scrub) detail="\"scrub\": {$(scrub_json /tmp/out.scrub)}" ;;
	both) detail="\"reada\": [$(cat /tmp/out.1), $(cat /tmp/out.2)]" ;;
	*) detail="\"reada\": [$(cat /tmp/out.1)]" ;;
	esac
}

for ((round = 1; round <= BENCH_RUNS; round++)); do
	for job in $BENCH_JOBS; do
		for mode in $(modes_of "$job"); do
			case $job/$mode in
			scrub/stock) unload_module ;;
			*/readahead-cmp) load_module /job/compare.ko ;;
			*) load_module ;;
			esac
			cold_mount
			mark
			before=$marks
			run_job "$job" "$mode"
			mark
			echo "@@BENCH-RESULT {\"job\": \"$job\", \"mode\": \"$mode\", \"round\": $round," \
				"\"seconds\": $seconds, \"marks\": [$before, $marks], $detail}@@"
			echo "round $round/$BENCH_RUNS $job $mode: $seconds s"
		done
	done
done
umount $mnt
unload_module
echo "== benchmark done"
