#!/bin/bash
# Readaheads keep running (live and commit roots, waited for and detached)
# while btrfs moves the filesystem's chunks between devices: a device
# replace of a RAID1 device onto a spare, to completion; then a device
# removal, whose chunks move to a device added for it; then a balance of
# the metadata. Every waited request ends with no error, every request
# ends, nothing is held afterwards, no btrfs message reaches the console
# (the harness fails on any), scrub finds nothing and btrfs check is clean.
# The module read from the spare once the replace had finished (it maps
# every block afresh, so it follows the chunks to their new devices).
# disks: 4x1G
# timeout: 900
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
# Data to move, so that each operation lasts for several readaheads.
size=$((32 * 1048576))
head -c $size /dev/urandom > $MNT/big
sync

# readahead_loop: readaheads until /tmp/stop exists; a waited request that
# fails or reports an error fails the test. Prints the rounds it ran.
readahead_loop() {
	local i=0 t out
	while [ ! -e /tmp/stop ]; do
		drop_caches
		for t in fs extent csum; do
			out=$(timeout 120 reada $MNT --tree $t --json) ||
				fail "readahead of the $t tree failed or hung"
			expect_quiet "$t readahead errors" 0 "$(json_field errors "$out")"
			out=$(timeout 120 reada $MNT --tree $t --commit-root --json) ||
				fail "commit-root readahead of the $t tree failed or hung"
			expect_quiet "$t commit-root readahead errors" 0 "$(json_field errors "$out")"
		done
		reada $MNT --tree fs --detach > /dev/null
		reada $MNT --tree extent --commit-root --detach > /dev/null
		i=$((i + 1))
	done
	echo "$i rounds of readaheads"
}

# during WHAT COMMAND...: run COMMAND with the readahead loop beside it,
# then wait for every request to end
during() {
	local what=$1 pid requests t0
	shift
	t0=$(date +%s)
	rm -f /tmp/stop
	requests=$(counter requests_done)
	readahead_loop > /tmp/loop.log &
	pid=$!
	"$@" > /tmp/op.log 2>&1 || { cat /tmp/op.log; fail "$what failed"; }
	touch /tmp/stop
	wait $pid
	echo "ok: $what ($(($(date +%s) - t0)) s) with readaheads beside it: $(cat /tmp/loop.log)," \
		"$(($(counter requests_done) - requests)) requests done"
	[ $(($(counter requests_done) - requests)) -gt 0 ] || fail "$what: no readahead ran during it"
	wait_requests_end 60
	expect_eq "$what: requests active" 0 "$(counter requests_active)"
}

say "replace devid 2 with the spare"
# Writes to the spare take 200 ms, so that the replace lasts.
dmsetup create spare --table "0 $(blockdev --getsz /dev/vdc) delay /dev/vdc 0 0 /dev/vdc 0 200"
spare0=$(sectors_read /dev/vdc)
during "replace" btrfs replace start -B 2 /dev/mapper/spare $MNT
btrfs filesystem show $MNT | grep -q /dev/mapper/spare || fail "the spare is not in the filesystem"
drop_caches
out=$(reada $MNT --tree extent --json)
expect_eq "extent readahead after the replace: errors" 0 "$(json_field errors "$out")"
[ "$(sectors_read /dev/vdc)" -gt "$spare0" ] || fail "nothing was read from the spare"
dm_retable spare "0 $(blockdev --getsz /dev/vdc) linear /dev/vdc 0"

say "remove devid 1, its chunks moving to a new device"
btrfs device add -f /dev/vdd $MNT
during "device remove" btrfs device remove 1 $MNT
btrfs filesystem show $MNT | grep -q /dev/vda && fail "/dev/vda is still in the filesystem"

say "balance the metadata"
# Writes to the spare take 100 ms again, so that the balance lasts.
dm_retable spare "0 $(blockdev --getsz /dev/vdc) delay /dev/vdc 0 0 /dev/vdc 0 100"
during "balance -m" btrfs balance start -m $MNT

scrub=$(btrfs scrub start -BR $MNT 2>&1) || { echo "$scrub"; fail "scrub failed"; }
for f in read_errors csum_errors verify_errors uncorrectable_errors corrected_errors; do
	expect_quiet "scrub $f" 0 "$(scrub_field $f "$scrub")"
done
echo "ok: scrub is clean"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
btrfs check /dev/mapper/spare > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
unload_module
dmsetup remove spare
