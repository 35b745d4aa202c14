#!/bin/bash
# Harness self-test: an RCU stall must fail a run. The detector self-test
# module keeps a CPU with preemption off for 10 s, with the stall timeout
# lowered to 3 s.
# expect-splat: rcu: INFO: .*detected stall
# timeout: 180
. /tests/lib.sh
echo 3 > /sys/module/rcupdate/parameters/rcu_cpu_stall_timeout
provoke_detector rcu-stall stall_secs=10
