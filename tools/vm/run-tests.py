#!/usr/bin/env python3
"""The test driver behind `make check`.

Runs the host-side unit tests (`cargo test` of the userspace crates, each test
reported by name) and then every guest test under tests/guest/, each in a VM
of its own booted by vmrun.py, and ends with one line `N passed, N failed`.

A guest test is an executable script; comment lines at its top set its VM:
    # disks: 2x1G            two fresh 1 GiB disks (/dev/vda, /dev/vdb)
    # timeout: 300           seconds before the VM is killed (default 300)
    # mem: 2048              guest memory in MiB (default 2048; a KASAN run
                             in the check suite gets at most 1024)
    # expect-splat: REGEX    the test passes only if the kernel splats so
                             (for the harness's own self-test)
    # expect-console: REGEX  a btrfs error or warning the test provokes on
                             purpose (repeatable); any other fails the run
    # append: ARGS           extra kernel command line
    # kernel: debug kasan    the kernels to run it on (default: debug); a run
                             on another than debug is named guest/NAME@KERNEL
    # full: kasan            more kernels to run it on in the full suite only
                             (`--suite full`, `make check-full`)

Two suites: `check` (what `make check` and CI run, sized to finish well
within CI's 90 minutes on two slow cores) and `full` (every run on every
kernel asked for, and the scripts' longer rounds: the guest sees
READA_SUITE=full). Guest runs go `--jobs` at a time (default 2): most of a
run's time is waiting on slowed virtual disks, not on the host's CPU.
"""

import argparse
import concurrent.futures
import io
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
VMRUN = TOP / "tools" / "vm" / "vmrun.py"


class Results:
    """Results and their report. Guest runs finish in any order: each writes
    its lines to a buffer of its own (`out`), printed whole with its result
    under the lock."""

    def __init__(self):
        self.passed = []
        self.failed = []
        self.lock = threading.Lock()

    def add(self, name, ok, seconds=None, why="", out=None):
        took = f" ({seconds:.1f} s)" if seconds is not None else ""
        with self.lock:
            if out is not None:
                sys.stdout.write(out.getvalue())
            if ok:
                self.passed.append(name)
                print(f"PASS {name}{took}", flush=True)
            else:
                self.failed.append(name)
                print(f"FAIL {name}{took}{': ' + why if why else ''}", flush=True)


