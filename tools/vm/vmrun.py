#!/usr/bin/env python3
"""Run one guest script (or an interactive shell) in a QEMU VM.

The VM boots our patched kernel with the project's initramfs plus a small job
archive holding the script, and N raw virtual disks (/dev/vda, /dev/vdb, ...).
The script's output comes back on the second serial port, followed by a
marker carrying its exit status; kernel messages come back on the first
serial port and are scanned for splats (oops, BUG, WARNING, lockdep, KASAN,
hung task, RCU stall, leak, ...) and for btrfs errors and warnings. A splat,
or a btrfs message the test did not declare with --expect-console, fails the
run even when the script succeeded.

QEMU runs under TCG by default (KVM guests hang on this nested machine);
--kvm or VM_ACCEL=kvm opts in to KVM.

Exit status: the guest script's status; 124 on timeout; 125 when the guest
died without reporting a status (panic, triple fault); 126 when the script
succeeded but the console showed a splat (or, with --expect-splat, when the
expected splat did not show).
"""

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

EXIT_MARKER = re.compile(r"@@HARNESS-EXIT (\d+)@@")
# The disks' error policy: an I/O error in the guest, not a paused VM.
DRIVE_ERRORS = "werror=report,rerror=report"

# kmemleak turned off, by an error or by the kernel command line.
KMEMLEAK_OFF = r"Kernel memory leak detector disabled"

# Kernel console lines that mean something went wrong, whatever the test says.
SPLAT_PATTERNS = [
    r"WARNING:",  # WARN_ON and every lockdep report ("WARNING: possible ...")
    r"BUG:",  # BUG: sleeping function..., BUG: KASAN:, soft lockup, bad spinlock magic
    r"BUG \S+ \((?:Not t|T)ainted",  # SLUB_DEBUG: "BUG kmalloc-64 (Not tainted): Poison overwritten"
    r"kernel BUG at",
    r"Oops",
    r"general protection fault",
    r"Kernel panic",
    r"UBSAN:",
    r"KASAN:",
    r"INFO: task .* blocked for more than",
    r"rcu: INFO: .* detected stalls",
    r"self-detected stall",
    r"detected expedited stalls",
    r"kmemleak: \d+ new suspected memory leaks",
    r"unreferenced object 0x",
    KMEMLEAK_OFF,
    r"printk messages dropped",  # whatever was dropped went unchecked
    r"refcount_t: ",
    r"list_(add|del) corruption",
    r"Unable to handle kernel",
    r"[Tt]ransaction aborted",
    r"assertion failed:",
    r"btrfs_reada: readahead stalled",  # the module's own watchdog
    r"Malformed early option",  # a kernel option of ours this kernel ignored
]
SPLAT_RE = re.compile("|".join(f"(?:{p})" for p in SPLAT_PATTERNS))
# A run booted with `kmemleak=off` on purpose (a self-test of another
# detector, which would only pay for kmemleak's scans) is told so at boot.
SPLAT_RE_KMEMLEAK_OFF = re.compile("|".join(f"(?:{p})" for p in SPLAT_PATTERNS if p != KMEMLEAK_OFF))

# btrfs's own complaints: they fail a run too, except the lines a test that
# provokes them on purpose declares (`# expect-console: REGEX` in its
# header, --expect-console here).
BTRFS_RE = re.compile(r"BTRFS (?:error|critical|warning)|BTRFS: error")


def parse_size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().rstrip("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def find_splats(console_text, expected_console=(), kmemleak_off=False):
    """Return the console lines (with a little context) that report a splat,
    and the btrfs messages no REGEX of `expected_console` matches."""
    lines = console_text.splitlines()
    splat_re = SPLAT_RE_KMEMLEAK_OFF if kmemleak_off else SPLAT_RE
    found = []
    for i, line in enumerate(lines):
        if splat_re.search(line):
            found.append("\n".join(lines[i : i + 12]))
        elif BTRFS_RE.search(line) and not any(re.search(e, line) for e in expected_console):
            found.append(line)
    return found


def make_job_archive(workdir, script, extra_env, files=()):
    """A cpio archive with /job/run (the script), /job/env and the extra
    files (under their own names)."""
    job = workdir / "jobroot" / "job"
    if job.parent.exists():
        shutil.rmtree(job.parent)
    job.mkdir(parents=True)
    shutil.copy(script, job / "run")
    os.chmod(job / "run", 0o755)
    for extra in files:
        shutil.copy(extra, job / Path(extra).name)
    with open(job / "env", "w") as f:
        for k, v in extra_env.items():
            f.write(f"export {k}='{v}'\n")
    archive = workdir / "job.cpio"
    files = subprocess.run(
        ["find", "job", "-mindepth", "0"], cwd=job.parent, check=True, capture_output=True, text=True
    ).stdout
    with open(archive, "wb") as out:
        subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
            cwd=job.parent,
            input=files.encode(),
            stdout=out,
            check=True,
        )
    return archive


