#!/bin/bash
# Harness self-test: an RCU stall must fail a run. The detector self-test
# module requests a grace period and keeps a CPU with preemption off for
# 20 s. The stall timeout is lowered to 3 s; with CONFIG_PROVE_RCU, RCU adds
# 5 s to it, so the report comes about 8 s in, and 20 s leaves room for a
# grace-period kthread slowed by a busy host.
# expect-splat: rcu: INFO: .*detected stall
# timeout: 180
. /tests/lib.sh
echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
provoke_detector rcu-stall stall_secs=20
