#!/usr/bin/env python3
"""`make bench`: btrfs tree readahead on simulated rotating disks.

Builds (or takes from its cache) the fixture, an aged btrfs on 7 disk
images; serves copies of them with 7 `disksim` processes; boots the release
kernel on them and runs tools/bench/bench-guest.sh, which times, from a cold
cache, the extent tree, the csum tree, both at once and a full scrub, each
in every mode (plain walk, forward walk, the module's readahead; scrub
without and with the module), round after round. Around every run the host
snapshots the disks' statistics (see disks.py). Then it prints the table,
writes results.json, table.txt, results.md and chart.svg into --out, and prints the
path of results.json as its last line.

--variant full-16k is the full variant with btrfs's default 16 KiB nodes
(the same aging, so the same metadata in a quarter of the blocks).

--variant full-1disk is the full variant's aging on one disk (metadata
DUP, data single).

--variant users runs the jobs of the in-kernel users of the readahead
(mount, quota rescan, send, delete; stock btrfs against the module) on
their own fixture (make-users-fixture.sh): thousands of block groups
without the block group tree, files of thousands of extents, a subvolume of
small files.

--variant demo is `make demo`'s: the extent and csum trees and scrub, once
each, on the full fixture.

--variant smoke and users-smoke are the small, fast versions `make check`
runs: small fixtures, one run each, fast disks; they prove the benchmark
works and say nothing about speed.

--drive picks the disk model: disksim's default rotating disk (a full
stroke spans the export), hdd-4tb (the export is the start of a 4 TB
drive), ssd / nvme (flash, no seeks), or none (no modelled time: the
virtual disks as fast as the host serves them, with disksim's statistics).
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import disks  # noqa: E402
import fixture  # noqa: E402
import report  # noqa: E402

VMRUN = TOP / "tools" / "vm" / "vmrun.py"
GUEST = HERE / "bench-guest.sh"

# A small aged fixture, for `make check`'s smoke.
SMOKE_FIXTURE = fixture.Spec(disks=7, disk_size="512M", nodesize=4096, grow="3 150 50 20 60 300 0",
                             snapshots="1 0", churn="5 10 10 5 10 10 10", seed=6, mount_opts="noatime")
# The 7-disk fixture: 4 KiB nodes (four times the blocks per MiB of
# metadata of the 16 KiB default, so trees of thousands of blocks age in
# minutes under TCG), metadata RAID1, data RAID0.
FULL_FIXTURE = fixture.Spec(disks=7, disk_size="2G", nodesize=4096, grow="24 2000 3000 200 1000 2000 0",
                            snapshots="3 0", churn="60 20 20 10 20 20 20", seed=6, mount_opts="noatime")
FULL = {
    "fixture": FULL_FIXTURE,
    "jobs": report.TREE_JOBS,
    "runs": 3,
    "speed_factor": 4.0,
    "timeout": 7200,
}
VARIANTS = {
    "full": FULL,
    "smoke": {
        "fixture": SMOKE_FIXTURE,
        "jobs": report.TREE_JOBS,
        "runs": 1,
        "speed_factor": 1.0,
        "timeout": 900,
        "fixture_timeout": 900,
    },
    # The full fixture with btrfs's default 16 KiB nodes: the same aging,
    # so the same metadata in a quarter of the blocks.
    "full-16k": dict(FULL, fixture=dataclasses.replace(FULL_FIXTURE, nodesize=16384)),
    # The full fixture's aging on one disk (metadata DUP, data single).
    "full-1disk": dict(FULL, fixture=dataclasses.replace(FULL_FIXTURE, disks=1, disk_size="8G")),
    # `make demo`: the full fixture, the tree jobs and scrub once each, at
    # half the full variant's slowdown, for a first look in a few minutes.
    "demo": {
        "fixture": FULL_FIXTURE,
        "jobs": ("extent", "csum", "scrub"),
        "runs": 1,
        "speed_factor": 2.0,
        "timeout": 900,
    },
    # 2,000 data block groups of 256 MiB (500 GiB preallocated on sparse
    # disks) of 64 extents each; 8 files of 16,000 extents of 4 KiB; 10,000
    # small files to send.
    "users": {
        "fixture": fixture.UsersSpec(disks=7, disk_size="80G", nodesize=4096, groups=2000, group_bytes=256 << 20,
                                     extents=64, files=8, file_extents=16000, meta="10 1000 200",
                                     churn="300 20"),
        "jobs": report.USER_JOBS,
        "runs": 3,
        "speed_factor": 4.0,
        "timeout": 7200,
    },
    "users-smoke": {
        "fixture": fixture.UsersSpec(disks=7, disk_size="4G", nodesize=4096, groups=80, group_bytes=256 << 20,
                                     extents=64, files=8, file_extents=500, meta="2 500 200",
                                     churn="3 20"),
        "jobs": report.USER_JOBS,
        "runs": 1,
        "speed_factor": 1.0,
        "timeout": 900,
        "fixture_timeout": 900,
    },
}
DRIVES = ("default", "hdd-4tb", "ssd", "nvme", "none")
# The drive models whose disks tell the guest they are not rotational, as a
# real SSD does (a virtio disk says rotational whatever backs it).
FLASH_DRIVES = ("ssd", "nvme")

# The disk model's parameters, as disksim reports them in its statistics.
MODEL_KEYS = ("flash", "size", "capacity", "region_start", "rpm", "rate_bytes_per_s", "track_to_track_ms",
              "avg_seek_ms", "full_stroke_ms", "overhead_ms", "drive_readahead_bytes", "cache_segments", "reorder",
              "speed_factor")

MARK = re.compile(r"@@BENCH-MARK (\d+)@@")
RESULT = re.compile(r"@@BENCH-RESULT (\{.*\})@@")
INFO = re.compile(r"@@BENCH-INFO (\S+) (.*)@@")


def log(msg):
    print(msg, flush=True)


def follow(path, proc):
    """Yields the lines of a file another process writes, until it exits."""
    buf = b""
    pos = 0
    while True:
        done = proc.poll() is not None
        if path.exists():
            with open(path, "rb") as f:
                f.seek(pos)
                data = f.read()
            pos += len(data)
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                yield line.decode(errors="replace").rstrip("\r")
        if done:
            if buf:
                yield buf.decode(errors="replace").rstrip("\r")
            return
        time.sleep(0.05)


def run_session(args, spec, fixture_dir, out):
    """Boots the VM on the simulated disks and runs the guest's plan.

    Returns the guest's result lines, the snapshots by mark number, the
    guest's info lines and the disks' final statistics."""
    model = ["--speed-factor", str(args.speed_factor)] + args.disksim_arg
    if args.drive != "default":
        model.insert(0, f"--drive={args.drive}")
    array = disks.DiskArray(args.disksim, fixture_dir, out / "session", spec.disks, model, log, args.trace)
    raw, snapshots, info, proc = [], {}, {}, None
    try:
        workdir = out / "vm"
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "output.log").unlink(missing_ok=True)
        cmd = [sys.executable, str(VMRUN), "--kernel", str(args.kernel), "--initramfs", str(args.initramfs),
               "--workdir", str(workdir), "--script", str(GUEST), "--timeout", str(args.timeout), "--quiet"]
        cmd += [a for s in array.drive_specs() for a in ("--drive", s)]
        env = {"BENCH_DISKS": spec.disks, "BENCH_RUNS": args.runs, "BENCH_JOBS": " ".join(args.jobs),
               "BENCH_DELETABLE": getattr(spec, "files", 1) - 1,
               "BENCH_ROTATIONAL": 0 if args.drive in FLASH_DRIVES else 1}
        if args.max_in_flight:
            env["BENCH_MAX_IN_FLIGHT"] = args.max_in_flight
        if args.max_in_flight_nonrot:
            env["BENCH_MAX_IN_FLIGHT_NONROT"] = args.max_in_flight_nonrot
        if args.compare_module:
            compare = workdir / "compare.ko"
            shutil.copy(args.compare_module, compare)
            cmd += ["--file", str(compare)]
            env["BENCH_COMPARE"] = 1
        cmd += [a for k, v in env.items() for a in ("--env", f"{k}={v}")]
        proc = subprocess.Popen(cmd)
        for line in follow(workdir / "output.log", proc):
            if m := MARK.search(line):
                n = int(m.group(1))
                snapshots[n] = array.snapshot(n)
                array.acknowledge(n)
            elif m := RESULT.search(line):
                raw.append(json.loads(m.group(1)))
            elif m := INFO.search(line):
                info[m.group(1)] = m.group(2)
            elif "@@HARNESS-EXIT" not in line:
                log("  | " + line)
        if proc.wait() != 0:
            raise RuntimeError(f"the benchmark VM failed (exit {proc.returncode}, logs in {workdir})")
    except BaseException:
        # The guest gives up at its next mark instead of waiting for ever.
        array.abort()
        if proc:
            try:
                proc.wait(timeout=900)
            except subprocess.TimeoutExpired:
                log(f"the VM still runs; vmrun stops it after {args.timeout} s")
        raise
    finally:
        final = array.stop()
    return raw, snapshots, info, final


def sweeper(disksim, model, drive):
    """sweep(disk, extents) for report.add_sweep_limits: the seconds one
    ascending sweep over the extents takes on the session's disk model
    (`disksim --sweep`, `model` as recorded in results.json, on the drive
    of that name, whose geometry it sets)."""
    cmd = [str(disksim), "--sweep"] + ([f"--drive={drive}"] if drive != "default" else [])
    cmd += ["--size", str(model["size"]), "--rpm", str(model["rpm"]),
           "--rate", str(model["rate_bytes_per_s"]), "--track-to-track-ms", str(model["track_to_track_ms"]),
           "--avg-seek-ms", str(model["avg_seek_ms"]), "--full-stroke-ms", str(model["full_stroke_ms"]),
           "--overhead-ms", str(model["overhead_ms"]), "--drive-readahead", str(model["drive_readahead_bytes"]),
           "--speed-factor", str(model["speed_factor"]),
           # Results recorded before the drive had a buffer say nothing of it.
           "--cache-segments", str(model.get("cache_segments", 0))]

    def sweep(disk, extents):
        text = "".join(f"{o} {n}\n" for o, n in extents)
        proc = subprocess.run(cmd, input=text, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"disksim --sweep failed for disk {disk}: {proc.stderr.strip()}")
        return json.loads(proc.stdout)["seconds"]
    return sweep


def add_sweep_limits(entries, layout, disksim, model, drive):
    """The tree jobs' sweep limits on the session's disk model (`model` as
    recorded in results.json); none on flash, which does not seek: there
    the physical limit is the only one."""
    if model.get("flash"):
        for e in entries:
            e["sweep_limit_seconds"] = e["fraction_of_sweep_limit"] = None
    else:
        report.add_sweep_limits(entries, layout, sweeper(disksim, model, drive))


def write_outputs(doc, out, runs):
    """Writes results.json, table.txt, results.md and chart.svg and prints
    the table."""
    entries, model = doc["results"], doc["disks"]["model"]
    unslowed = doc["settings"].get("drive") == "none"
    if unslowed:
        # No modelled rate, so no physical limit to compare with.
        for e in entries:
            e["limit_seconds"] = e["fraction_of_limit"] = None
    text = report.table(entries)
    flash = model.get("flash")
    kind = ("unslowed, no modelled time" if unslowed else
            f"flash, {flash['latency_ms'] * 1000:g} us, {flash['channels']} channels, "
            f"{flash['rate_bytes_per_s'] / 1e6:g} MB/s" if flash else
            f"{model['rpm']:g} rpm, {model['rate_bytes_per_s'] / 1e6:g} MB/s")
    subtitle = (f"{doc['disks']['count']} simulated disks ({kind}, speed factor {model['speed_factor']:g}), "
                f"{runs} run(s), {doc['date'][:10]}")
    (out / "results.json").write_text(json.dumps(doc, indent=1) + "\n")
    (out / "table.txt").write_text(text + "\n")
    (out / "results.md").write_text(report.markdown(doc))
    (out / "chart.svg").write_text(report.svg(entries, "btrfs tree readahead: seconds per job", subtitle))
    log("")
    log(text)
    log(f"\nchart: {out / 'chart.svg'}; took {doc['took_seconds']:.0f} s")
    log(str(out / "results.json"))


def check_errors(raw):
    """A run that met read or checksum errors measures nothing: refuse it."""
    for r in raw:
        bad = [f"errors={x['errors']}" for x in r.get("reada", []) if x["errors"]]
        bad += [f"devid {d['devid']} {k}={v}" for d in r.get("scrub", {}).values()
                for k, v in d.items() if k.endswith("_errors") and v]
        if bad:
            raise RuntimeError(f"round {r['round']} {r['job']} {r['mode']}: {', '.join(bad)}")


def machine():
    """What the figures were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    accel = "kvm" if os.environ.get("VM_ACCEL") == "kvm" else "tcg"
    return {"host_cpus": os.cpu_count(), "host_cpu": cpu, "host_kernel": platform.release(),
            "accel": accel, "kind": f"{os.cpu_count()}-core VM, QEMU {accel.upper()} guest, simulated disks"}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", help="bzImage (the release kernel for real figures); required unless --report-only")
    p.add_argument("--initramfs", help="required unless --report-only")
    p.add_argument("--variant", choices=sorted(VARIANTS), default="full")
    p.add_argument("--runs", type=int, help="runs of each job and mode (default: the variant's)")
    p.add_argument("--speed-factor", type=float,
                   help="disksim --speed-factor: simulated time x F = wall time (default: the variant's)")
    p.add_argument("--max-in-flight", type=int, help="the module's max_in_flight (default: its own)")
    p.add_argument("--max-in-flight-nonrot", type=int,
                   help="the module's max_in_flight_nonrot, for the flash models' disks (default: its own)")
    p.add_argument("--compare-module", metavar="KO",
                   help="another build of the module (for the same kernel): tree jobs also run its "
                        "readahead, as mode readahead-cmp, alternating with the initramfs's")
    p.add_argument("--jobs", nargs="+", choices=report.JOBS, help="default: the variant's")
    p.add_argument("--drive", choices=DRIVES, default="default",
                   help="the disk model: disksim's default rotating disk, a 4 TB disk, flash, or none "
                        "(unslowed)")
    p.add_argument("--disksim-arg", action="append", default=[], metavar="ARG",
                   help="extra disksim argument, e.g. --disksim-arg=--reorder=sptf; repeatable")
    p.add_argument("--disksim", default=str(TOP / "build" / "tools-bin" / "disksim"))
    p.add_argument("--cache", default=str(TOP / "build" / "bench"), help="where fixtures are kept")
    p.add_argument("--out", help="output folder (default: CACHE/VARIANT, CACHE/VARIANT-DRIVE with --drive)")
    p.add_argument("--trace", action="store_true",
                   help="log every disk request to OUT/session/diskN.trace (see tools/bench/trace.py)")
    p.add_argument("--report-only", action="store_true",
                   help="run nothing: recompute the limits, table and chart of OUT/results.json")
    args = p.parse_args()
    if not args.report_only and not (args.kernel and args.initramfs):
        p.error("--kernel and --initramfs are required")
    variant = VARIANTS[args.variant]
    args.runs = args.runs or variant["runs"]
    args.speed_factor = args.speed_factor or variant["speed_factor"]
    args.timeout = variant["timeout"]
    args.jobs = args.jobs or list(variant["jobs"])
    name = args.variant if args.drive == "default" else f"{args.variant}-{args.drive}"
    out = Path(args.out or Path(args.cache) / name)
    out.mkdir(parents=True, exist_ok=True)
    spec = variant["fixture"]
    started = time.monotonic()
    # The commit the run starts from, not one made while it runs.
    git = subprocess.run(["git", "-C", str(TOP), "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    if args.report_only:
        doc = json.loads((out / "results.json").read_text())
        layout = fixture.load(Path(args.cache) / f"fixture-{doc['fixture']['key']}")
        doc["fixture"]["summary"] = layout["summary"]
        add_sweep_limits(doc["results"], layout, args.disksim, doc["disks"]["model"],
                         doc["settings"].get("drive", "default"))
        write_outputs(doc, out, doc["settings"]["runs"])
        return

    fixture_dir = fixture.ensure(spec, args.cache, args.kernel, args.initramfs, log,
                                 variant.get("fixture_timeout", 5400))
    layout = fixture.load(fixture_dir)
    for tree in ("extent", "csum"):
        t = layout["summary"][tree]
        log(f"fixture: {tree} tree {t['blocks']} blocks ({t['levels']} levels) on disks "
            f"{','.join(map(str, t['disks']))}, density {t['density']:.3f}")

    raw, snapshots, info, final = run_session(args, spec, fixture_dir, out)
    check_errors(raw)
    flash = final[0]["flash"]
    rate = (flash or final[0])["rate_bytes_per_s"] / args.speed_factor
    entries = report.aggregate(raw, snapshots, layout, rate, spec.disks)
    add_sweep_limits(entries, layout, args.disksim, final[0], args.drive)
    doc = {
        "benchmark": "btrfs tree readahead on simulated rotating disks",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "variant": args.variant,
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "git": git,
        "machine": dict(machine(), guest=info),
        "disks": {"count": spec.disks, "model": {k: final[0][k] for k in MODEL_KEYS},
                  "sequential_rate_wall_bytes_per_s": rate},
        "fixture": {"key": spec.key(), "spec": layout["spec"], "nodesize": layout["nodesize"],
                    "summary": layout["summary"]},
        "settings": {"runs": args.runs, "jobs": args.jobs, "drive": args.drive,
                     "max_in_flight": info.get("max_in_flight"),
                     "max_in_flight_nonrot": info.get("max_in_flight_nonrot"),
                     "rotational": info.get("rotational")},
        "results": entries,
        "runs": raw,
        "disk_totals": final,
        "took_seconds": round(time.monotonic() - started, 1),
    }
    write_outputs(doc, out, args.runs)


if __name__ == "__main__":
    main()
