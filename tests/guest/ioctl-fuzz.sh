#!/bin/bash
# A bounded fuzzer of BTRFS_IOC_READA (tools/reada/src/bin/reada-fuzz.rs):
# random tree ids, keys, modes, flags, reserved fields, sizes and pointers,
# thousands of calls from two fuzzers at once while readaheads run, then as
# an unprivileged user and without the module. Only documented errnos come
# back, every success fills its outputs, and the kernel stays quiet.
# disks: 2x1G
# kernel: debug kasan
# timeout: 900
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
# Subvolumes, so that some of the random subvolume ids exist.
for i in 1 2 3; do btrfs subvolume create $MNT/sv$i > /dev/null; fill_files $MNT/sv$i 50 3000; done
btrfs subvolume delete $MNT/sv2 > /dev/null
sync

background() {
	while [ ! -e /tmp/stop ]; do
		reada $MNT --tree extent --detach > /dev/null
		reada $MNT --tree fs > /dev/null
		drop_caches
	done
}
# A quarter of the calls on the (ten times slower) KASAN kernel.
calls=4000
[ -e /sys/kernel/debug/kmemleak ] && calls=1000
background &
bpid=$!
reada-fuzz $MNT --calls $((calls / 2)) --seed 2 > /tmp/fuzz2 &
fpid=$!
reada-fuzz $MNT --calls $calls --seed 1 || fail "fuzzer (seed 1) found an undocumented outcome"
wait $fpid || { cat /tmp/fuzz2; fail "fuzzer (seed 2) found an undocumented outcome"; }
cat /tmp/fuzz2
touch /tmp/stop
wait $bpid

say "as nobody: everything is refused"
out=$(su nobody -s /bin/sh -c "reada-fuzz $MNT --calls 500 --seed 3") || fail "fuzzer as nobody: $out"
echo "$out"
# Calls with another size in the request number are not BTRFS_IOC_READA
# (ENOTTY); every real one is EPERM.
echo "$out" | sed 's/.*: //' | tr ' ' '\n' | grep -v '^EPERM=\|^ENOTTY=' && fail "nobody got past the permission check"
echo "ok: nobody only got EPERM and ENOTTY"

for i in $(seq 1 60); do [ "$(counter requests_active)" = 0 ] && break; sleep 1; done
expect_eq "requests active" 0 "$(counter requests_active)"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
unload_module

say "without the module"
mount /dev/vda $MNT
reada-fuzz $MNT --calls 1000 --seed 4 || fail "fuzzer without the module"
umount $MNT
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
