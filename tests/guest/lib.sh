# Helpers for guest tests (bash). Source it first: . /tests/lib.sh
set -euo pipefail
# Variables the host passed with vmrun.py --env.
if [ -r /job/env ]; then . /job/env; fi

MODULE=/reada/btrfs_reada.ko
MNT=/mnt
# No udev in the guest: dmsetup must not wait for it.
export DM_DISABLE_UDEV=1

# fail MESSAGE: end the test as failed, also when called in a subshell such
# as "$(helper)" in a command's arguments, where exit alone would end only
# the subshell and set -e would not see it: the subshell signals the script.
TEST_PID=$$
trap 'exit 1' USR1
fail() {
	echo "FAIL: $*" >&2
	[ "$BASHPID" = "$TEST_PID" ] || kill -USR1 "$TEST_PID"
	exit 1
}
# say WHAT: a phase of the test, in its output and, with the kernel's
# timestamp, on the console (where the phases' times can be read)
say() {
	echo "--- $*"
	echo "reada-test: --- $*" > /dev/kmsg 2>/dev/null || true
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
	echo "ok: $1 = $3"
}

# expect_quiet WHAT EXPECTED ACTUAL: expect_eq that says nothing when it holds
expect_quiet() { [ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"; }

# expect_status WHAT EXPECTED_STATUS COMMAND...: run COMMAND, compare its exit status
expect_status() {
	local what=$1 want=$2 got=0
	shift 2
	"$@" || got=$?
	[ "$got" = "$want" ] || fail "$what: expected exit status $want, got $got"
	echo "ok: $what (status $got)"
}

# kasan_kernel: true on the KASAN and kmemleak kernel, some ten times slower
# under TCG, where the longest tests do less
kasan_kernel() { [ -e /sys/kernel/debug/kmemleak ]; }

# full_suite: true in `make check-full` (run-tests.py --suite full), where
# the longest tests run all their rounds; `make check` runs fewer, to stay
# within CI's time on two slow cores
full_suite() { [ "${READA_SUITE:-full}" = full ]; }

module_loaded() { [ -d /sys/module/btrfs_reada ]; }
load_module() { insmod "$MODULE"; module_loaded || fail "module did not load"; }
unload_module() { rmmod btrfs_reada; ! module_loaded || fail "module did not unload"; }

# disks N: the first N virtual disks, /dev/vda /dev/vdb ...
disks() {
	local n=$1 letters=abcdefghijklmnop i out=()
	for ((i = 0; i < n; i++)); do out+=("/dev/vd${letters:i:1}"); done
	echo "${out[@]}"
}

# devid_disk DEVID: the disk of DEVID on a filesystem made by mkfs.btrfs over
# /dev/vda /dev/vdb ... in that order (devids 1, 2, ...)
devid_disk() { echo "/dev/vd$(echo abcdefghijklmnop | cut -c"$1")"; }

# sectors read so far by a block device (field 3 of /sys/block/X/stat)
sectors_read() { awk '{print $3}' "/sys/block/${1#/dev/}/stat"; }

# probe ARGS...: one raw BTRFS_IOC_READA; prints "ok ..." or "errno=NAME"
probe() { reada-probe "$@"; }

# expect_errno WHAT ERRNO PROBE_ARGS...
expect_errno() {
	local what=$1 want=$2 got
	shift 2
	got=$(reada-probe "$@") || fail "$what: reada-probe failed: $got"
	[ "$got" = "errno=$want" ] || fail "$what: expected errno=$want, got '$got'"
	echo "ok: $what -> $want"
}

# json_field FIELD JSON: a number from the reada tool's --json output
json_field() { echo "$2" | sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p"; }

# dump_tree_blocks DEV TREE: nodes and leaves of a tree, per btrfs-progs
dump_tree_blocks() { btrfs inspect-internal dump-tree -t "$2" "$1" | grep -cE '^(node [0-9]+ level|leaf [0-9]+ items) '; }

# load_tree_blocks DEV: the nodes and leaves of every tree on DEV, as
# dump_tree_blocks counts them, from one dump-tree of the whole filesystem
# (a dump costs a second or more under TCG; tests count several trees).
# tree_blocks TREE then prints one tree's count, by name (as `reada --tree`
# takes it) or id, and fails the test if the dump had no such tree.
declare -A TREE_BLOCKS
load_tree_blocks() {
	local id n
	TREE_BLOCKS=()
	while read -r id n; do TREE_BLOCKS[$id]=$n; done < <(
		btrfs inspect-internal dump-tree "$1" | awk '
		BEGIN {
			split("EXTENT_TREE:2 DEV_TREE:4 FS_TREE:5 CSUM_TREE:7 QUOTA_TREE:8 " \
			      "UUID_TREE:9 FREE_SPACE_TREE:10 BLOCK_GROUP_TREE:11 " \
			      "RAID_STRIPE_TREE:12 DATA_RELOC_TREE:-9", kv, " ")
			for (i in kv) { split(kv[i], p, ":"); names[p[1]] = p[2] }
		}
		function flush() { if (id != "") n[id] += count; count = 0 }
		# A tree starts with "root tree", "chunk tree" or
		# "NAME tree key (OBJECTID ROOT_ITEM OFFSET)".
		/^(root|chunk) tree$/ { flush(); id = ($1 == "root") ? 1 : 3; next }
		/^[a-z ]+ tree key \(/ {
			flush()
			id = $0; sub(/^[^(]*\(/, "", id); sub(/ .*/, "", id)
			if (id in names) id = names[id]
			next
		}
		/^(node [0-9]+ level|leaf [0-9]+ items) / { count++ }
		END { flush(); for (i in n) print i, n[i] }')
	[ ${#TREE_BLOCKS[@]} -gt 0 ] || fail "dump-tree of $1 found no tree"
}
tree_blocks() {
	local id
	case $1 in
	root) id=1 ;; extent) id=2 ;; chunk) id=3 ;; dev) id=4 ;; fs) id=5 ;;
	csum) id=7 ;; quota) id=8 ;; uuid) id=9 ;; free-space) id=10 ;; *) id=$1 ;;
	esac
	[ -n "${TREE_BLOCKS[$id]}" ] || fail "dump-tree found no tree $1"
	echo "${TREE_BLOCKS[$id]}"
}

