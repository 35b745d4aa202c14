#!/bin/bash
# Every read on one device of a RAID1 pair fails: each block whose read
# failed there is read again from its mirror on the other device, so the
# request still visits every block and reports no error; the counters show
# the failed reads on that device and the retries. Nothing hangs.
# disks: 2x1G
# kernel: debug
# full: kasan
# timeout: 600
# expect-console: BTRFS error \(device \w+\): bdev /dev/mapper/flaky errs: wr 0, rd \d+, flush 0, corrupt 0, gen 0
. /tests/lib.sh
load_module
size=$(blockdev --getsz /dev/vdb)
dmsetup create flaky --table "0 $size linear /dev/vdb 0"
mkfs.btrfs -q -f -n 4096 -m raid1 -d single /dev/vda /dev/mapper/flaky
mount /dev/vda $MNT
populate $MNT
umount $MNT
total=$(dump_tree_blocks /dev/vda fs)
mount /dev/vda $MNT
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
drop_caches
dm_retable flaky "0 $size error"
retried0=$(counter blocks_retried)
out=$(timeout 120 reada $MNT --tree fs --json) || fail "readahead failed or hung: $out"
echo "$out"
expect_eq "blocks visited" "$total" "$(json_field blocks_visited "$out")"
expect_eq "errors" 0 "$(json_field errors "$out")"
retried=$(($(counter blocks_retried) - retried0))
errs=$(counter "dev.$fsid.2.errors")
[ "$retried" -gt 0 ] || fail "no read was retried on the mirror"
[ "$errs" -ge "$retried" ] || fail "device 2 counts $errs errors for $retried retries"
expect_eq "errors counted on device 1" 0 "$(counter "dev.$fsid.1.errors")"
echo "ok: $retried failed reads on device 2 were read again from device 1"
reada --counters
dm_retable flaky "0 $size linear /dev/vdb 0"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
unload_module
dmsetup remove flaky
