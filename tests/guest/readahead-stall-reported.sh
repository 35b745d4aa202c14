#!/bin/bash
# A readahead that cannot end is seen, and a killed waiter leaves nothing
# behind. With the only device's I/O held back (device-mapper suspended),
# each waiter's watchdog reports its stalled request on the console after
# stall_warn_secs, once (the harness expects that report and fails on any
# other splat); a second waiter killed meanwhile returns at once; once the
# device resumes, the first request completes in full and the killed one is
# freed.
# disks: 1x1G
# timeout: 300
# kernel: debug
# full: kasan
# expect-splat: btrfs_reada: readahead stalled
. /tests/lib.sh
load_module
size=$(blockdev --getsz /dev/vda)
dmsetup create held --table "0 $size linear /dev/vda 0"
mkfs.btrfs -q -f -n 4096 /dev/mapper/held
mount /dev/mapper/held $MNT
populate $MNT
umount $MNT
total=$(dump_tree_blocks /dev/mapper/held fs)
mount /dev/mapper/held $MNT
live=$(counter requests_live)

echo 3 > /sys/module/btrfs_reada/parameters/stall_warn_secs
dmsetup suspend --nolockfs held
reada $MNT --tree fs --json > /tmp/held.json &
held=$!
reada $MNT --tree extent --json > /dev/null 2>&1 &
killed=$!
# stalls: how many stall reports the console has
stalls() { dmesg | grep -c "btrfs_reada: readahead stalled" || true; }
# Both requests stall (each waits for reads the device holds back).
for _ in $(seq 90); do [ "$(stalls)" -ge 2 ] && break; sleep 1; done
dmesg | grep "btrfs_reada: readahead stalled" || fail "no stall reported in 90 s"
expect_eq "stall reports, one per stalled request" 2 "$(stalls)"
kill -0 $held 2> /dev/null || fail "the readahead ended while its device was suspended"
kill -0 $killed 2> /dev/null || fail "the second readahead ended while its device was suspended"
# Two more slices of 3 s: a waiter reports its request once, not again.
sleep 7
expect_eq "stall reports after two more slices" 2 "$(stalls)"
kill -TERM $killed
for _ in $(seq 20); do kill -0 $killed 2> /dev/null || break; sleep 0.5; done
kill -0 $killed 2> /dev/null && fail "the killed waiter did not return while its reads were held"
echo "ok: the killed waiter returned while its reads were held"
[ "$(counter requests_live)" -gt "$live" ] || fail "no request in flight while the device was suspended"

dmsetup resume held
wait $held || fail "the readahead failed once the device resumed: $(cat /tmp/held.json)"
expect_eq "blocks of the held request" "$total" "$(json_field blocks_visited "$(cat /tmp/held.json)")"
# The killed waiter's request finishes in the background, then is freed.
for _ in $(seq 60); do [ "$(counter requests_live)" = "$live" ] && break; sleep 0.5; done
expect_eq "requests alive after both ended" "$live" "$(counter requests_live)"
echo 120 > /sys/module/btrfs_reada/parameters/stall_warn_secs
umount $MNT
unload_module
dmsetup remove held
