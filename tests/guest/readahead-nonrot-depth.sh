#!/bin/bash
# A device the block layer calls non-rotational gets the deeper queue of
# max_in_flight_nonrot (default 32): with no seeks to save, more reads in
# flight keep flash busy. On a slow (dm-delay) disk marked non-rotational, a
# cold readahead of the fs tree has more than max_in_flight (6) reads in
# flight, and never more than max_in_flight_nonrot; a lower
# max_in_flight_nonrot set through /sys holds; the same disk marked
# rotational again keeps to max_in_flight.
# disks: 1x1G
# timeout: 600
. /tests/lib.sh
load_module
params=/sys/module/btrfs_reada/parameters
expect_eq "max_in_flight_nonrot by default" 32 "$(cat $params/max_in_flight_nonrot)"
echo 0 > /sys/block/vda/queue/rotational
dm_delayed slow /dev/vda 100
dm=dm-$(dmsetup info -c --noheadings -o minor slow | tr -d " ")
expect_eq "the delayed disk inherits non-rotational" 0 "$(cat /sys/block/$dm/queue/rotational)"
mkfs.btrfs -q -f -n 4096 -m single -d single /dev/mapper/slow
mount /dev/mapper/slow $MNT
populate $MNT
fsid=$(btrfs filesystem show $MNT | awk '/uuid:/ { print $NF }')

# peak_after_readahead: the most reads in flight during a cold readahead of
# the fs tree (the counters start afresh with each mount)
peak_after_readahead() {
	local out
	cold_remount /dev/mapper/slow
	out=$(reada $MNT --tree fs --json) || fail "readahead: $out"
	[ "$(json_field blocks_read "$out")" -gt 100 ] || fail "the readahead read only: $out"
	counter "dev.$fsid.1.peak_in_flight"
}

peak=$(peak_after_readahead)
echo "non-rotational, max_in_flight_nonrot 32: at most $peak reads in flight"
[ "$peak" -ge 16 ] || fail "non-rotational device: only $peak reads in flight, expected 16 or more"
[ "$peak" -le 32 ] || fail "non-rotational device: $peak reads in flight, above max_in_flight_nonrot 32"

echo 8 > $params/max_in_flight_nonrot
peak=$(peak_after_readahead)
echo "non-rotational, max_in_flight_nonrot 8: at most $peak reads in flight"
[ "$peak" -le 8 ] || fail "$peak reads in flight, above max_in_flight_nonrot 8"
[ "$peak" -gt 6 ] || fail "only $peak reads in flight: max_in_flight_nonrot 8 not used"
echo 32 > $params/max_in_flight_nonrot

echo 1 > /sys/block/$dm/queue/rotational
peak=$(peak_after_readahead)
echo "rotational again: at most $peak reads in flight"
[ "$peak" -le 6 ] || fail "rotational device: $peak reads in flight, above max_in_flight 6"
[ "$peak" -ge 1 ] || fail "no read in flight ever"
umount $MNT
dmsetup remove slow
echo 1 > /sys/block/vda/queue/rotational
unload_module
