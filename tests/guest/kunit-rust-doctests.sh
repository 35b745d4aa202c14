#!/bin/bash
# The kernel crate's doctests run as KUnit tests at boot, including the
# examples of the abstractions this project's patches add (OwnedQueue,
# UintParam, XArray, memalloc_nofs): all pass.
# append: kunit.enable=1
# timeout: 600
. /tests/lib.sh
summary=$(dmesg | grep -E "# rust_doctests_kernel: pass:[0-9]+ fail:[0-9]+" | tail -1)
[ -n "$summary" ] || { dmesg | grep -i kunit | tail -20; fail "no KUnit summary for rust_doctests_kernel"; }
echo "$summary"
echo "$summary" | grep -q " fail:0 " || { dmesg | grep -B5 "not ok" | head -60; fail "doctests failed"; }
# Doctests are named after their file: module_param.rs and fs.rs hold one
# example each, workqueue.rs several, OwnedQueue's among them, xarray.rs two.
for f in module_param workqueue xarray fs; do
	dmesg | grep -E "ok [0-9]+ rust_doctest_kernel_${f}_rs_[0-9]+" > /dev/null ||
		fail "no doctest of $f.rs ran"
	echo "ok: the examples of $f.rs ran and passed"
done
