#!/bin/bash
# Harness self-test: sleeping in atomic context must fail a run. The
# detector self-test module allocates with GFP_KERNEL under a spinlock.
# expect-splat: BUG: sleeping function called from invalid context
# timeout: 120
. /tests/lib.sh
provoke_detector atomic-sleep
