#!/bin/bash
# Scrub with the module, racing a writer that keeps changing the trees
# (commit roots move under the readahead), is cancelled half way and
# resumed: it completes without errors, no readahead request is left
# behind, btrfs check is clean, and lockdep stays quiet (the harness fails
# the run on any splat).
# disks: 2x1G
# timeout: 900
# kernel: debug
# full: kasan
. /tests/lib.sh
load_module
mkfs.btrfs -q -f -n 4096 -m raid1 -d raid1 /dev/vda /dev/vdb
mount /dev/vda $MNT
populate $MNT
fill_files $MNT/big 6 16777216
sync
fsid=$(btrfs filesystem show /dev/vda | awk '/uuid:/ { print $NF }')
# Slow scrub down (bytes per second per device) so that the cancel lands
# while it runs.
for d in /sys/fs/btrfs/$fsid/devinfo/*/scrub_speed_max; do echo 8m > "$d"; done

writer() {
	local i=0
	while [ ! -e /tmp/stop ]; do
		fill_files $MNT/w$((i % 4)) 40 3000
		rm -rf $MNT/w$(((i + 2) % 4))
		sync
		i=$((i + 1))
	done
	echo "writer: $i rounds"
}
writer &
wpid=$!

done0=$(counter requests_done)
btrfs scrub start -B $MNT > /tmp/first 2>&1 &
spid=$!
sleep 4
# Cancel succeeds only on a running scrub.
btrfs scrub cancel $MNT || fail "scrub cancel failed: $(btrfs scrub status $MNT)"
wait $spid || true
grep -qi "aborted\|cancel" /tmp/first || fail "the first scrub did not end cancelled: $(cat /tmp/first)"
echo "ok: cancelled after $(($(counter requests_done) - done0)) readahead requests"
for d in /sys/fs/btrfs/$fsid/devinfo/*/scrub_speed_max; do echo 0 > "$d"; done
out=$(btrfs scrub resume -BR $MNT 2>&1) || fail "scrub resume failed: $out"
echo "$out" | grep -E "_errors:"
expect_eq "resumed scrub errors" "0 0 0" \
	"$(scrub_field csum_errors "$out") $(scrub_field verify_errors "$out") $(scrub_field uncorrectable_errors "$out")"
btrfs scrub status $MNT | grep -q "Status:.*finished" || fail "scrub not finished: $(btrfs scrub status $MNT)"
touch /tmp/stop
wait $wpid
done1=$(counter requests_done)
[ "$done1" -gt "$done0" ] || fail "scrub did not use the module"
echo "ok: $((done1 - done0)) readahead requests, $(counter blocks_stale) stale links (trees changed under them)"
expect_eq "requests active" 0 "$(counter requests_active)"
umount $MNT
btrfs check /dev/vda > /tmp/check.log 2>&1 || { cat /tmp/check.log; fail "btrfs check failed"; }
echo "ok: btrfs check is clean"
unload_module