def host_tests(results, args):
    """cargo test over the userspace workspace; one result per Rust test."""
    env = dict(os.environ)
    # The reada tool's ABI test compares its layout with the patched header.
    env["READA_UAPI_HEADER"] = str(Path(args.kdir).resolve() / "include" / "uapi" / "linux" / "btrfs.h")
    env["READA_REQUIRE_UAPI"] = "1"
    cmd = ["cargo", "test", "--workspace", "--release", "--no-fail-fast", "--", "--test-threads=2"]
    print(f"== host: {' '.join(cmd)}", flush=True)
    # cargo names each test binary on stderr, its tests on stdout: merge them
    # to keep the order.
    proc = subprocess.run(cmd, cwd=TOP / "tools", env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    seen = 0
    crate = ""
    for line in proc.stdout.splitlines():
        m = re.match(r"\s*Running .*\(.*/deps/(\w+?)-[0-9a-f]+\)", line)
        if m:
            crate = m.group(1)
        m = re.match(r"test (\S+) \.\.\. (ok|FAILED|ignored)", line)
        if m and m.group(2) != "ignored":
            name = f"host/{crate}/{m.group(1)}"
            if args.filter and not re.search(args.filter, name):
                continue
            results.add(name, m.group(2) == "ok")
            seen += 1
    if proc.returncode != 0:
        sys.stdout.write(proc.stdout[-8000:])
        if seen == 0 or not results.failed:
            results.add("host/cargo-test", False, why=f"cargo test exited {proc.returncode}")


LINTS = [
    ("lint/module-rustfmt", "lint-module-rustfmt"),
    ("lint/module-clippy", "lint-module-clippy"),
    ("lint/module-no-panic", "lint-module-no-panic"),
    ("lint/checkpatch", "lint-checkpatch"),
    ("lint/tools-fmt-clippy", "lint-tools"),
]


def lints(results, args):
    """Style checks of the module, the tools and the patch series."""
    for name, target in LINTS:
        if args.filter and not re.search(args.filter, name):
            continue
        start = time.monotonic()
        proc = subprocess.run(["make", "-s", "--no-print-directory", target], cwd=TOP,
                              capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stdout.write("".join("    | " + l + "\n" for l in (proc.stdout + proc.stderr).splitlines()[-30:]))
        results.add(name, proc.returncode == 0, time.monotonic() - start)


def test_header(path):
    opts = {"disks": [], "timeout": 300, "mem": 2048, "expect-splat": None, "append": "",
            "kernel": ["debug"], "full": [], "expect-console": []}
    for line in path.read_text().splitlines()[:30]:
        m = re.match(r"#\s*(disks|timeout|mem|expect-splat|expect-console|append|kernel|full):\s*(.+?)\s*$", line)
        if not m:
            continue
        key, val = m.groups()
        if key == "disks":
            count, _, size = val.partition("x")
            opts["disks"] = [size] * int(count)
        elif key in ("timeout", "mem"):
            opts[key] = int(val)
        elif key in ("kernel", "full"):
            opts[key] = val.split()
        elif key == "expect-console":
            opts[key].append(val)
        else:
            opts[key] = val
    return opts


# The KASAN kernel runs some ten times slower under TCG: its runs get longer
# to finish before they count as hung.
TIMEOUT_FACTOR = {"kasan": 4}

# Guest memory of the KASAN runs in `make check`, in MiB: kmemleak's scans
# (three a run) take time in proportion to it, some 45 s a scan at 2 GiB
# against 27 s at 1 GiB when two guests share the machine. `make
# check-full` gives them the test's own `mem`.
KASAN_CHECK_MEM = 1024

# Free space under the build folder below which the suite warns: two runs'
# disk images at once, the bench smokes' fixtures and their session copies.
MIN_FREE = 8 << 30


def guest_jobs(results, args):
    """The guest runs of the chosen suite, as (cost, name, job) with the
    run's timeout as its cost, so the longest can start first."""
    kernels = {"debug": (args.kernel, args.initramfs),
               "kasan": (args.kasan_kernel, args.kasan_initramfs)}
    tests = sorted(p for p in (TOP / "tests" / "guest").glob("*.sh") if p.name != "lib.sh")
    jobs = []
    for test in tests:
        opts = test_header(test)
        runs = opts["kernel"] + (opts["full"] if args.suite == "full" else [])
        for kernel in runs:
            suffix = "" if kernel == "debug" else f"@{kernel}"
            name = f"guest/{test.stem}{suffix}"
            if args.filter and not re.search(args.filter, name):
                continue
            if kernel not in kernels or not kernels[kernel][0]:
                results.add(name, False, 0.0, f"no {kernel} kernel given (--{kernel}-kernel)")
                continue
            timeout = opts["timeout"] * TIMEOUT_FACTOR.get(kernel, 1)
            run_opts = dict(opts)
            if kernel == "kasan" and args.suite == "check":
                run_opts["mem"] = min(opts["mem"], KASAN_CHECK_MEM)
            jobs.append((timeout, name,
                         lambda t=test, n=name, o=run_opts, to=timeout, k=kernel:
                         guest_test(results, args, t, n, o, to, *kernels[k])))
    return jobs


def guest_test(results, args, test, name, opts, timeout, kernel, initramfs):
    """One run of guest test `test` as `name` on `kernel`, given `timeout`
    seconds."""
    workdir = Path(args.builddir) / "vm" / name.removeprefix("guest/").replace("@", "-")
    cmd = [sys.executable, str(VMRUN), "--kernel", kernel, "--initramfs", initramfs,
           "--script", str(test), "--workdir", str(workdir),
           "--timeout", str(timeout),
           "--mem", str(opts["mem"]),
           "--env", f"READA_SUITE={args.suite}"]
    for d in opts["disks"]:
        cmd += ["--disk", d]
    if opts["expect-splat"]:
        cmd += ["--expect-splat", opts["expect-splat"]]
    for e in opts["expect-console"]:
        cmd += ["--expect-console", e]
    if opts["append"]:
        cmd += ["--append", opts["append"]]
    if not args.verbose:
        cmd.append("--quiet")
    out = io.StringIO()
    out.write(f"== {name}\n")
    start = time.monotonic()
    # --verbose shows the guest's output live, which only makes sense for
    # one run at a time (main() forces --jobs 1 then).
    proc = subprocess.run(cmd, capture_output=not args.verbose, text=True)
    took = time.monotonic() - start
    ok = proc.returncode == 0
    if ok:
        # Only a failed run's disks are worth looking at; the suite's
        # would take gigabytes of the host's disk.
        for image in [*workdir.glob("disk*.img"), workdir / "run.cpio"]:
            image.unlink(missing_ok=True)
    why = ""
    if not ok:
        why = f"exit {proc.returncode}, logs in {workdir}"
        if not args.verbose:
            log = (workdir / "output.log").read_text(errors="replace") if (workdir / "output.log").exists() else ""
            out.write("".join("    | " + l + "\n" for l in log.splitlines()[-40:]))
            out.write("".join("    ! " + l + "\n" for l in proc.stderr.splitlines()[-40:]))
    results.add(name, ok, took, why, out)


# The small variants of `make bench` make check runs: the test's name, for
# each job the number of modes it must report, and the disk model: the tree
# jobs on the 4 TB drive model, the users' on the SSD model, so that the
# models the recorded figures come from are exercised too.
BENCH_SMOKES = {
    "smoke": ("bench-smoke", {"extent": 4, "csum": 4, "both": 4, "scrub": 2}, "hdd-4tb"),
    "users-smoke": ("bench-users-smoke", {"mount": 2, "rescan": 2, "send": 2, "delete": 2}, "ssd"),
}


def bench_smoke(results, args, variant):
    """A small variant of `make bench` (tools/bench/bench.py --variant
    smoke or users-smoke) on this kernel: it passes when it writes a
    complete, well-formed results JSON and prints its path last. Speed is
    not judged; the benchmark itself refuses runs of unequal work, and
    users' runs with the module in which the user read nothing ahead."""
    import json

    name, modes, drive = BENCH_SMOKES[variant]
    out = Path(args.builddir) / "bench" / variant
    cmd = [sys.executable, str(TOP / "tools" / "bench" / "bench.py"), "--variant", variant,
           "--kernel", args.kernel, "--initramfs", args.initramfs,
           "--cache", str(Path(args.builddir) / "bench"), "--out", str(out),
           "--disksim", str(Path(args.builddir) / "tools-bin" / "disksim"), "--drive", drive]
    log = io.StringIO()
    log.write(f"== {name}\n")
    start = time.monotonic()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if args.verbose:
        log.write(proc.stdout)
    why = ""
    try:
        assert proc.returncode == 0, f"exit {proc.returncode}"
        path = out / "results.json"
        assert proc.stdout.strip().splitlines()[-1] == str(path), "the last line is not the JSON's path"
        doc = json.loads(path.read_text())
        got = {}
        for e in doc["results"]:
            got[e["job"]] = got.get(e["job"], 0) + 1
            for k in ("median", "min", "max"):
                assert e["seconds"][k] > 0, f"{e['job']}/{e['mode']}: seconds {k}"
            assert e["seconds"]["min"] <= e["seconds"]["median"] <= e["seconds"]["max"]
            assert e["speedup_vs_plain"] > 0
            if "prefetch_requests" in e:  # a user's job: no limit; the module read ahead
                assert (e["prefetch_requests"] > 0 and e["prefetch_blocks_read"] > 0) == (e["mode"] == "module"), \
                    f"{e['job']}/{e['mode']}: prefetch {e['prefetch_requests']} {e['prefetch_blocks_read']}"
                assert len(e["work"]) == 1, f"{e['job']}/{e['mode']}: work {e['work']}"
            else:
                assert e["limit_seconds"] > 0 and e["fraction_of_limit"] > 0
                assert e["job"] == "scrub" or e["speedup_vs_forward"] > 0 and e["speedup_vs_forward_always"] > 0
                assert e["job"] == "scrub" or e["sweep_limit_seconds"] > 0 and e["fraction_of_sweep_limit"] > 0, \
                    f"{e['job']}/{e['mode']}: sweep limit"
            assert len(e["disk_busy"]) == doc["disks"]["count"], f"{e['job']}/{e['mode']}: disk_busy"
            assert all(0 <= b < 2 for b in e["disk_busy"].values()), f"{e['job']}/{e['mode']}: busy"
        assert got == modes, f"jobs and modes: {got}"
        for tree in ("extent", "csum"):
            assert doc["fixture"]["summary"][tree]["blocks"] > 0, f"{tree}: no blocks"
        for k in ("date", "command", "machine", "disks", "settings"):
            assert doc[k], f"{k} missing"
        assert doc["settings"]["drive"] == drive, f"drive {doc['settings']['drive']}"
        model = doc["disks"]["model"]
        assert (model["flash"] is not None) == (drive == "ssd"), f"model {model}"
        assert drive != "hdd-4tb" or model["capacity"] == 4_000_000_000_000, f"model {model}"
        assert drive != "hdd-4tb" or model["cache_segments"] > 0, f"the drive has no buffer: {model}"
        for e in doc["results"]:
            assert 0 < e["disk_reads"] and 0 <= e["buffered_reads"] <= e["disk_reads"], \
                f"{e['job']}/{e['mode']}: reads {e['disk_reads']}, buffered {e['buffered_reads']}"
    except (AssertionError, OSError, ValueError, KeyError, TypeError, IndexError) as e:
        why = f"{e or type(e).__name__}, logs in {out}"
        if not args.verbose:
            log.write("".join("    | " + l + "\n" for l in proc.stdout.splitlines()[-40:]))
    results.add(name, not why, time.monotonic() - start, why, log)


def run_jobs(jobs, n):
    """Run `jobs` ((cost, name, job) each), `n` at a time, costliest first."""
    jobs = sorted(jobs, key=lambda j: -j[0])
    if n <= 1:
        for _, _, job in jobs:
            job()
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as pool:
        for f in [pool.submit(job) for _, _, job in jobs]:
            f.result()


def main():
    p = argparse.ArgumentParser(description="run the project's tests")
    p.add_argument("--kernel", required=True)
    p.add_argument("--initramfs", required=True)
    p.add_argument("--builddir", required=True)
    p.add_argument("--kdir", required=True, help="the kernel tree the kernel was built in")
    p.add_argument("--kasan-kernel", help="the KASAN kernel, for tests that ask for it")
    p.add_argument("--kasan-initramfs")
    p.add_argument("--filter", help="run only tests whose name matches this regex")
    p.add_argument("--no-host", action="store_true", help="skip the host unit tests")
    p.add_argument("--verbose", "-v", action="store_true", help="show guest output live")
    p.add_argument("--suite", choices=("check", "full"), default="check",
                   help="check (CI's, the default) or full (every run, longer rounds)")
    p.add_argument("--jobs", "-j", type=int, default=2, help="guest runs at a time (default 2)")
    args = p.parse_args()
    if args.verbose:
        args.jobs = 1

    results = Results()
    start = time.monotonic()
    free = shutil.disk_usage(Path(args.builddir).resolve()).free
    if free < MIN_FREE:
        # A guest whose disk image cannot grow gets I/O errors (vmrun's
        # drives report them) and fails; say why up front.
        print(f"warning: {free / 2**30:.1f} GiB free under {args.builddir}; the suite's disks and "
              f"fixtures can take {MIN_FREE / 2**30:.0f} GiB at once")
    if not args.no_host:
        host_tests(results, args)
        lints(results, args)
    jobs = guest_jobs(results, args)
    for variant, (name, _, _) in BENCH_SMOKES.items():
        if not args.filter or re.search(args.filter, name):
            # Their disks are disksim processes on the host, fed by the VM:
            # a few minutes of a run, most of it building the fixture.
            jobs.append((600, name, lambda v=variant: bench_smoke(results, args, v)))
    run_jobs(jobs, args.jobs)
    print(f"\ntests took {time.monotonic() - start:.0f} s")
    if results.failed:
        print("failed: " + " ".join(results.failed))
    print(f"{len(results.passed)} passed, {len(results.failed)} failed")
    sys.exit(1 if results.failed or not results.passed else 0)


if __name__ == "__main__":
    main()
