#!/bin/bash
# A writer keeps changing the trees (COWing the fs, extent and csum trees
# as fast as it can) while readaheads of them run, live and commit roots,
# waited for and detached, with 4 KiB nodes and with btrfs's default 16
# KiB: every request finishes with no error and no btrfs message on the
# console (the harness fails on any: a node read unlocked while the writer
# changes it would log "parent transid verify failed" or worse), nothing
# is held afterwards, once the writer stops a readahead of each tree
# visits every block dump-tree counts, and btrfs check is clean. A commit
# during a request cuts the rest of it as stale (its blocks may be freed
# and reused): the stale links are counted and printed.
# disks: 2x1G
# timeout: 900
# kernel: debug kasan
. /tests/lib.sh
load_module
# writer: COW the fs, extent and csum trees until /tmp/stop exists
writer() {
	local i=0
	while [ ! -e /tmp/stop ]; do
		fill_files $MNT/w$((i % 3)) 60 5000
		rm -rf $MNT/w$(((i + 1) % 3))
		mv $MNT/b/f$((i % 50)) $MNT/b/g$i 2>/dev/null || true
		i=$((i + 1))
		[ $((i % 4)) -eq 0 ] && sync
	done
	echo "writer: $i rounds"
}

# race NODESIZE ROUNDS: the writer against ROUNDS rounds of readaheads on
# a filesystem with NODESIZE nodes
race() {
	local nodesize=$1 rounds=$2 round t p i out wpid stale0 stale_round pids
	declare -A blocks
	mkfs.btrfs -q -f -n $nodesize -m raid1 -d raid1 /dev/vda /dev/vdb
	mount /dev/vda $MNT
	populate $MNT
	writer &
	wpid=$!
	stale0=$(counter blocks_stale)
	for round in $(seq 1 $rounds); do
		drop_caches
		stale_round=$(counter blocks_stale)
		pids=()
		for t in fs extent csum; do
			timeout 120 reada $MNT --tree $t --json > /tmp/out.$t &
			pids+=($!)
		done
		reada $MNT --tree fs --commit-root --detach > /dev/null
		reada $MNT --tree extent --detach > /dev/null
		for p in "${pids[@]}"; do
			wait "$p" && continue
			cat $COUNTERS
			echo w > /proc/sysrq-trigger
			fail "$nodesize: round $round: a readahead failed or hung"
		done
		for t in fs extent csum; do
			out=$(cat /tmp/out.$t)
			# Nothing visited only if a commit cut the request at its root.
			[ "$(json_field blocks_visited "$out")" -gt 0 ] ||
				[ "$(counter blocks_stale)" -gt "$stale_round" ] ||
				fail "$nodesize: round $round: $t visited nothing: $out"
			expect_quiet "$nodesize: round $round: $t: errors" 0 "$(json_field errors "$out")"
		done
	done
	touch /tmp/stop
	wait $wpid
	rm -f /tmp/stop
	echo "ok: $nodesize: $rounds rounds of 5 readaheads against a writer, no error, $(($(counter blocks_stale) - stale0)) stale links cut"
	# Detached requests end on their own.
	wait_requests_end 60
	expect_eq "requests active" 0 "$(counter requests_active)"
	umount $MNT
	expect_eq "requests held" 0 "$(counter requests_live)"
	expect_eq "blocks held" 0 "$(counter blocks_live)"
	# Quiet now: a readahead of each tree is complete.
	load_tree_blocks /dev/vda
	for t in fs extent csum; do blocks[$t]=$(tree_blocks $t); done
	mount /dev/vda $MNT
	for t in fs extent csum; do
		out=$(reada $MNT --tree $t --json)
		expect_eq "$nodesize: $t after the writer: blocks visited" "${blocks[$t]}" "$(json_field blocks_visited "$out")"
	done
	umount $MNT
	btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
	echo "ok: $nodesize: btrfs check is clean"
}

# On the (ten times slower) KASAN kernel, half the rounds and 16 KiB nodes
# only; `make check` runs half as many again.
rounds=6
nodesizes="4096 16384"
kasan_kernel && rounds=3 nodesizes=16384
full_suite || rounds=$(((rounds + 1) / 2))
for nodesize in $nodesizes; do
	say "$nodesize-byte nodes"
	race $nodesize $rounds
done
unload_module
