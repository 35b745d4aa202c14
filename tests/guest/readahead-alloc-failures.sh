#!/bin/bash
# Allocation failures, injected with the kernel's fault injection (debug
# kernel): every request ends, in success or ENOMEM, never a hang or an
# oops; afterwards the module holds nothing, a clean request still reads
# everything, and kmemleak (scanned by the harness after the script) finds
# no leak.
#  1. Systematically: the Nth allocation of one ioctl fails, for N = 1, 2,
#     ... until the call makes fewer than N allocations.
#  2. At random: 1 in 50 of the allocations made with the module's code on
#     the stack (its workers included) fails, over a set of cold readaheads.
# disks: 2x1G
# kernel: debug kasan
# timeout: 900
. /tests/lib.sh
FS=/sys/kernel/debug/failslab
[ -e /proc/thread-self/fail-nth ] && [ -d $FS ] || fail "no fault injection in this kernel (the debug kernel has it)"
# Inject into sleeping allocations too (GFP_KERNEL, GFP_NOFS): the module's.
echo N > $FS/ignore-gfp-wait
echo 0 > $FS/verbose
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
umount $MNT
total=$(dump_tree_blocks /dev/vda extent)
mount /dev/vda $MNT

say "the Nth allocation of a readahead ioctl fails"
enomem=0 absorbed=0 n=1
while :; do
	drop_caches
	out=$(reada-probe $MNT tree=2 mode=0 fail_nth=$n)
	case "$out" in
	"ok "*" injected=no") break ;;
	"ok "*" injected=yes") absorbed=$((absorbed + 1)) ;;
	"errno=ENOMEM injected=yes") enomem=$((enomem + 1)) ;;
	*) fail "fail_nth=$n: $out" ;;
	esac
	n=$((n + 1))
	[ $n -le 500 ] || fail "still allocating after 500 allocations"
done
echo "ok: $((n - 1)) allocation sites failed one by one: $enomem calls ENOMEM, $absorbed absorbed (best effort)"
[ "$enomem" -gt 0 ] || fail "no injected failure surfaced as ENOMEM"

say "1 in 50 of the module's allocations fails"
read -r _ size _ _ _ base _ <<< "$(grep '^btrfs_reada ' /proc/modules)"
# Addresses as unsigned hex (bash arithmetic is signed; printf %x is not).
echo "$base" > $FS/require-start
printf '0x%x\n' "$((base + size))" > $FS/require-end
echo 2 > $FS/probability
echo 1 > $FS/interval
echo -1 > $FS/times
declare -A tree_id=([extent]=2 [csum]=7 [fs]=5)
ok=0 enomem=0
# Eight rounds of three; `make check` runs four.
rounds=8
full_suite || rounds=4
for i in $(seq 1 $rounds); do
	drop_caches
	pids=()
	for t in extent csum fs; do
		timeout 120 reada-probe $MNT tree=${tree_id[$t]} mode=0 > /tmp/probe.$t.$i &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p" || fail "round $i: a readahead hung or failed"; done
	for t in extent csum fs; do
		case "$(cat /tmp/probe.$t.$i)" in
		ok*) ok=$((ok + 1)) ;;
		errno=ENOMEM) enomem=$((enomem + 1)) ;;
		*) fail "round $i, $t: $(cat /tmp/probe.$t.$i)" ;;
		esac
	done
done
echo 0 > $FS/probability
echo "ok: $((rounds * 3)) cold readaheads under injected failures: $ok succeeded, $enomem ENOMEM"
[ "$enomem" -gt 0 ] || fail "no request saw an injected failure"

say "after the failures"
wait_requests_end 30
expect_eq "requests active" 0 "$(counter requests_active)"
expect_eq "requests held" 0 "$(counter requests_live)"
expect_eq "blocks held" 0 "$(counter blocks_live)"
drop_caches
out=$(reada $MNT --tree extent --json)
expect_eq "clean readahead: blocks visited" "$total" "$(json_field blocks_visited "$out")"
expect_eq "clean readahead: errors" 0 "$(json_field errors "$out")"
umount $MNT
unload_module
