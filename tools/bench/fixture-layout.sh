#!/bin/bash
# Guest helper of the fixture generators (make-fixture.sh,
# make-users-fixture.sh): prints the layout of the unmounted filesystem on
# the given disks for the host (tools/bench/fixture.py):
#   @@FIX nodesize N
#   @@FIX chunk LOGICAL LENGTH TYPE DEVID:PHYSICAL...
#   @@FIX block TREE BYTENR LEVEL        (in walk order: depth first, by key)
# usage: fixture-layout.sh DEV   (any disk of the filesystem)
set -euo pipefail
dev=$1
dump() { btrfs inspect-internal dump-tree "$@" "$dev" 2> /dev/null; }
echo "@@FIX nodesize $(btrfs inspect-internal dump-super "$dev" | awk '$1 == "nodesize" { print $2 }')"
dump -t chunk | awk '
	function flush() {
		if (logical != "") print "@@FIX chunk", logical, size, type stripes
		logical = ""; stripes = ""
	}
	/^[[:space:]]+item [0-9]+ key .*CHUNK_ITEM/ {
		flush()
		for (i = 1; i < NF; i++) if ($i == "CHUNK_ITEM") logical = $(i + 1)
		sub(/\)/, "", logical)
	}
	$1 == "length" { size = $2; type = $NF }
	$1 == "stripe" && $3 == "devid" { stripes = stripes " " $4 ":" $6 }
	END { flush() }'
for tree in extent csum; do
	dump -t "$tree" | awk -v t="$tree" '
		/^node [0-9]+ level [0-9]+/ { print "@@FIX block", t, $2, $4 }
		/^leaf [0-9]+ items/ { print "@@FIX block", t, $2, 0 }'
done
