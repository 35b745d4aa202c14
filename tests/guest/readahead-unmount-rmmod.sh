#!/bin/bash
# Requests in flight on slow disks: rmmod is refused while they run, and
# unmount drains them cleanly, also with the passes taking full batches of
# starts (64 reads in flight per device); afterwards the module unloads.
# disks: 2x1G
# kernel: debug
# full: kasan
# timeout: 600
. /tests/lib.sh
load_module
for d in vda vdb; do
	dm_delayed slow_$d /dev/$d 400
done
mkfs.btrfs -q -f -n 4096 -m raid1 -d single /dev/mapper/slow_vda /dev/mapper/slow_vdb
mount /dev/mapper/slow_vda $MNT
populate $MNT
cold_remount /dev/mapper/slow_vda
for i in 1 2 3 4; do reada $MNT --tree fs --detach > /dev/null; done
for t in extent csum extent csum; do reada $MNT --tree $t --detach > /dev/null; done
active=$(counter requests_active)
[ "$active" -gt 0 ] || fail "the requests ended before the test could use them"
if rmmod btrfs_reada 2>/dev/null; then fail "rmmod succeeded with $active requests in flight"; fi
echo "ok: rmmod refused while requests run"
umount $MNT
echo "ok: unmount with 8 requests in flight returned"
echo "ok: unmount cancelled $(counter blocks_cancelled) queued blocks"
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"

say "unmount with full batches of starts"
echo 64 > /sys/module/btrfs_reada/parameters/max_in_flight
drop_caches
mount /dev/mapper/slow_vda $MNT
# Reads of 2 s from here: a tree's level is read in one burst that lasts,
# however slowly this machine starts the requests.
for d in vda vdb; do
	dm_retable slow_$d "0 $(blockdev --getsz /dev/$d) delay /dev/$d 0 2000 /dev/$d 0 0"
done
for t in fs extent fs csum; do reada $MNT --tree $t --detach > /dev/null; done
# Unmount as soon as a full batch is in flight.
for i in $(seq 100); do
	in_flight=$(dev_counter_sum in_flight)
	[ "$in_flight" -ge 16 ] && break
	sleep 0.1
done
echo "reads in flight at unmount: $in_flight"
[ "$in_flight" -ge 16 ] || fail "only $in_flight reads in flight: no full batch of starts"
umount $MNT
for d in vda vdb; do
	dm_retable slow_$d "0 $(blockdev --getsz /dev/$d) delay /dev/$d 0 400 /dev/$d 0 0"
done
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
echo 6 > /sys/module/btrfs_reada/parameters/max_in_flight
unload_module
echo "ok: module unloads once the requests are gone"
load_module
mount /dev/mapper/slow_vda $MNT
reada $MNT --tree fs --json > /dev/null
umount $MNT
unload_module
for d in vda vdb; do dmsetup remove slow_$d; done