# fill_files DIR N SIZE: N files f0.. of SIZE bytes (random, so they are not inlined or shared)
fill_files() { fill-files "$1" "$2" "$3"; }

# drop_caches: forget cached tree blocks (the next walk reads from disk)
drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches; }

# sectors_read_all DEV...: sectors read so far, summed over devices
sectors_read_all() {
	local d sum=0
	for d in "$@"; do sum=$((sum + $(sectors_read "$d"))); done
	echo $sum
}

# populate DIR: a few thousand small files, so that with 4 KiB nodes the fs,
# extent and csum trees have a few hundred blocks over several levels. On
# the KASAN kernel, where making a file takes some ten times longer, a
# third as many (the trees still have two or three levels).
populate() {
	if kasan_kernel; then
		fill_files "$1/a" 400 5000
		fill_files "$1/b" 270 9000
	else
		fill_files "$1/a" 1200 5000
		fill_files "$1/b" 800 9000
	fi
	rm -f "$1"/a/f1??
	sync
}

# cold_remount DEV...: unmount and mount again, so no tree block is cached
cold_remount() {
	umount $MNT
	drop_caches
	mount "$1" $MNT
}

# --- device-mapper disks ---

# dm_delayed NAME DEV MS: /dev/mapper/NAME over DEV, each read delayed MS ms
dm_delayed() {
	dmsetup create "$1" --table "0 $(blockdev --getsz "$2") delay $2 0 $3 $2 0 0"
}

# dm_retable NAME TABLE: swap the table of a live device-mapper device
dm_retable() {
	dmsetup suspend "$1"
	dmsetup load "$1" --table "$2"
	dmsetup resume "$1"
}

# --- scrub and the module's counters ---

COUNTERS=/sys/kernel/debug/btrfs_reada/counters
# counter NAME: one of the module's counters; a missing counter fails the test
counter() {
	local v
	v=$(awk -v n="$1" '$1 == n { print $2 }' $COUNTERS)
	[ -n "$v" ] || fail "no counter '$1' in $COUNTERS"
	echo "$v"
}

# counter_or_0 NAME: a counter that may not exist yet, as 0 (a filesystem's
# counters appear with the module's first request on it)
counter_or_0() { awk -v n="$1" '$1 == n { v = $2 } END { print v + 0 }' $COUNTERS; }

# wait_requests_end SECONDS: wait up to SECONDS for every request of the
# module to end (detached ones end on their own); the caller checks
wait_requests_end() {
	local i
	for ((i = 0; i < $1; i++)); do
		[ "$(counter requests_active)" = 0 ] && return 0
		sleep 1
	done
}

# --- in-kernel users of the readahead (patches 0022-0025) ---

# cold_mount DEV: mount DEV on $MNT, let the requests mount itself made end
# (patch 0022, with the module loaded), and forget every cached tree block
cold_mount() {
	mount "$1" $MNT
	if module_loaded; then wait_requests_end 60; fi
	drop_caches
}

# user_begin USER COUNTER: before an operation that should read ahead
# through the module as USER (the user_USER_* counters), note USER's counts
# and the per-tree COUNTER
user_begin() {
	USER=$1 USER_COUNTER=$2
	USER_MADE0=$(counter "user_$1_requests")
	USER_READ0=$(counter "user_$1_blocks_read")
	USER_ERRORS0=$(counter "user_$1_errors")
	USER_READS0=$(counter_or_0 "$2")
}

