#!/bin/bash
# Load: 64 requests at once over three filesystems (RAID1 on two devices,
# single, DUP), several trees, live and commit roots, round after round for
# a bounded time. Every request's own result is checked: it read or found
# in memory every block of its tree (as dump-tree counts them), with no
# error. Nodes are expanded only in the module's own pass, never in
# btrfs's end io worker. Afterwards the module holds no request and no
# block and the kernel's unreclaimable slab memory is back to where it
# started.
# disks: 4x1G
# timeout: 1200
# mem: 3072
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
mkdir -p /mnt1 /mnt2 /mnt3
mnts=(/mnt1 /mnt2 /mnt3)
raw=(/dev/vda /dev/vdc /dev/vdd)
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mkfs.btrfs -q -f -n 4096 -m single -d single /dev/vdc
mkfs.btrfs -q -f -n 4096 -m dup -d single /dev/vdd
# The blocks of each tree, as btrfs-progs counts them: nothing writes to
# the filesystems from here on, so live and commit roots agree with them.
declare -A blocks
for i in 0 1 2; do
	mount ${raw[i]} ${mnts[i]}
	populate ${mnts[i]}
	umount ${mnts[i]}
	for t in fs extent csum; do blocks[$i.$t]=$(dump_tree_blocks ${raw[i]} $t); done
done
# From here on reads take 100 ms (writes none), so that requests overlap
# for real.
for d in vda vdb vdc vdd; do
	dm_delayed slow_$d /dev/$d 100
done
devs=(/dev/mapper/slow_vda /dev/mapper/slow_vdc /dev/mapper/slow_vdd)
# btrfs still knows the raw disks' paths, which device-mapper now holds:
# forget them and learn the slow ones.
btrfs device scan --forget
btrfs device scan /dev/mapper/slow_vd? > /dev/null
for i in 0 1 2; do mount ${devs[i]} ${mnts[i]}; done

# gated CMD...: runs CMD once the round's gate opens (a line on /tmp/gate)
gated() { read -r _ < /tmp/gate; "$@"; }

# round: 64 requests at once, 21 on each filesystem (fs, extent and csum
# trees, the extent tree from its commit root) and one more on the first,
# each waited for by a process of its own; checks every request's result
# and prints how many were active at the peak seen. The processes are all
# forked first and released together, so that how fast a process starts
# (slow under TCG) does not decide how many requests overlap.
round() {
	local i t n pids=() peak=0 a out
	rm -f /tmp/req.* /tmp/gate
	mkfifo /tmp/gate
	# Held open for writing, so that a waiter's open never blocks.
	exec 3<>/tmp/gate
	for i in 0 1 2; do
		for n in $(seq 8); do gated reada ${mnts[i]} --tree fs --json > /tmp/req.$i.fs.$n & pids+=($!); done
		for n in $(seq 7); do
			gated reada ${mnts[i]} --tree extent --commit-root --json > /tmp/req.$i.extent.$n &
			pids+=($!)
		done
		for n in $(seq 6); do gated reada ${mnts[i]} --tree csum --json > /tmp/req.$i.csum.$n & pids+=($!); done
	done
	gated reada /mnt1 --tree root --json > /tmp/req.0.root.1 &
	pids+=($!)
	# One line per process opens the gate.
	for n in $(seq ${#pids[@]}); do echo; done >&3
	while [ -n "$(jobs -rp)" ]; do
		a=$(counter requests_active)
		[ "$a" -gt $peak ] && peak=$a
		sleep 0.2
	done
	for p in "${pids[@]}"; do wait "$p" || fail "a request failed (reada exit status $?)"; done
	exec 3>&-
	rm -f /tmp/gate
	for f in /tmp/req.*; do
		out=$(cat "$f")
		i=${f#/tmp/req.}; t=${i#*.}; t=${t%.*}; i=${i%%.*}
		expect_quiet "$f: errors" 0 "$(json_field errors "$out")"
		[ "$t" = root ] && continue
		expect_quiet "$f: blocks read or cached" "${blocks[$i.$t]}" \
			"$(($(json_field blocks_read "$out") + $(json_field blocks_cached "$out")))"
	done
	echo $peak
}

slab() { awk '/^SUnreclaim:/ { print $2 }' /proc/meminfo; }
# A first round sizes btrfs's own caches; measure from there.
round > /dev/null
wait_requests_end 60
drop_caches
slab0=$(slab)
# On the KASAN kernel (some ten times slower) rounds for 30 s, and its slow
# process start lets the first requests of a round end before the last
# begin: 32 at once is its floor.
duration=90 floor=48
if kasan_kernel; then duration=30 floor=32; fi
# `make check`: a third of the time (on KASAN, one round).
full_suite || duration=$((duration / 3))
end=$((SECONDS + duration)) rounds=0 peak=0 made=0
while [ $SECONDS -lt $end ]; do
	# Cold: nothing of the trees left in memory.
	for m in "${mnts[@]}"; do umount $m; done
	drop_caches
	mount /dev/mapper/slow_vda /mnt1; mount /dev/mapper/slow_vdc /mnt2; mount /dev/mapper/slow_vdd /mnt3
	# Mount reads its block group items ahead (patch 0022): not the round's.
	wait_requests_end 60
	done0=$(counter requests_done)
	p=$(round)
	made=$((made + $(counter requests_done) - done0))
	[ "$p" -gt $peak ] && peak=$p
	rounds=$((rounds + 1))
done
wait_requests_end 120
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "requests completed" $((rounds * 64)) "$made"
echo "ok: $rounds rounds of 64 requests in $duration s, each complete with no error, up to $peak active at once"
[ "$peak" -ge $floor ] || fail "never more than $peak requests at once"
[ "$(counter nodes_expanded)" -gt 0 ] || fail "no node expanded"
expect_eq "nodes expanded outside the module's pass (of $(counter nodes_expanded))" 0 \
	"$(counter nodes_expanded_outside_pass)"
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
drop_caches
slab1=$(slab)
echo "unreclaimable slab: $slab0 kB before, $slab1 kB after"
[ $((slab1 - slab0)) -lt 2048 ] || fail "unreclaimable slab grew by $((slab1 - slab0)) kB"
echo "ok: slab memory back to its level (within 2 MiB)"
for m in /mnt1 /mnt2 /mnt3; do umount $m; done
unload_module
for d in vda vdb vdc vdd; do dmsetup remove slow_$d; done
for d in /dev/vda /dev/vdc /dev/vdd; do
	btrfs check $d > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check $d failed"; }
done
echo "ok: btrfs check is clean on all three"
