#!/bin/bash
# Scrub right after a device replace, with the module loaded and without it,
# on four devices plus a spare (issue 17). With the module, a warm-up of
# scrubs on other small filesystems comes first (RAID1, RAID6 with its first
# parity stripe corrupted, DUP), so that the module has served cached-block
# requests before the rounds. A round: mkfs with data and metadata PROFILE,
# three files, then a replace of devid 2 onto the spare and a scrub; replace
# and scrub must succeed, scrub must find nothing to fix, the files must read
# back intact, `btrfs check` must be clean and no readahead may be left.
#
# Every round replaces a *missing* device: devid 2 is wiped, the filesystem
# mounted degraded and `btrfs replace start -r` rebuilds it onto the spare,
# the outside workload that crashed. RAID5 and RAID6 rounds first also scrub
# a degraded mount with devid 2 missing. Without patches/0001 stock btrfs
# crashed here with or without the module (a RAID6 chunk allocated while
# degraded has one data stripe; see raid6-single-data-stripe.sh).
#
# Environment (vmrun.py --env): ROUNDS (default 1) repeats everything;
# PROFILES (default "raid1 raid10 raid5 raid6"); MODES (default "stock
# module"; "module" in `make check`). On the KASAN kernel (`make
# check-full`), some ten times slower, the defaults are the module's rounds
# of RAID10 and RAID6 only.
# disks: 5x1G
# timeout: 1200
# kernel: debug
# full: kasan
# expect-console: BTRFS warning \(device \w+\): devid 2 uuid \S+ is missing
# expect-console: BTRFS error \(device \w+\): bdev <missing disk> errs: wr \d+, rd \d+, flush 0, corrupt 0, gen 0
. /tests/lib.sh

ROUNDS=${ROUNDS:-1}
if kasan_kernel; then
	PROFILES=${PROFILES:-raid10 raid6}
	MODES=${MODES:-module}
fi
PROFILES=${PROFILES:-raid1 raid10 raid5 raid6}
# `make check`: the module's rounds only.
full_suite || MODES=${MODES:-module}
MODES=${MODES:-stock module}
DEVS4="/dev/vda /dev/vdb /dev/vdc /dev/vdd"
SPARE=/dev/vde

for n in 1 2 4; do head -c $((n * 1048576)) /dev/urandom > /tmp/file$n; done

write_files() {
	for n in 1 2 4; do cp /tmp/file$n $MNT/file$n; done
	sync
}

check_files() {
	for n in 1 2 4; do
		cmp -s /tmp/file$n $MNT/file$n || fail "$1: file$n does not read back intact"
	done
}

# scrub_clean LABEL: scrub the mounted filesystem, which must need no repair
scrub_clean() {
	local out f
	out=$(btrfs scrub start -BR $MNT 2>&1) || { echo "$out"; fail "$1: scrub failed"; }
	for f in read_errors csum_errors verify_errors uncorrectable_errors corrected_errors; do
		[ "$(scrub_field $f "$out")" = 0 ] || { echo "$out"; fail "$1: scrub $f"; }
	done
}

btrfs_check() {
	btrfs check "$2" > /tmp/check.log 2>&1 || { cat /tmp/check.log >&2; fail "$1: btrfs check failed"; }
}

# chunk_stripe DEV TYPE_REGEX N: "devid offset" of stripe N of the first
# chunk whose type matches
chunk_stripe() {
	btrfs inspect-internal dump-tree -t chunk "$1" | awk -v t="$2" -v n="$3" '
		$0 ~ "type " t { if (!done) inchunk = 1 }
		inchunk && $1 == "stripe" && $2 == n { print $4, $6; done = 1; inchunk = 0 }'
}

warm_up() {
	say "warm-up: RAID1"
	mkfs.btrfs -q -f -m raid1 -d raid1 /dev/vda /dev/vdb
	mount /dev/vda $MNT
	write_files
	scrub_clean "warm-up raid1"
	scrub_clean "warm-up raid1, cached"
	umount $MNT

	say "warm-up: RAID6 with its first parity stripe corrupted"
	mkfs.btrfs -q -f -m raid6 -d raid6 $DEVS4
	mount /dev/vda $MNT
	# One full stripe (two data stripes of 64 KiB) at the start of the
	# data chunk, written directly: its P is stripe 2 of the chunk.
	dd if=/tmp/file1 of=$MNT/stripe bs=131072 count=1 oflag=direct status=none
	sync
	umount $MNT
	local p
	p=$(chunk_stripe /dev/vda 'DATA\|RAID6' 2)
	set -- $p
	[ $# = 2 ] || fail "cannot find the parity stripe of the data chunk"
	echo "P stripe: devid $1 at $2"
	corrupt_block "$(devid_disk "$1")" "$2" 65536
	mount /dev/vda $MNT
	btrfs scrub start -BR $MNT > /tmp/scrub.log 2>&1 || true
	scrub_clean "warm-up raid6, after the repair"
	umount $MNT

	say "warm-up: DUP"
	mkfs.btrfs -q -f -m dup -d single /dev/vda
	mount /dev/vda $MNT
	write_files
	scrub_clean "warm-up dup"
	scrub_clean "warm-up dup, cached"
	umount $MNT
}

# mount_degraded PROFILE: a new filesystem with the files, devid 2 wiped,
# mounted degraded
mount_degraded() {
	mkfs.btrfs -q -f -d "$1" -m "$1" $DEVS4
	mount /dev/vda $MNT
	write_files
	umount $MNT
	wipefs -q -a /dev/vdb
	mount -o degraded /dev/vda $MNT
}

# replace_round LABEL PROFILE: replace the missing devid 2 by the spare,
# then scrub
replace_round() {
	local label="$1 $2"
	mount_degraded "$2"
	btrfs replace start -B -f -r 2 $SPARE $MNT || fail "$label: replace failed"
	scrub_clean "$label"
	check_files "$label"
	umount $MNT
	btrfs_check "$label" /dev/vda
	wipefs -q -a $SPARE
	echo "ok: $label: missing device replaced, scrubbed clean, files intact, btrfs check clean"
}

# degraded_round LABEL PROFILE: scrub a degraded mount with devid 2
# missing. Scrub fails writing to the missing device, so what is checked is
# that it finds no bad data and that the files read back.
degraded_round() {
	local label="$1 $2 degraded" out f
	mount_degraded "$2"
	out=$(btrfs scrub start -BR $MNT 2>&1) || true
	for f in csum_errors verify_errors; do
		[ "$(scrub_field $f "$out")" = 0 ] || { echo "$out"; fail "$label: scrub $f"; }
	done
	check_files "$label"
	umount $MNT
	echo "ok: $label: scrubbed with a device missing, files intact"
}

profile_rounds() {
	local p
	for p in $PROFILES; do
		case $p in raid5 | raid6) degraded_round "$1" "$p" ;; esac
		replace_round "$1" "$p"
	done
}

for ((round = 1; round <= ROUNDS; round++)); do
	say "round $round of $ROUNDS"
	for mode in $MODES; do
		say "$mode"
		if [ "$mode" = stock ]; then
			! module_loaded || unload_module
			profile_rounds stock
			continue
		fi
		load_module
		warm_up
		before=$(counter requests_done)
		profile_rounds module
		after=$(counter requests_done)
		[ "$after" -gt "$before" ] || fail "scrub issued no readahead request"
		echo "ok: scrub issued $((after - before)) readahead requests"
		expect_eq "requests still active" 0 "$(counter requests_active)"
		unload_module
	done
done