# user_end WHAT: after it: it made requests as USER, they ended without
# error and read blocks, and the module read blocks counted by COUNTER
user_end() {
	local made read reads
	wait_requests_end 60
	expect_eq "requests active" 0 "$(counter requests_active)"
	expect_eq "blocks failed" 0 "$(counter blocks_failed)"
	made=$(($(counter "user_${USER}_requests") - USER_MADE0))
	[ "$made" -ge 1 ] || fail "$1 made no readahead request (user_${USER}_requests)"
	read=$(($(counter "user_${USER}_blocks_read") - USER_READ0))
	[ "$read" -gt 0 ] || fail "$1's requests read no block (user_${USER}_blocks_read)"
	expect_eq "errors of $1's requests" 0 $(($(counter "user_${USER}_errors") - USER_ERRORS0))
	reads=$(($(counter_or_0 "$USER_COUNTER") - USER_READS0))
	[ "$reads" -gt 0 ] || fail "the module read no block ($USER_COUNTER) for $1"
	echo "ok: $1 made $made requests as user $USER, which read $read blocks; the module read $reads blocks ($USER_COUNTER)"
}

# --- the module's memory while a request runs ---

# unreclaimable: the unreclaimable slab memory, kB
unreclaimable() { awk '$1 == "SUnreclaim:" { print $2 }' /proc/meminfo; }

# memory_sampler_start: until memory_sampler_stop, every 0.3 s, samples the
# blocks the module holds, the blocks it has read since, and the
# unreclaimable slab memory
memory_sampler_start() {
	local read0
	SAMPLED_BASE=$(unreclaimable)
	read0=$(counter blocks_read)
	rm -f /tmp/stop /tmp/samples
	(
		while [ ! -e /tmp/stop ]; do
			echo "$(counter blocks_live) $(($(counter blocks_read) - read0)) $(unreclaimable)" >> /tmp/samples
			sleep 0.3
		done
	) &
	SAMPLER=$!
}

# memory_sampler_stop EB_SIZE: stops the sampler and sets, for the sample
# holding the most blocks, held and read (blocks), slab_kb (the rise in
# unreclaimable slab memory) and module_bytes (that rise less btrfs's
# extent buffers, of EB_SIZE bytes each, for the blocks read so far)
memory_sampler_stop() {
	local eb_size=$1
	touch /tmp/stop
	wait $SAMPLER
	set -- $(sort -n -k1 /tmp/samples | tail -1)
	held=$1 read=$2 slab_kb=$(($3 - SAMPLED_BASE))
	module_bytes=$((slab_kb * 1024 - read * eb_size))
}

# nothing_held: the module holds no request and no block
nothing_held() {
	expect_eq "requests held" 0 "$(counter requests_live)"
	expect_eq "blocks held" 0 "$(counter blocks_live)"
}

# check_clean DEV [ARG...]: btrfs check DEV (with ARGs) finds nothing
check_clean() {
	btrfs check "$@" > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check $* failed"; }
	echo "ok: btrfs check $* is clean"
}

# dev_counter_sum FIELD: FIELD (reads, bytes, errors) of every device the
# module counts, summed (0 before the module has read from any)
dev_counter_sum() {
	awk -v f="$1" '$1 ~ "^dev\\..*\\." f "$" { s += $2 } END { print s + 0 }' $COUNTERS
}

# physical DEV LOGICAL DEVNAME: where copy of LOGICAL on DEVNAME lies (bytes)
# (fails the test, with btrfs-map-logical's own output, if it cannot say)
physical() {
	local out p
	out=$(btrfs-map-logical -l "$2" "$1" 2>&1) ||
		fail "btrfs-map-logical -l $2 $1 failed: $out"
	p=$(echo "$out" | awk -v d="$3" '!found && $1 == "mirror" && $NF == d { print $6; found = 1 }')
	[ -n "$p" ] || fail "btrfs-map-logical -l $2 $1 names no copy on $3: $out"
	echo "$p"
}

# corrupt_block DEVNAME OFFSET LENGTH: overwrite LENGTH bytes at OFFSET with random bytes
corrupt_block() {
	[[ $2 =~ ^[0-9]+$ && $3 =~ ^[0-9]+$ ]] || fail "corrupt_block $1: bad offset '$2' or length '$3'"
	dd if=/dev/urandom of="$1" bs=4096 seek=$(($2 / 4096)) count=$(($3 / 4096)) \
		conv=notrunc,fsync status=none
}

# scrub_errors OUTPUT: the error fields of `btrfs scrub start -BR`, one line
scrub_errors() {
	echo "$1" | awk '$1 ~ /^(read|csum|verify|super|malloc|uncorrectable|unverified|corrected)_errors:$/ { printf "%s%s ", $1, $2 }'
}

# scrub_field NAME OUTPUT: one raw field of `btrfs scrub start -BR`
scrub_field() { echo "$2" | awk -v n="$1:" '!found && $1 == n { print $2; found = 1 }'; }

# --- the harness's own self-tests ---

# provoke_detector NAME [PARAM=VALUE...]: load the detector self-test module
# (tests/detectors), which provokes the kernel report NAME while it loads,
# then unload it
provoke_detector() {
	local name=$1 out
	shift
	out=$(insmod /reada/detector_selftest.ko provoke="$name" "$@" 2>&1) ||
		fail "detector_selftest did not load: $out"
	rmmod detector_selftest || fail "detector_selftest did not unload"
	[ "$(dmesg | grep -c "detector_selftest: provoked $name")" = 1 ] ||
		fail "detector_selftest did not provoke $name exactly once: $out"
	echo "provoked $name"
}
