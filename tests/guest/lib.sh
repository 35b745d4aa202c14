# Helpers for guest tests (bash). Source it first: . /tests/lib.sh
set -euo pipefail

MODULE=/reada/btrfs_reada.ko
MNT=/mnt

fail() { echo "FAIL: $*" >&2; exit 1; }
say() { echo "--- $*"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: expected '$2', got '$3'"
	echo "ok: $1 = $3"
}

# expect_status WHAT EXPECTED_STATUS COMMAND...: run COMMAND, compare its exit status
expect_status() {
	local what=$1 want=$2 got=0
	shift 2
	"$@" || got=$?
	[ "$got" = "$want" ] || fail "$what: expected exit status $want, got $got"
	echo "ok: $what (status $got)"
}

module_loaded() { [ -d /sys/module/btrfs_reada ]; }
load_module() { insmod "$MODULE"; module_loaded || fail "module did not load"; }
unload_module() { rmmod btrfs_reada; ! module_loaded || fail "module did not unload"; }

# disks N: the first N virtual disks, /dev/vda /dev/vdb ...
disks() {
	local n=$1 letters=abcdefghijklmnop i out=()
	for ((i = 0; i < n; i++)); do out+=("/dev/vd${letters:i:1}"); done
	echo "${out[@]}"
}

# sectors read so far by a block device (field 3 of /sys/block/X/stat)
sectors_read() { awk '{print $3}' "/sys/block/${1#/dev/}/stat"; }
