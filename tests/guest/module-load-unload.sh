#!/bin/bash
# The module inserts and removes cleanly, repeatedly, logs its version, and
# takes its max_in_flight parameter.
# timeout: 180
. /tests/lib.sh
for i in 1 2 3; do
	load_module
	unload_module
done
dmesg | grep -q "btrfs tree readahead .* loaded" || fail "no load message with version"
expect_eq "load messages" 3 "$(dmesg | grep -c 'btrfs tree readahead .* loaded')"
expect_eq "unload messages" 3 "$(dmesg | grep -c 'btrfs tree readahead unloaded')"

# The max_in_flight parameter: default 6, settable at load and through /sys.
insmod $MODULE
param=/sys/module/btrfs_reada/parameters/max_in_flight
expect_eq "max_in_flight default" 6 "$(cat $param)"
echo 3 > $param
expect_eq "max_in_flight set through /sys" 3 "$(cat $param)"
unload_module
insmod $MODULE max_in_flight=2
expect_eq "max_in_flight set at load" 2 "$(cat $param)"
unload_module
if insmod $MODULE max_in_flight=lots 2>/dev/null; then fail "a bad parameter value was accepted"; fi
echo "ok: a bad parameter value is refused"
