#!/bin/bash
# Guest script of the benchmark (driven by tools/bench/bench.py on the host).
# The first BENCH_DISKS disks are the fixture's simulated disks; the disk
# after them is the control disk through which the host acknowledges marks.
#
# For BENCH_RUNS rounds, for each job in BENCH_JOBS, for each of its modes,
# from a cold cache (unmount, drop caches, mount, let the readahead that
# mount started end, drop caches again):
#   extent, csum  one `reada --tree T --mode M`, M = plain, forward,
#                 forward-always, readahead
#                 (and with BENCH_COMPARE, readahead-cmp: the readahead of
#                 another build of the module, /job/compare.ko)
#   both          extent and csum at once (two processes), same modes
#   scrub         `btrfs scrub start -B` without the module (stock) and with it
# and the jobs of the in-kernel users of the readahead, on the users fixture
# (tools/bench/make-users-fixture.sh), each without the module (stock) and
# with it (module):
#   mount         mount, from unmounted with a cold cache
#   rescan        enable quotas and wait for the rescan that starts
#                 (quotas are disabled again after the run)
#   send          a full send of /mnt/meta-snap, into sha256sum
#   delete        delete the next of the files /mnt/groups/f0 ..
#                 f{BENCH_DELETABLE-1}, and commit
# Around each run the guest prints a mark and waits for the host's
# acknowledgement (or ABORT) on the control disk, so the host can snapshot
# the disks' statistics exactly before and after the run. Then it prints one
# result line:
#   @@BENCH-RESULT {"job": ..., "mode": ..., "round": N, "seconds": S,
#                   "marks": [BEFORE, AFTER], "reada": [...], "scrub": {...},
#                   "work": "...", "prefetch": {...}}@@
# where a user job's "work" says what it did (the same in both modes of a
# round, or the run measured different work) and "prefetch" counts the
# readahead requests the job's user made and the blocks they read.
set -euo pipefail
. /job/env

letters=abcdefghijklmnop
devs=()
for ((i = 0; i < BENCH_DISKS; i++)); do devs+=("/dev/vd${letters:i:1}"); done
control=/dev/vd${letters:BENCH_DISKS:1}
mnt=/mnt
module=/reada/btrfs_reada.ko

# The disks say what the drive model is: rotational, or flash (no seeks).
for d in "${devs[@]}"; do
	echo "$BENCH_ROTATIONAL" > "/sys/block/${d#/dev/}/queue/rotational"
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
	insmod "$ko" ${BENCH_MAX_IN_FLIGHT:+max_in_flight=$BENCH_MAX_IN_FLIGHT} \
		${BENCH_MAX_IN_FLIGHT_NONROT:+max_in_flight_nonrot=$BENCH_MAX_IN_FLIGHT_NONROT}
	loaded=$ko
}
unload_module() {
	[ ! -d /sys/module/btrfs_reada ] || rmmod btrfs_reada
	loaded=
}
load_module
info max_in_flight "$(cat /sys/module/btrfs_reada/parameters/max_in_flight)"
info max_in_flight_nonrot "$(cat /sys/module/btrfs_reada/parameters/max_in_flight_nonrot)"
info rotational "$(cat /sys/block/vda/queue/rotational)"

btrfs device scan "${devs[@]}" > /dev/null
mount -o noatime "${devs[0]}" $mnt
fsid=$(btrfs filesystem show "${devs[0]}" | awk '/uuid:/ { print $NF }')

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

counters=/sys/kernel/debug/btrfs_reada/counters
# counter NAME: a counter of the module, 0 without the module
counter() {
	[ -e $counters ] || { echo 0; return; }
	awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' $counters
}
# requests_end: wait until the module has no request left (detached ones
# end on their own)
requests_end() {
	local i
	for ((i = 0; i < 600; i++)); do
		[ "$(counter requests_active)" = 0 ] && return
		sleep 0.1
	done
	echo "readahead requests still active after 60 s"
	exit 1
}