def qemu_command(args, initrd, disks, console_log, output_log):
    accel = "kvm" if (args.kvm or os.environ.get("VM_ACCEL") == "kvm") else "tcg,thread=multi"
    cmd = [
        "qemu-system-x86_64",
        "-accel", accel,
        "-cpu", "max",
        "-smp", str(args.smp),
        "-m", str(args.mem),
        "-kernel", str(args.kernel),
        "-initrd", str(initrd),
        "-append", " ".join(
            ["console=ttyS0", "panic=-1", "oops=panic" if args.panic_on_oops else "",
             "printk.devkmsg=on", "no_hash_pointers",
             # PCI interrupt routing from the BIOS table, not by running
             # ACPI's AML, which a KASAN kernel under TCG runs so slowly that
             # it times out and leaves the disks without an interrupt.
             "pci=noacpi",
             args.append]
        ).strip(),
        "-no-reboot",
        "-display", "none",
        "-vga", "none",
        "-nodefaults",
    ]
    if args.shell:
        cmd += ["-serial", "mon:stdio", "-serial", "null"]
    else:
        cmd += ["-monitor", "none",
                "-serial", f"file:{console_log}", "-serial", f"file:{output_log}"]
    # QEMU's default pauses the guest when the host's disk is full, which
    # a test would see as a hang until its timeout; report it to the guest
    # as an I/O error instead, on every disk.
    for d in disks:
        cmd += ["-drive", f"file={d},format=raw,if=virtio,cache=unsafe,discard=unmap,{DRIVE_ERRORS}"]
    for spec in args.drive:
        cmd += ["-drive", f"{spec},{DRIVE_ERRORS}"]
    return cmd


def run(args):
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    disks = []
    for i, size in enumerate(args.disk):
        path = workdir / f"disk{i}.img"
        if path.exists():
            path.unlink()
        with open(path, "wb") as f:
            f.truncate(parse_size(size))
        disks.append(path)

    initrd = Path(args.initramfs)
    if args.script:
        job = make_job_archive(
            workdir, args.script, dict(e.split("=", 1) for e in args.env), args.file
        )
        initrd = workdir / "run.cpio"
        with open(initrd, "wb") as out:
            for part in (args.initramfs, job):
                with open(part, "rb") as f:
                    shutil.copyfileobj(f, out)

    console_log = workdir / "console.log"
    output_log = workdir / "output.log"
    for f in (console_log, output_log):
        f.write_bytes(b"")
    cmd = qemu_command(args, initrd, disks, console_log, output_log)
    (workdir / "qemu.cmd").write_text(" ".join(cmd) + "\n")

    if args.shell:
        return subprocess.call(cmd)

    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + args.timeout
    shown = 0
    timed_out = False
    while True:
        done = proc.poll() is not None
        if not args.quiet:
            data = output_log.read_bytes()
            if len(data) > shown:
                text = data[shown:].decode(errors="replace")
                sys.stdout.write(EXIT_MARKER.sub("", text))
                sys.stdout.flush()
                shown = len(data)
        if done:
            break
        if time.monotonic() > deadline:
            timed_out = True
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            break
        time.sleep(0.2)

    output = output_log.read_text(errors="replace")
    console = console_log.read_text(errors="replace")
    match = EXIT_MARKER.search(output)
    splats = find_splats(console, args.expect_console, "kmemleak=off" in args.append.split())
    expected = None
    if args.expect_splat:
        expected = [s for s in splats if re.search(args.expect_splat, s)]
        splats = [s for s in splats if not re.search(args.expect_splat, s)]

    def report(msg):
        sys.stderr.write(f"vmrun: {msg}\n")

    if timed_out:
        report(f"timeout after {args.timeout} s (console: {console_log})")
        status = 124
    elif match is None:
        report(f"the guest stopped without reporting a status (console: {console_log})")
        status = 125
    else:
        status = int(match.group(1))
    for s in splats:
        report("kernel splat on the console:\n" + s)
    if splats and status == 0:
        status = 126
    if expected is not None and not expected and status == 0:
        report(f"expected a splat matching {args.expect_splat!r}, none seen")
        status = 126
    return status


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", required=True, help="bzImage")
    p.add_argument("--initramfs", required=True, help="base initramfs (cpio)")
    p.add_argument("--script", help="guest script to run as /job/run")
    p.add_argument("--shell", action="store_true", help="interactive shell on this terminal")
    p.add_argument("--disk", action="append", default=[], metavar="SIZE",
                   help="add a fresh sparse raw disk of SIZE (e.g. 1G); repeatable")
    p.add_argument("--drive", action="append", default=[], metavar="SPEC",
                   help="extra raw QEMU -drive spec (e.g. an NBD disk), given the error policy "
                        "of the other disks; repeatable")
    p.add_argument("--env", action="append", default=[], metavar="K=V",
                   help="variable for the guest script (/job/env); repeatable")
    p.add_argument("--file", action="append", default=[], metavar="PATH",
                   help="a file for the guest script, as /job/NAME; repeatable")
    p.add_argument("--workdir", required=True, help="folder for disks and logs")
    p.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    p.add_argument("--mem", type=int, default=2048, help="guest MiB (default 2048)")
    p.add_argument("--smp", type=int, default=2, help="guest CPUs (default 2)")
    p.add_argument("--append", default="", help="extra kernel command line")
    p.add_argument("--kvm", action="store_true", help="use KVM instead of TCG")
    p.add_argument("--panic-on-oops", action="store_true")
    p.add_argument("--expect-splat", metavar="REGEX",
                   help="succeed only if a splat matching REGEX shows (harness self-test)")
    p.add_argument("--expect-console", action="append", default=[], metavar="REGEX",
                   help="a btrfs error/warning line the test provokes on purpose; repeatable")
    p.add_argument("--quiet", action="store_true", help="do not echo guest output")
    args = p.parse_args()
    if not args.script and not args.shell:
        p.error("give --script or --shell")
    sys.exit(run(args))


if __name__ == "__main__":
    main()
