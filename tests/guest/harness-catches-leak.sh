#!/bin/bash
# Harness self-test: a memory leak must fail a run. The detector self-test
# module drops its only pointer to an allocation; kmemleak, scanned by the
# VM's init after every test, reports it.
# expect-splat: unreferenced object 0x|new suspected memory leaks
# kernel: kasan
# timeout: 120
. /tests/lib.sh
[ -e /sys/kernel/debug/kmemleak ] || fail "kmemleak is not in this kernel"
provoke_detector leak
