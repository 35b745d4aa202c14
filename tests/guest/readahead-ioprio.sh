#!/bin/bash
# The bios of the module's reads carry the I/O priority they were given, as
# the block layer's block_rq_issue trace event shows for every metadata read
# request: a detached readahead reads at the idle class, or at the class and
# level of the detached_ioprio_* parameters (class 0: the caller's); a
# waited readahead, scrub's prefetch, and mount's (patch 0022), which
# detaches, at the caller's priority. No metadata read has another
# priority. For a detached readahead the sectors read at its priority are
# exactly the bytes the module counts as read; a waited one runs in the
# caller's context, where btrfs may read a block of its own at the same
# priority (seen once in CI: 8 sectors more than the module's 48), so
# there they are at least the module's bytes.
# disks: 2x1G
# timeout: 600
. /tests/lib.sh
T=/sys/kernel/tracing
[ -e $T/events/block/block_rq_issue/enable ] || mount -t tracefs nodev $T ||
	fail "no tracefs"
[ -e $T/events/block/block_rq_issue/enable ] || fail "no block_rq_issue trace event"
PARAMS=/sys/module/btrfs_reada/parameters

mkfs.btrfs -q -f -n 4096 -m raid1 -d single /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
load_module

# traced CMD...: run CMD with the block layer's request issues traced
traced() {
	echo > $T/trace
	echo 1 > $T/events/block/block_rq_issue/enable
	"$@"
	echo 0 > $T/events/block/block_rq_issue/enable
}

# wait_idle: wait for every detached request to end
wait_idle() {
	wait_requests_end 60
	expect_quiet "detached requests active" 0 "$(counter requests_active)"
}

# meta_sectors_by_prio: "CLASS,LEVEL SECTORS" for each I/O priority of the
# metadata read requests traced, sectors summed
meta_sectors_by_prio() {
	sed -n 's/.* block_rq_issue: [0-9,]* R[A-Z]*M[A-Z]* [0-9]* () [0-9]* + \([0-9]*\) \([a-z]*\),[0-9]*,\([0-9]*\) .*/\2,\3 \1/p' $T/trace |
		awk '{ s[$1] += $2 } END { for (p in s) print p, s[p] }' | sort
}

# expect_reads_at WHAT PRIO: the traced metadata reads are the module's
# reads, all at PRIO ("idle,7", "be,1", ...)
expect_reads_at() {
	local got bytes
	got=$(meta_sectors_by_prio)
	bytes=$(($(dev_counter_sum bytes) - bytes0))
	echo "$1: module read $bytes bytes; metadata reads by priority: $(echo $got)"
	[ "$bytes" -gt 0 ] || fail "$1: the module read nothing"
	[ "$got" = "$2 $((bytes / 512))" ] || show_meta_reads
	expect_eq "$1: metadata reads by priority" "$2 $((bytes / 512))" "$got"
}

# show_meta_reads: the traced metadata read requests, for a failure's log
show_meta_reads() {
	echo "metadata read requests traced:"
	grep ' block_rq_issue: [0-9,]* R[A-Z]*M' $T/trace
}

# expect_all_reads_at WHAT PRIO: the module read something, every traced
# metadata read, the module's or its caller's own, is at PRIO, and they
# are at least the module's bytes
expect_all_reads_at() {
	local got bytes prio
	got=$(meta_sectors_by_prio)
	bytes=$(($(dev_counter_sum bytes) - bytes0))
	echo "$1: module read $bytes bytes; metadata reads by priority: $(echo $got)"
	[ "$bytes" -gt 0 ] || fail "$1: the module read nothing"
	prio=$(echo "$got" | awk '{ print $1 }' | sort -u | tr '\n' ' ')
	[ "$prio" = "$2 " ] || show_meta_reads
	expect_eq "$1: priorities of metadata reads" "$2 " "$prio"
	[ "$(echo "$got" | awk '{ print $2 }')" -ge $((bytes / 512)) ] ||
		fail "$1: fewer sectors read at $2 than the module's $((bytes / 512))"
	[ "$got" = "$2 $((bytes / 512))" ] || show_meta_reads
}

say "detached readahead: idle class by default"
expect_eq "default detached class" 3 "$(cat $PARAMS/detached_ioprio_class)"
cold_remount /dev/vda
wait_idle
bytes0=$(dev_counter_sum bytes)
traced eval 'ionice -c2 -n0 reada $MNT --tree extent --detach > /dev/null; wait_idle'
expect_reads_at "detached" "idle,7"

say "waited readahead: the caller's priority"
cold_remount /dev/vda
wait_idle
bytes0=$(dev_counter_sum bytes)
traced eval 'ionice -c2 -n1 reada $MNT --tree csum > /dev/null'
expect_all_reads_at "waited under ionice -c2 -n1" "be,1"

say "detached readahead at the parameters' class and level"
echo 2 > $PARAMS/detached_ioprio_class
echo 6 > $PARAMS/detached_ioprio_level
cold_remount /dev/vda
wait_idle
bytes0=$(dev_counter_sum bytes)
traced eval 'ionice -c2 -n0 reada $MNT --tree fs --detach > /dev/null; wait_idle'
expect_reads_at "detached at class 2 level 6" "be,6"

say "detached readahead at the caller's priority (class 0)"
echo 0 > $PARAMS/detached_ioprio_class
cold_remount /dev/vda
wait_idle
bytes0=$(dev_counter_sum bytes)
traced eval 'ionice -c2 -n5 reada $MNT --tree extent --detach > /dev/null; wait_idle'
expect_reads_at "detached at the caller's" "be,5"
echo 3 > $PARAMS/detached_ioprio_class

say "scrub's prefetch: the scrub thread's priority"
cold_remount /dev/vda
wait_idle
bytes0=$(dev_counter_sum bytes)
traced eval 'out=$(btrfs scrub start -BR -c 2 -n 3 $MNT 2>&1)' || fail "scrub failed: $out"
expect_all_reads_at "scrub -c 2 -n 3" "be,3"

say "mount's readahead of block group items: the mounting task's priority"
# Mount's own search can reach every leaf before the module does (this
# filesystem has few block groups); mount again, up to 5 times, until the
# module read something, so that its reads' priority is checked.
for attempt in 1 2 3 4 5; do
	umount $MNT
	drop_caches
	bytes0=$(dev_counter_sum bytes)
	traced eval 'ionice -c2 -n2 mount /dev/vda $MNT; wait_idle'
	[ $(($(dev_counter_sum bytes) - bytes0)) -eq 0 ] || break
	echo "mount $attempt: the module read nothing, mount's search read the leaves first"
done
expect_all_reads_at "mount under ionice -c2 -n2 (its own reads and the module's)" "be,2"

umount $MNT
unload_module
