#!/bin/bash
# Harness self-test: a kernel WARNING on the console must fail a run. The
# kernel's crash-test module provokes one; the runner is told to expect it,
# so this test fails if the splat detector misses it.
# expect-splat: WARNING:
# timeout: 120
. /tests/lib.sh
[ -w /sys/kernel/debug/provoke-crash/DIRECT ] || fail "LKDTM is not in this kernel"
echo WARNING > /sys/kernel/debug/provoke-crash/DIRECT
dmesg | grep -q "WARNING:" || fail "no WARNING in dmesg"
echo "provoked a WARNING"