cold_unmount() {
	! grep -q " $mnt " /proc/mounts || umount $mnt
	sync
	echo 3 > /proc/sys/vm/drop_caches
}
cold_mount() {
	cold_unmount
	mount -o noatime "${devs[0]}" $mnt
	requests_end
	echo 3 > /proc/sys/vm/drop_caches
}

# The user of the readahead behind each user job (the module's
# user_USER_requests and user_USER_blocks_read counters).
declare -A user_of=([mount]=mount [rescan]=qgroup_rescan [send]=send [delete]=truncate)
deleted=0

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
	scrub | mount | rescan | send | delete) echo stock module ;;
	*) echo plain forward forward-always readahead ${BENCH_COMPARE:+readahead-cmp} ;;
	esac
}

# run_job JOB MODE: the job itself, timed; sets seconds and detail (JSON)
run_job() {
	local job=$1 mode=$2 t0 t1
	rm -f /tmp/out.*
	case $job in
	mount | rescan | send | delete)
		made0=$(counter "user_${user_of[$job]}_requests")
		read0=$(counter "user_${user_of[$job]}_blocks_read")
		;;
	esac
	if [ "$job" = delete ]; then
		((deleted < BENCH_DELETABLE)) || { echo "no file left to delete (f0 .. f$((BENCH_DELETABLE - 1)))"; exit 1; }
		used0=$(cat "/sys/fs/btrfs/$fsid/allocation/data/bytes_used")
	fi
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
	mount) mount -o noatime "${devs[0]}" $mnt ;;
	rescan)
		btrfs quota enable $mnt
		btrfs quota rescan -W $mnt
		;;
	send) btrfs send -q $mnt/meta-snap | sha256sum > /tmp/out.send ;;
	delete)
		rm "$mnt/groups/f$deleted"
		sync
		;;
	esac
	t1=$EPOCHREALTIME
	seconds=$(((${t1/./} - ${t0/./}) / 1000))
	seconds=$((seconds / 1000)).$(printf '%03d' $((seconds % 1000)))
	case $job in
	scrub) detail="\"scrub\": {$(scrub_json /tmp/out.scrub)}" ;;
	both) detail="\"reada\": [$(cat /tmp/out.1), $(cat /tmp/out.2)]" ;;
	extent | csum) detail="\"reada\": [$(cat /tmp/out.1)]" ;;
	*)
		local work
		case $job in
		mount)
			# what btrfs loaded of the block groups: every allocation total
			work=$(cd "/sys/fs/btrfs/$fsid/allocation" && find . -name total_bytes -o -name bytes_used \
				-o -name disk_total -o -name disk_used -o -name bytes_readonly | sort | xargs grep . | sha256sum)
			;;
		rescan) work=$(btrfs qgroup show --raw $mnt | sha256sum) ;;
		send) work=$(cat /tmp/out.send) ;;
		delete)
			work="$((used0 - $(cat "/sys/fs/btrfs/$fsid/allocation/data/bytes_used"))) bytes freed"
			deleted=$((deleted + 1))
			;;
		esac
		requests_end
		local user=${user_of[$job]}
		detail="\"work\": \"${work%% *}\", \"prefetch\": {\"requests\": $(($(counter "user_${user}_requests") - made0)),"
		detail+=" \"blocks_read\": $(($(counter "user_${user}_blocks_read") - read0))}"
		;;
	esac
}

for ((round = 1; round <= BENCH_RUNS; round++)); do
	for job in $BENCH_JOBS; do
		for mode in $(modes_of "$job"); do
			case $job/$mode in
			*/stock) unload_module ;;
			*/readahead-cmp) load_module /job/compare.ko ;;
			*) load_module ;;
			esac
			if [ "$job" = mount ]; then cold_unmount; else cold_mount; fi
			mark
			before=$marks
			run_job "$job" "$mode"
			mark
			[ "$job" != rescan ] || btrfs quota disable $mnt
			echo "@@BENCH-RESULT {\"job\": \"$job\", \"mode\": \"$mode\", \"round\": $round," \
				"\"seconds\": $seconds, \"marks\": [$before, $marks], $detail}@@"
			echo "round $round/$BENCH_RUNS $job $mode: $seconds s"
		done
	done
done
umount $mnt
unload_module
echo "== benchmark done"
