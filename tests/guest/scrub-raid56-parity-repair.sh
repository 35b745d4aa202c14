#!/bin/bash
# Scrub repairs a corrupted RAID5/6 parity stripe on disk, with the module
# loaded and without it (issue 12 item 11: once, with the module, P stayed
# corrupted after a scrub). A round: a fresh filesystem with data RAID5 on
# three devices or RAID6 on four (two data stripes per full stripe either
# way) and a file of four full stripes written with O_DIRECT, one full
# stripe a write, each 64 KiB data stripe one distinct byte. Unmounted, the
# data, P and Q stripes on disk must hold the pattern and the parity
# computed from it (P the XOR, Q the RAID6 syndrome). Then the P stripes (or
# the Q stripes) of all four full stripes, which rotate over the devices,
# are overwritten with random bytes, and after mount, `btrfs scrub start
# -BR` and unmount every one must read back from disk equal to its copy
# saved before the damage (and P and Q equal to the parity computed). Scrub
# must report no data error, a second scrub must be clean and the file must
# read back intact. With the module, scrub must have read ahead through it
# (requests_done grows; on filesystems this small the extent and csum trees
# are in memory after mount, so the readahead finds every block cached).
# Repairing parity prints no console line and counts in none of scrub's
# error fields, so the test needs no expect-console header.
#
# Environment (vmrun.py --env): ROUNDS (default 2; 1 in `make check`)
# rounds of each case; CASES (default "raid5:P raid6:P raid6:Q"); MODES
# (default "stock module").
# disks: 4x1G
# timeout: 600
. /tests/lib.sh

# `make check`: one round.
if full_suite; then ROUNDS=${ROUNDS:-2}; else ROUNDS=${ROUNDS:-1}; fi
CASES=${CASES:-raid5:P raid6:P raid6:Q}
MODES=${MODES:-stock module}
DISKS=($(disks 4))
STRIPE=65536
NR_DATA=2
# full stripes in the file: P and Q rotate over all four devices
FULL=4

# byte_stripe VALUE: a stripe of the byte VALUE on stdout
byte_stripe() {
	local oct
	printf -v oct '\\%03o' "$1"
	head -c $STRIPE /dev/zero | tr '\0' "$oct"
}

# What each stripe must hold, made once: /tmp/want.J.ROLE for stripe ROLE
# (0 and 1 data, 2 P, 3 Q) of the file's full stripe J, whose data stripes
# are the distinct bytes D0 and D1: P = D0 ^ D1 and Q = D0 ^ 2 * D1 in
# RAID6's Galois field (polynomial 0x11d). The file is the data stripes.
rm -f /tmp/pattern
for ((j = 0; j < FULL; j++)); do
	d0=$(((2 * j + 1) * 0x21 & 0xff))
	d1=$(((2 * j + 2) * 0x21 & 0xff))
	want=($d0 $d1 $((d0 ^ d1)) $((d0 ^ ((d1 << 1 ^ (d1 & 0x80 ? 0x11d : 0)) & 0xff))))
	for role in 0 1 2 3; do
		byte_stripe ${want[role]} > /tmp/want.$j.$role
	done
	cat /tmp/want.$j.0 /tmp/want.$j.1 >> /tmp/pattern
done

