#!/bin/bash
# Harness self-test: a task blocked uninterruptibly must fail a run. The
# kernel's crash-test module (LKDTM) blocks a task for ever; with the
# hung-task timeout lowered to 5 s, the detector reports it.
# expect-splat: INFO: task .* blocked for more than
# timeout: 180
. /tests/lib.sh
[ -w /sys/kernel/debug/provoke-crash/DIRECT ] || fail "LKDTM is not in this kernel"
echo 5 > /proc/sys/kernel/hung_task_timeout_secs
echo HUNG_TASK > /sys/kernel/debug/provoke-crash/DIRECT &
for _ in $(seq 60); do dmesg | grep -q "blocked for more than" && break; sleep 1; done
dmesg | grep -q "blocked for more than" || fail "no hung task report in 60 s"
echo "the hung-task detector reported the blocked task"
