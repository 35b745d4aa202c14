#!/bin/bash
# The module inserts and removes cleanly, repeatedly, and logs its version.
# timeout: 180
. /tests/lib.sh
for i in 1 2 3; do
	load_module
	unload_module
done
dmesg | grep -q "btrfs tree readahead .* loaded" || fail "no load message with version"
expect_eq "load messages" 3 "$(dmesg | grep -c 'btrfs tree readahead .* loaded')"
expect_eq "unload messages" 3 "$(dmesg | grep -c 'btrfs tree readahead unloaded')"
