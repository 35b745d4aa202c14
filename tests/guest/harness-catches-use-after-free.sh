#!/bin/bash
# Harness self-test: a write to freed memory must fail a run. LKDTM writes
# to a kmalloc()ed object after freeing it: KASAN reports the write at once;
# on the debug kernel, slab debugging finds the object corrupt when LKDTM
# allocates it again (and, failing that, when every cache is validated).
# expect-splat: KASAN: slab-use-after-free|BUG kmalloc-1k \(.*\): (Poison overwritten|Object corrupt)|mm/slub.c:\d+ object_err
# kernel: debug kasan
# kmemleak's scans (some 100 s of a KASAN run under TCG) prove nothing here.
# append: kmemleak=off
# timeout: 120
. /tests/lib.sh
[ -w /sys/kernel/debug/provoke-crash/DIRECT ] || fail "LKDTM is not in this kernel"
echo WRITE_AFTER_FREE > /sys/kernel/debug/provoke-crash/DIRECT
if [ ! -e /sys/kernel/debug/kmemleak ]; then
	for v in /sys/kernel/slab/*/validate; do echo 1 > "$v"; done
fi
echo "wrote after free"
