#!/bin/bash
# Commit-root readaheads of the fs and extent trees on slow disks while a
# writer forces a commit several times a second: the blocks of a commit
# root are freed, unpinned and reused while the readahead still wants
# them, some with reads in flight. Nothing stale may be read: no btrfs
# error or warning on the console (the harness fails on any, and on the
# WARN in end_bbio_meta_read() a reused buffer would trip), every request
# ends with no error, the requests are cut as stale once commits come,
# nothing is held afterwards and btrfs check is clean.
# disks: 2x1G
# timeout: 900
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
dm_delayed slow0 /dev/vda 50
dm_delayed slow1 /dev/vdb 50
mkfs.btrfs -q -f -n 4096 -m raid1 -d single /dev/mapper/slow0 /dev/mapper/slow1
mount /dev/mapper/slow0 $MNT
populate $MNT

writer() {
	local i=0
	rm -f /tmp/stop
	while [ ! -e /tmp/stop ]; do
		fill_files $MNT/w$((i % 2)) 5 3000
		rm -rf $MNT/w$(((i + 1) % 2))
		btrfs filesystem sync $MNT
		sleep 0.05
		i=$((i + 1))
	done
	echo "writer: $i commits"
}
stale0=$(counter blocks_stale)
read0=$(counter blocks_read)
request_stale=0
rounds=6
kasan_kernel && rounds=3
# `make check`: half the rounds.
full_suite || rounds=$((rounds / 2))
for round in $(seq 1 $rounds); do
	# Blocks written in this mount stay in memory: remount, so that the
	# readahead reads from the slow disks while the writer commits.
	umount $MNT
	drop_caches
	mount /dev/mapper/slow0 $MNT
	writer &
	wpid=$!
	pids=()
	for t in fs extent; do
		timeout 300 reada $MNT --tree $t --commit-root --json > /tmp/out.$t &
		pids+=($!)
	done
	reada $MNT --tree fs --commit-root --detach > /dev/null
	for p in "${pids[@]}"; do
		wait "$p" || fail "round $round: a readahead failed or hung"
	done
	for t in fs extent; do
		out=$(cat /tmp/out.$t)
		expect_quiet "round $round: $t: errors" 0 "$(json_field errors "$out")"
		# The request holds its root block, so even a request cut at once
		# by a commit has visited its root.
		[ "$(json_field blocks_visited "$out")" -ge 1 ] ||
			fail "round $round: $t: the root was not visited: $out"
		request_stale=$((request_stale + $(json_field blocks_stale "$out")))
	done
	touch /tmp/stop
	wait $wpid
	# Detached requests end on their own before the next unmount.
	wait_requests_end 120
done
stale=$(($(counter blocks_stale) - stale0))
read=$(($(counter blocks_read) - read0))
echo "$rounds rounds: $read blocks read, $stale stale links cut ($request_stale of them reported to the waited requests)"
[ "$stale" -gt 0 ] || fail "no request was cut by a commit: the writer did not race the readahead"
[ "$read" -gt 0 ] || fail "every request was cut before it read anything"
wait_requests_end 120
expect_eq "requests active" 0 "$(counter requests_active)"
umount $MNT
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
dmsetup remove slow0
dmsetup remove slow1
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
unload_module
