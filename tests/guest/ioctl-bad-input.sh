#!/bin/bash
# BTRFS_IOC_READA: every bad input gets its documented errno and nothing
# else happens (the module stays usable, the kernel stays quiet).
# disks: 1x1G
# timeout: 300
. /tests/lib.sh
mkfs.btrfs -q -f /dev/vda
mount /dev/vda $MNT
echo data > $MNT/file

expect_errno "no module loaded" EOPNOTSUPP $MNT tree=2 mode=1
load_module

expect_errno "fd not on btrfs" ENOTTY /tmp tree=2 mode=1
expect_errno "bad argument pointer" EFAULT $MNT badptr
expect_errno "tree id 0" EINVAL $MNT tree=0 mode=1
expect_errno "tree id 6 (log tree)" EINVAL $MNT tree=6 mode=1
expect_errno "tree id 100" EINVAL $MNT tree=100 mode=1
expect_errno "subvolume 999 does not exist" ENOENT $MNT tree=999 mode=1
expect_errno "quota tree without quotas" ENOENT $MNT tree=8 mode=1
expect_errno "block group tree absent" ENOENT $MNT tree=11 mode=1
expect_errno "raid stripe tree absent" ENOENT $MNT tree=12 mode=1
expect_errno "start > end" EINVAL $MNT tree=2 mode=1 start=300,0,0 end=256,0,0
expect_errno "start == end (empty range)" EINVAL $MNT tree=2 mode=1 start=5,1,0 end=5,1,0
expect_errno "unknown mode" EINVAL $MNT tree=2 mode=4
expect_errno "mode 2^32-1" EINVAL $MNT tree=2 mode=4294967295
expect_errno "unknown flag" EINVAL $MNT tree=2 mode=1 flags=4
expect_errno "detach with plain mode" EINVAL $MNT tree=2 mode=1 flags=1
expect_errno "detach with forward mode" EINVAL $MNT tree=2 mode=2 flags=1
expect_errno "detach with forward-always mode" EINVAL $MNT tree=2 mode=3 flags=1
for i in 0 1 2 3; do
	expect_errno "reserved_in[$i] nonzero" EINVAL $MNT tree=2 mode=1 reserved_in=$i:1
done
expect_errno "start key reserved byte" EINVAL $MNT tree=2 mode=1 start_reserved=6:1
expect_errno "end key reserved byte" EINVAL $MNT tree=2 mode=1 end_reserved=0:1

say "non-root caller"
out=$(su nobody -s /bin/sh -c "reada-probe $MNT tree=2 mode=1") || fail "su: $out"
expect_eq "non-root caller" "errno=EPERM" "$out"

say "the tool's messages"
msg=$(su nobody -s /bin/sh -c "reada $MNT --tree extent --mode plain" 2>&1) && fail "tool succeeded as non-root"
echo "$msg" | grep -q "permission denied: needs CAP_SYS_ADMIN" || fail "tool message: $msg"
msg=$(reada /tmp --tree extent --mode plain 2>&1) && fail "tool succeeded on tmpfs"
echo "$msg" | grep -q "not a btrfs filesystem" || fail "tool message: $msg"
msg=$(reada $MNT --tree 999 --mode plain 2>&1) && fail "tool succeeded on tree 999"
echo "$msg" | grep -q "no tree with id 999" || fail "tool message: $msg"

say "after all that, a good request works and writes every output field"
out=$(probe $MNT tree=2 mode=1 poison) || fail "poisoned request: $out"
echo "$out"
out=$(probe $MNT tree=5 mode=2 flags=2 poison) || fail "poisoned commit-root request: $out"
echo "$out"
unload_module
expect_errno "module unloaded again" EOPNOTSUPP $MNT tree=2 mode=1
umount $MNT
