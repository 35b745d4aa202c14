#!/bin/bash
# RAID6 on three devices has one data stripe per full stripe, so its P and Q
# are copies of the data. Stock 6.12 computed them with the RAID6 library,
# whose optimized gen_syndrome() reads a pointer before its array when there
# is a single data stripe: P and Q came from unrelated memory, or the kernel
# crashed (issue 17; patches/0001). Without the module: a full-stripe write
# and a read-modify-write must leave P and Q on disk equal to the data, and
# with the data and P devices both missing the file must be rebuilt from Q.
# disks: 3x1G
# timeout: 300
# kernel: debug
# full: kasan
# expect-console: BTRFS warning \(device \w+\): devid \d+ uuid \S+ is missing
. /tests/lib.sh

head -c 262144 /dev/urandom > /tmp/data
head -c 4096 /dev/urandom > /tmp/small
mkfs.btrfs -q -f -d raid6 -m raid1c3 /dev/vda /dev/vdb /dev/vdc
mount /dev/vda $MNT
# Four full-stripe writes (64 KiB each), then a 4 KiB file in the next full
# stripe: a read-modify-write.
dd if=/tmp/data of=$MNT/f bs=65536 oflag=direct status=none
sync
dd if=/tmp/small of=$MNT/g bs=4096 oflag=direct status=none
sync
logical=$(filefrag -v $MNT/f | awk '$1 == "0:" { sub(/\.\.$/, "", $4); print $4 * 4096 }')
glogical=$(filefrag -v $MNT/g | awk '$1 == "0:" { sub(/\.\.$/, "", $4); print $4 * 4096 }')
umount $MNT
[ "$glogical" = $((logical + 262144)) ] || fail "g is not right after f: $glogical, $logical"

# The data chunk holding the file: its start and its three stripes.
chunk=$(btrfs inspect-internal dump-tree -t chunk /dev/vda | awk -v l="$logical" '
	/CHUNK_ITEM/ { start = $6 + 0 }
	$1 == "length" && $3 == "owner" { len = $2 + 0; data = ($0 ~ /type DATA/) }
	data && $1 == "stripe" && l >= start && l < start + len { printf "%s %s %s ", start, $4, $6 }')
set -- $chunk
[ $# = 9 ] || fail "cannot find the data chunk of logical $logical: '$chunk'"
start=$1
devs=($2 $5 $8)
offs=($3 $6 $9)
echo "file at logical $logical in the chunk at $start: devids ${devs[*]}"

# stripes NR: the data, P and Q stripes of full stripe NR into /tmp/stripe.0-2
stripes() {
	local rot=$(($1 % 3)) role s
	for role in 0 1 2; do
		s=$(((role + rot) % 3))
		dd if="$(devid_disk ${devs[s]})" bs=65536 skip=$(((offs[s] + $1 * 65536) / 65536)) count=1 \
			status=none > /tmp/stripe.$role
	done
	cmp -s /tmp/stripe.0 /tmp/stripe.1 || fail "full stripe $1: P is not a copy of the data"
	cmp -s /tmp/stripe.0 /tmp/stripe.2 || fail "full stripe $1: Q is not a copy of the data"
}
base=$(((logical - start) / 65536))
for ((i = 0; i < 4; i++)); do
	stripes $((base + i))
	dd if=/tmp/data bs=65536 skip=$i count=1 status=none | cmp -s - /tmp/stripe.0 ||
		fail "full stripe $((base + i)): the data stripe is not the file's data"
	echo "ok: full stripe $((base + i)) (full-stripe write): P and Q are copies of the data"
done
stripes $((base + 4))
head -c 4096 /tmp/stripe.0 | cmp -s - /tmp/small || fail "full stripe $((base + 4)): the data stripe does not hold g"
echo "ok: full stripe $((base + 4)) (read-modify-write): P and Q are copies of the data"
first_d=${devs[base % 3]}
first_p=${devs[(1 + base) % 3]}

# Lose the devices holding the first full stripe's data and P: the data
# must come back from Q.
say "devids $first_d (data) and $first_p (P) missing"
wipefs -q -a "$(devid_disk $first_d)" "$(devid_disk $first_p)"
for d in 1 2 3; do
	[ $d = $first_d ] || [ $d = $first_p ] || survivor=$(devid_disk $d)
done
mount -o degraded,ro "$survivor" $MNT
cmp -s /tmp/data $MNT/f || fail "the file does not read back from Q"
echo "ok: the file reads back with the data and P devices missing"
umount $MNT
