#!/bin/bash
# Eight requests at once, on the same and on different trees, all complete
# with the right blocks, and blocks wanted by several requests are read once.
# disks: 3x1G
# timeout: 600
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
devs=$(disks 3)
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $devs
mount /dev/vda $MNT
populate $MNT
umount $MNT
declare -A blocks
load_tree_blocks /dev/vda
for t in extent csum fs; do blocks[$t]=$(tree_blocks $t); done
mount /dev/vda $MNT
cold_remount /dev/vda
before=$(sectors_read_all $devs)
trees=(extent extent extent csum csum fs fs fs)
for i in "${!trees[@]}"; do
	reada $MNT --tree ${trees[$i]} --json > /tmp/out.$i &
done
wait
after=$(sectors_read_all $devs)
sum_read=0 sum_cached=0
for i in "${!trees[@]}"; do
	out=$(cat /tmp/out.$i)
	expect_eq "request $i (${trees[$i]}): blocks" "${blocks[${trees[$i]}]}" "$(json_field blocks_visited "$out")"
	expect_eq "request $i: errors" 0 "$(json_field errors "$out")"
	sum_read=$((sum_read + $(json_field blocks_read "$out")))
	sum_cached=$((sum_cached + $(json_field blocks_cached "$out")))
done
# The ioctl's requests are counted as its user's, as each request counted.
expect_eq "the ioctl's requests (user_ioctl_requests)" ${#trees[@]} "$(counter user_ioctl_requests)"
expect_eq "the ioctl's blocks read (user_ioctl_blocks_read)" $sum_read "$(counter user_ioctl_blocks_read)"
expect_eq "the ioctl's blocks cached (user_ioctl_blocks_cached)" $sum_cached "$(counter user_ioctl_blocks_cached)"
distinct=$((blocks[extent] + blocks[csum] + blocks[fs]))
echo "distinct blocks $distinct ($((distinct * 8)) sectors), devices read $((after - before)) sectors"
[ $((after - before)) -le $((distinct * 8 * 5 / 4)) ] || fail "shared blocks were read more than once"
echo "ok: shared blocks read once"
umount $MNT
unload_module
