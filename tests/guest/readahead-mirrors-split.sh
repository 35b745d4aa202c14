#!/bin/bash
# On RAID1 metadata, the two mirrors read different blocks rather than the
# same ones: both disks work, and together they read each block about once.
# disks: 2x1G
# timeout: 600
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d single $(disks 2)
mount /dev/vda $MNT
populate $MNT
cold_remount /dev/vda
a0=$(sectors_read /dev/vda); b0=$(sectors_read /dev/vdb)
ra=$(reada $MNT --tree fs --json)
a=$(( $(sectors_read /dev/vda) - a0 )); b=$(( $(sectors_read /dev/vdb) - b0 ))
read=$(json_field blocks_read "$ra")
echo "fs tree: $read blocks read; vda read $a sectors, vdb $b sectors"
[ "$read" -gt 100 ] || fail "too few blocks to judge ($read)"
[ $a -gt 0 ] && [ $b -gt 0 ] || fail "one mirror did all the work"
# 4 KiB blocks are 8 sectors; reading each block on both mirrors would be
# twice that. Allow 25% for other reads of the filesystem meanwhile.
total=$((a + b)); need=$((read * 8))
[ $total -le $((need * 5 / 4)) ] || fail "mirrors read $total sectors for $need sectors of blocks: the same blocks twice"
echo "ok: the mirrors split the work ($total sectors for $need)"
small=$(( a < b ? a : b ))
[ $((small * 5)) -ge $total ] || fail "unbalanced: $a vs $b sectors"
echo "ok: each mirror read at least a fifth"
umount $MNT
unload_module