# differs FILE1 FILE2: where two stripes first differ, as "has X expect Y"
differs() {
	local at has want
	read -r at has want < <(cmp -l "$1" "$2" | head -1) || true
	printf 'byte %d has %02x expect %02x\n' $((at - 1)) $((8#$has)) $((8#$want))
}

# scrub_zero LABEL OUTPUT FIELD...: each error FIELD of a scrub's output is 0
scrub_zero() {
	local label=$1 out=$2 errs f
	shift 2
	errs=" $(scrub_errors "$out")"
	for f; do
		[[ $errs == *" $f:0 "* ]] || { echo "$out"; fail "$label: scrub $f is not 0"; }
	done
}

# locate LOGICAL: the data chunk holding LOGICAL into $start, $chunk_len,
# $devs and $offs (the devid and physical offset of each stripe)
locate() {
	local chunk
	chunk=$(btrfs inspect-internal dump-tree -t chunk ${DISKS[0]} | awk -v l="$1" '
		/CHUNK_ITEM/ { start = $6 + 0 }
		$1 == "length" && $3 == "owner" { len = $2 + 0; data = ($0 ~ /type DATA/) }
		data && $1 == "stripe" && l >= start && l < start + len { printf "%s %s %s %s ", start, len, $4, $6 }')
	set -- $chunk
	[ $# -ge 12 ] || fail "cannot find the data chunk of logical $1: '$chunk'"
	start=$1 chunk_len=$2 devs=() offs=()
	while [ $# -ge 4 ]; do
		devs+=("$3") offs+=("$4")
		shift 4
	done
}

# full_stripes FILE: the logical address of each full stripe of FILE's
# data, one a line (O_DIRECT writes of a full stripe each are not allocated
# in file order: they alternate between two places of the chunk)
full_stripes() {
	filefrag -v "$1" | awk -v per=$((NR_DATA * STRIPE / 4096)) '
		$1 ~ /^[0-9]+:$/ {
			sub(/\.\.$/, "", $2); sub(/:$/, "", $3); sub(/\.\.$/, "", $4)
			for (b = $2 + 0; b + per - 1 <= $3 + 0; b += per)
				printf "%d\n", ($4 + b - $2) * 4096
		}'
}

# stripe_at J ROLE: where stripe ROLE of the file's full stripe J lies, into
# $at (devid), $at_disk and $at_phys (bytes); btrfs rotates the roles one
# device on per full stripe
stripe_at() {
	local n=${fsn[$1]} s
	s=$(((n + $2) % ${#devs[@]}))
	at=${devs[s]}
	at_disk=${DISKS[at - 1]}
	at_phys=$((offs[s] + n * STRIPE))
}

# read_stripe J ROLE: that stripe from disk on stdout, bypassing any cache
read_stripe() {
	stripe_at "$1" "$2"
	dd if="$at_disk" bs=$STRIPE skip=$((at_phys / STRIPE)) count=1 iflag=direct status=none
}

# check_stripes LABEL FIRST_ROLE: every stripe of the file on disk from role
# FIRST_ROLE on (0: all, 2: the parity) holds what it must
check_stripes() {
	local j role
	for ((j = 0; j < FULL; j++)); do
		for ((role = $2; role < ${#devs[@]}; role++)); do
			read_stripe $j $role > /tmp/ondisk
			cmp -s /tmp/ondisk /tmp/want.$j.$role ||
				fail "$1: full stripe $j role $role (devid $at at $at_phys): $(differs /tmp/ondisk /tmp/want.$j.$role)"
		done
	done
}

# round LABEL PROFILE PARITY: damage the P or Q stripes of a fresh
# filesystem, scrub, check that they are repaired
round() {
	local label=$1 profile=$2 parity=$3 role=2 logicals out second j l
	[ "$parity" = Q ] && role=3
	# (mkfs.btrfs -q still prints notes and a RAID5/6 warning every time)
	if [ "$profile" = raid5 ]; then
		mkfs.btrfs -q -f -d raid5 -m raid1 "${DISKS[@]:0:3}" > /tmp/mkfs.log 2>&1
	else
		mkfs.btrfs -q -f -d raid6 -m raid1c3 "${DISKS[@]}" > /tmp/mkfs.log 2>&1
	fi || { cat /tmp/mkfs.log >&2; fail "$label: mkfs.btrfs failed"; }
	mount ${DISKS[0]} $MNT
	dd if=/tmp/pattern of=$MNT/f bs=$((NR_DATA * STRIPE)) oflag=direct status=none
	sync
	logicals=($(full_stripes $MNT/f))
	umount $MNT
	expect_quiet "$label: full stripes of the file" $FULL ${#logicals[@]}
	locate "${logicals[0]}"
	fsn=()
	for l in "${logicals[@]}"; do
		((l >= start && l < start + chunk_len && (l - start) % (NR_DATA * STRIPE) == 0)) ||
			fail "$label: file data at $l is not a full stripe of the chunk at $start"
		fsn+=($(((l - start) / (NR_DATA * STRIPE))))
	done
	check_stripes "$label, as written" 0
	for ((j = 0; j < FULL; j++)); do
		read_stripe $j $role > /tmp/good.$j
		dd if=/dev/urandom of="$at_disk" bs=$STRIPE seek=$((at_phys / STRIPE)) count=1 \
			conv=notrunc,fsync status=none
		if read_stripe $j $role | cmp -s - /tmp/good.$j; then
			fail "$label: $parity of full stripe $j is not damaged"
		fi
	done
	mount ${DISKS[0]} $MNT
	out=$(btrfs scrub start -BR $MNT 2>&1) || { echo "$out"; fail "$label: scrub failed"; }
	scrub_zero "$label: first" "$out" read_errors csum_errors verify_errors uncorrectable_errors
	second=$(btrfs scrub start -BR $MNT 2>&1) || { echo "$second"; fail "$label: second scrub failed"; }
	scrub_zero "$label: second" "$second" read_errors csum_errors verify_errors super_errors \
		uncorrectable_errors unverified_errors corrected_errors
	cmp -s /tmp/pattern $MNT/f || fail "$label: the file does not read back intact"
	umount $MNT
	for ((j = 0; j < FULL; j++)); do
		read_stripe $j $role > /tmp/ondisk
		cmp -s /tmp/ondisk /tmp/good.$j ||
			fail "$label: $parity of full stripe $j (devid $at at $at_phys) not repaired: $(differs /tmp/ondisk /tmp/good.$j)"
	done
	check_stripes "$label, after scrub" 2
	echo "ok: $label: $parity of $FULL full stripes (${fsn[*]} of the chunk) repaired, file intact, second scrub clean"
}

for mode in $MODES; do
	say "$mode"
	if [ "$mode" = stock ]; then
		! module_loaded || unload_module
	else
		module_loaded || load_module
	fi
	for c in $CASES; do
		for ((r = 1; r <= ROUNDS; r++)); do
			[ "$mode" = stock ] || before=$(counter requests_done)
			round "$mode $c round $r" "${c%:*}" "${c#*:}"
			[ "$mode" = stock ] || [ "$(counter requests_done)" -gt "$before" ] ||
				fail "$mode $c round $r: scrub issued no readahead request"
		done
	done
	if module_loaded; then
		expect_eq "readahead requests still active" 0 "$(counter requests_active)"
		unload_module
	fi
done
