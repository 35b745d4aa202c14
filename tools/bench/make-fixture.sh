#!/bin/bash
# Guest script: build the benchmark fixture, an aged btrfs on the first
# FIX_DISKS virtual disks (metadata RAID1, data RAID0, FIX_NODESIZE nodes;
# on one disk metadata DUP, data single), then print its layout for the
# host (tools/bench/fixture.py).
#
# The aging runs rounds of random operations, each round one transaction
# (ended by `sync`). A phase of rounds is given as "ROUNDS NEW APPEND
# REWRITE DELETE SMALL_NEW SMALL_DELETE":
# - NEW, APPEND, REWRITE and DELETE act on data files of 4 KiB to 256 KiB,
#   never inlined, so each write is a data extent with an extent item and
#   checksums; appends (4 or 8 KiB) in later transactions add extents to
#   old files; deletes and rewrites leave holes that later writes refill;
# - SMALL_NEW and SMALL_DELETE act on small files whose data is inline in
#   the fs tree (one leaf each with 4 KiB nodes).
# First FIX_GROW fills the filesystem in a few large rounds. Then come
# FIX_SNAPSHOTS="COUNT KEEP" periods, as with a snapshot rotation: each
# takes a read-only snapshot, updates the timestamps of every file (as a
# relatime scan after a snapshot does, which unshares every fs tree leaf),
# runs the FIX_CHURN phase of many small rounds, and deletes the oldest
# snapshot beyond KEEP; once the cleaner has dropped the deleted snapshots,
# a last FIX_CHURN phase runs. The snapshots make the metadata outgrow one
# chunk, so the metadata chunks, and the extent and csum tree blocks in
# them, spread over all the disks, as on a large filesystem; the small rounds copy
# on write only the few tree blocks each touches, into whatever free space
# is at hand, so blocks next to each other in a tree end up far apart on
# disk. Files are picked at random (bash's RANDOM, seeded with FIX_SEED).
# FIX_MOUNT_OPTS are the mount options while aging.
#
# Output lines for the host, after the human-readable summary:
#   @@FIX df TYPE/PROFILE TOTAL USED   (bytes, from btrfs filesystem df)
# and the layout lines of fixture-layout.sh.
set -euo pipefail
. /job/env

letters=abcdefghijklmnop
devs=()
for ((i = 0; i < FIX_DISKS; i++)); do devs+=("/dev/vd${letters:i:1}"); done
mnt=/mnt

echo "== fixture: ${#devs[@]} disks, nodesize $FIX_NODESIZE, grow '$FIX_GROW'," \
	"snapshots '$FIX_SNAPSHOTS', churn '$FIX_CHURN', seed $FIX_SEED, mount options $FIX_MOUNT_OPTS"
# Metadata RAID1 and data RAID0 across the disks; on one disk DUP and single,
# btrfs's defaults there.
profiles=(-m raid1 -d raid0)
[ "$FIX_DISKS" -gt 1 ] || profiles=(-m dup -d single)
mkfs.btrfs -q -f -n "$FIX_NODESIZE" "${profiles[@]}" "${devs[@]}" > /tmp/mkfs.log 2>&1 ||
	{ cat /tmp/mkfs.log; exit 1; }
mount -o "$FIX_MOUNT_OPTS" "${devs[0]}" $mnt

# Payloads, one per size: content does not matter to btrfs (no dedupe, no
# compression), only sizes do. Slicing a long string for every file would
# cost more than the write under TCG, so slice once.
payload=$(head -c 196608 /dev/urandom | base64 -w0)
sizes=(4096 4096 4096 8192 8192 8192 12288 16384 16384 32768 65536 131072 262144)
blobs=()
for size in "${sizes[@]}"; do blobs+=("${payload:0:size}"); done
small=${payload:0:2000}   # inline: below the default max_inline of 2048
ndirs=64
dirs=()
for ((i = 0; i < ndirs; i++)); do dirs+=("$mnt/d$i"); done
mkdir "${dirs[@]}"

RANDOM=$FIX_SEED
files=()   # live data files; a removal swaps the last one into the hole
smalls=()  # live small files
made=0

# pick N: a random index below N (30 bits of randomness)
pick() { idx=$(((RANDOM << 15 | RANDOM) % $1)); }

# age_round NEW APPEND REWRITE DELETE SMALL_NEW SMALL_DELETE: one transaction
age_round() {
	local i gone=()
	for ((i = 0; i < $1; i++)); do
		f=${dirs[RANDOM % ndirs]}/f$made
		made=$((made + 1))
		echo -n "${blobs[RANDOM % ${#blobs[@]}]}" > "$f"
		files+=("$f")
	done
	for ((i = 0; i < $2; i++)); do
		pick ${#files[@]}
		echo -n "${blobs[RANDOM % 6]}" >> "${files[idx]}"
	done
	for ((i = 0; i < $3; i++)); do
		pick ${#files[@]}
		echo -n "${blobs[RANDOM % ${#blobs[@]}]}" > "${files[idx]}"
	done
	for ((i = 0; i < $4 && ${#files[@]} > 1; i++)); do
		pick ${#files[@]}
		gone+=("${files[idx]}")
		files[idx]=${files[-1]}
		unset 'files[-1]'
	done
	for ((i = 0; i < $5; i++)); do
		f=${dirs[RANDOM % ndirs]}/s$made
		made=$((made + 1))
		echo -n "$small" > "$f"
		smalls+=("$f")
	done
	for ((i = 0; i < $6 && ${#smalls[@]} > 1; i++)); do
		pick ${#smalls[@]}
		gone+=("${smalls[idx]}")
		smalls[idx]=${smalls[-1]}
		unset 'smalls[-1]'
	done
	[ ${#gone[@]} -eq 0 ] || rm -f "${gone[@]}"
	sync
}

# age PHASE "ROUNDS NEW APPEND REWRITE DELETE SMALL_NEW SMALL_DELETE"
age() {
	local phase=$1 rounds round start=$EPOCHREALTIME now
	set -- $2
	rounds=$1
	shift
	for ((round = 1; round <= rounds; round++)); do
		age_round "$@"
		if ((round % (rounds / 5 + 1) == 0 || round == rounds)); then
			now=$EPOCHREALTIME
			echo "$phase round $round/$rounds: ${#files[@]} data files, ${#smalls[@]} small files," \
				"$(((${now/./} - ${start/./}) / 1000000)) s"
		fi
	done
}
age grow "$FIX_GROW"
read -r periods keep <<< "$FIX_SNAPSHOTS"
mkdir $mnt/snapshots
for ((period = 1; period <= periods; period++)); do
	btrfs subvolume snapshot -r $mnt $mnt/snapshots/$period > /dev/null
	find "${dirs[@]}" -type f -exec touch -c {} +
	sync
	age "churn $period/$periods" "$FIX_CHURN"
	if ((period > keep)); then
		btrfs subvolume delete $mnt/snapshots/$((period - keep)) > /dev/null
	fi
done
btrfs subvolume sync $mnt
age "churn after" "$FIX_CHURN"

btrfs filesystem df $mnt
btrfs filesystem df -b $mnt | awk -F'[ :,=]+' '$3 == "total" { print "@@FIX df", $1 "/" $2, $4, $6 }'
umount $mnt

bash /job/fixture-layout.sh "${devs[0]}"
echo "== fixture done"
