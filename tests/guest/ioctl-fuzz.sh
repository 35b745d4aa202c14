#!/bin/bash
# A bounded fuzzer of BTRFS_IOC_READA (tools/reada/src/bin/reada-fuzz.rs):
# random tree ids, keys, modes, flags, reserved fields, sizes and pointers,
# thousands of calls from two fuzzers at once while readaheads run, then as
# an unprivileged user and without the module. Every call ends exactly as
# Documentation/ioctl.md says for its input (EFAULT for a bad pointer,
# EINVAL for a bad field or an id that names no tree, ENOENT for a tree this
# filesystem lacks, ...), a good share succeed, every success's counts are
# consistent, and the kernel stays quiet.
# disks: 2x1G
# kernel: debug kasan
# timeout: 900
. /tests/lib.sh
load_module
say "a filesystem with subvolumes"
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
# Subvolumes, so that some of the random subvolume ids exist.
for i in 1 2 3; do btrfs subvolume create $MNT/sv$i > /dev/null; fill_files $MNT/sv$i 50 3000; done
btrfs subvolume delete $MNT/sv2 > /dev/null
sync
# The trees this filesystem has: the root and chunk trees, the global trees
# with a root item, and the live subvolumes (the fs tree, sv1 and sv3).
trees="1,3,5"
for name in $(btrfs inspect-internal dump-tree -t root /dev/vda |
	sed -n 's/.* key (\([A-Z_]*_TREE\) ROOT_ITEM .*/\1/p' | sort -u); do
	case $name in
	EXTENT_TREE) trees="$trees,2" ;; DEV_TREE) trees="$trees,4" ;;
	CSUM_TREE) trees="$trees,7" ;; QUOTA_TREE) trees="$trees,8" ;;
	UUID_TREE) trees="$trees,9" ;; FREE_SPACE_TREE) trees="$trees,10" ;;
	BLOCK_GROUP_TREE) trees="$trees,11" ;; RAID_STRIPE_TREE) trees="$trees,12" ;;
	esac
done
for id in $(btrfs subvolume list $MNT | awk '{ print $2 }'); do trees="$trees,$id"; done
echo "trees: $trees"
for id in 2 7 256 258; do
	case ",$trees," in *",$id,"*) ;; *) fail "tree $id is not among $trees" ;; esac
done
case ",$trees," in *,257,*) fail "the deleted subvolume 257 is listed: $trees" ;; esac
fuzz="reada-fuzz $MNT --trees $trees --nodesize 4096"

background() {
	while [ ! -e /tmp/stop ]; do
		reada $MNT --tree extent --detach > /dev/null
		reada $MNT --tree fs > /dev/null
		drop_caches
	done
}
# A quarter of the calls on the (ten times slower) KASAN kernel; `make
# check` makes half as many.
calls=4000
kasan_kernel && calls=1000
full_suite || calls=$((calls / 2))
say "$calls and $((calls / 2)) calls from two fuzzers, readaheads beside them"
background &
bpid=$!
# Four calls in five have a valid argument, half of those valid fields,
# and most of those name a tree the filesystem has: at least 15% succeed.
$fuzz --calls $((calls / 2)) --seed 2 --min-ok 15 > /tmp/fuzz2 2>&1 &
fpid=$!
$fuzz --calls $calls --seed 1 --min-ok 15 || fail "fuzzer (seed 1): a call ended against the interface"
wait $fpid || { cat /tmp/fuzz2; fail "fuzzer (seed 2): a call ended against the interface"; }
cat /tmp/fuzz2
touch /tmp/stop
wait $bpid

say "as nobody: everything is refused"
# Calls with another size in the request number are not BTRFS_IOC_READA
# (ENOTTY); every real one is EPERM.
out=$(su nobody -s /bin/sh -c "reada-fuzz $MNT --unprivileged --calls 500 --seed 3" 2>&1) ||
	fail "fuzzer as nobody: $out"
echo "$out"
echo "ok: nobody only got EPERM and ENOTTY"

wait_requests_end 60
expect_eq "requests active" 0 "$(counter requests_active)"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
unload_module

say "without the module"
mount /dev/vda $MNT
reada-fuzz $MNT --no-module --calls $((calls / 4)) --seed 4 || fail "fuzzer without the module: not EOPNOTSUPP"
umount $MNT
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
