#!/bin/bash
# Guest script: build the fixture of the benchmark's jobs for the in-kernel
# users of the readahead (mount, quota rescan, send, delete), then print
# its layout for the host (tools/bench/fixture.py). On the first FIX_DISKS
# virtual disks (large and sparse), with FIX_NODESIZE nodes, metadata RAID1,
# data single, no block group tree, quotas off:
# - FIX_GROUPS data block groups of FIX_GROUP_BYTES (the smallest btrfs
#   allows), each holding FIX_EXTENTS preallocated extents, of the file
#   /mnt/groups/prealloc (tools/fill-groups): mount searches one extent
#   tree leaf or so per block group, as on a large filesystem without the
#   block group tree;
# - FIX_FILES files /mnt/groups/f0 .. f{FIX_FILES-1} of FIX_FILE_EXTENTS
#   extents of 4 KiB each, written in turn (so each file's extents lie
#   between the others', on disk and in the extent and csum trees), for the
#   delete job (the last one is punched, below);
# - a subvolume /mnt/meta of FIX_META="DIRS FILES SIZE": DIRS folders of
#   FILES files of SIZE bytes, inline in the fs tree, and its read-only
#   snapshot /mnt/meta-snap, for the send job;
# - FIX_CHURN="ROUNDS COUNT": ROUNDS transactions, each punching COUNT
#   random extents of /mnt/groups/prealloc and COUNT random 4 KiB blocks of
#   the last file, and updating the timestamps of COUNT random files of
#   /mnt/meta. Each transaction copies the few leaves
#   it touches, together, to wherever free metadata space is: after many
#   of them, leaves next to each other in a tree lie far apart on disk, as
#   on a filesystem in use for years (a few large rounds would rewrite
#   whole runs of leaves in key order instead).
# Output lines for the host: those of fixture-layout.sh.
set -euo pipefail
. /job/env

letters=abcdefghijklmnop
devs=()
for ((i = 0; i < FIX_DISKS; i++)); do devs+=("/dev/vd${letters:i:1}"); done
mnt=/mnt

echo "== users fixture: ${#devs[@]} disks, nodesize $FIX_NODESIZE, $FIX_GROUPS groups of $FIX_GROUP_BYTES" \
	"bytes with $FIX_EXTENTS extents, $FIX_FILES files of $FIX_FILE_EXTENTS extents, meta '$FIX_META'," \
	"churn '$FIX_CHURN'"
mkfs.btrfs -q -f -K -n "$FIX_NODESIZE" -m raid1 -d single "${devs[@]}" > /tmp/mkfs.log 2>&1 ||
	{ cat /tmp/mkfs.log; exit 1; }
if btrfs inspect-internal dump-super "${devs[0]}" | grep -q BLOCK_GROUP_TREE; then
	echo "mkfs made a block group tree: mount would not search the extent tree"
	exit 1
fi
mount -o noatime "${devs[0]}" $mnt
fsid=$(btrfs filesystem show "${devs[0]}" | awk '/uuid:/ { print $NF }')
echo "$FIX_GROUP_BYTES" > "/sys/fs/btrfs/$fsid/allocation/data/chunk_size"
echo "data chunk size: $(cat "/sys/fs/btrfs/$fsid/allocation/data/chunk_size")"

t0=$SECONDS
read -r dirs files size <<< "$FIX_META"
btrfs subvolume create $mnt/meta > /dev/null
for ((d = 0; d < dirs; d++)); do fill-files "$mnt/meta/d$d" "$files" "$size"; done
sync
echo "meta: $dirs folders of $files files of $size bytes, $((SECONDS - t0)) s"

t0=$SECONDS
mkdir $mnt/groups
extent_bytes=$((FIX_GROUP_BYTES / FIX_EXTENTS))
fill-groups prealloc $mnt/groups/prealloc $((FIX_GROUPS * FIX_EXTENTS)) $extent_bytes
fill-groups write $mnt/groups $((FIX_FILES * FIX_FILE_EXTENTS)) "$FIX_FILES"
sync
echo "groups: $((FIX_GROUPS * FIX_EXTENTS)) extents of $extent_bytes bytes preallocated," \
	"$FIX_FILES files of $FIX_FILE_EXTENTS extents, $((SECONDS - t0)) s"

t0=$SECONDS
read -r rounds count <<< "$FIX_CHURN"
RANDOM=1
for ((r = 1; r <= rounds; r++)); do
	fill-groups punch $mnt/groups/prealloc "$count" $extent_bytes "$r"
	fill-groups punch "$mnt/groups/f$((FIX_FILES - 1))" "$count" 4096 "$r"
	touched=()
	for ((i = 0; i < count; i++)); do touched+=("$mnt/meta/d$((RANDOM % dirs))/f$((RANDOM % files))"); done
	touch -c "${touched[@]}"
	sync
done
echo "churn: $rounds rounds, $((SECONDS - t0)) s"
btrfs subvolume snapshot -r $mnt/meta $mnt/meta-snap > /dev/null

btrfs filesystem df $mnt
umount $mnt

bash /job/fixture-layout.sh "${devs[0]}"
echo "== fixture done"
