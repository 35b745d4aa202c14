#!/bin/bash
# Harness self-test: a lockdep report must fail a run. The detector
# self-test module takes two mutexes in both orders; the runner is told to
# expect lockdep's report, so this test fails if the detector (or the
# harness's scan for it) misses it.
# expect-splat: possible circular locking dependency detected
# timeout: 120
. /tests/lib.sh
provoke_detector lockdep
