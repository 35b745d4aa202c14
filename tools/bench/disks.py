"""The simulated disks of one benchmark session, and the control disk.

Each fixture image is copied (sparse) into the session folder, where mount
and scrub may write to it, and served by one `disksim` process; the copies
are deleted when the disks stop. SIGUSR1 makes
a disksim append its cumulative statistics to its snapshot file; the
benchmark takes one snapshot of every disk before and after each run and
subtracts them.

The control disk is a small raw image the guest reads with O_DIRECT: the
host writes "ACK N" into it once it has taken snapshot N, so the guest never
starts a run before the disks' counters were read, or "ABORT" when the host
gives up.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

CONTROL_SIZE = 1 << 20


class DiskArray:
    """N disksim processes over copies of the fixture's images."""

    def __init__(self, disksim, fixture, session, count, model_args, log=print, trace=False):
        self.session = Path(session)
        shutil.rmtree(self.session, ignore_errors=True)
        self.session.mkdir(parents=True)
        self.procs = []
        self.snapshot_files = []
        self.stats_files = []
        self.sockets = []
        for i in range(count):
            image = self.session / f"disk{i}.img"
            subprocess.run(["cp", "--sparse=always", str(Path(fixture) / f"disk{i}.img"), str(image)],
                           check=True)
            sock = self.session / f"disk{i}.sock"
            snaps = self.session / f"disk{i}.snapshots.jsonl"
            stats = self.session / f"disk{i}.stats.json"
            cmd = [str(disksim), "--socket", str(sock), "--file", str(image), "--name", f"disk{i}",
                   "--stats", str(stats), "--snapshots", str(snaps)] + list(model_args)
            if trace:
                cmd += ["--trace", str(self.session / f"disk{i}.trace")]
            errlog = open(self.session / f"disk{i}.log", "w")
            self.procs.append(subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=errlog))
            errlog.close()
            self.sockets.append(sock)
            self.snapshot_files.append(snaps)
            self.stats_files.append(stats)
        deadline = time.monotonic() + 30
        while not all(s.exists() for s in self.sockets):
            if any(p.poll() is not None for p in self.procs) or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"disksim did not start (logs in {self.session})")
            time.sleep(0.05)
        self.control = self.session / "control.img"
        with open(self.control, "wb") as f:
            f.truncate(CONTROL_SIZE)
        self.acknowledge(0)
        log(f"disks: {count} disksim processes serving copies in {self.session}")

    def drive_specs(self):
        """QEMU -drive specs: the simulated disks, then the control disk."""
        specs = [f"file=nbd:unix:{s},format=raw,if=virtio,cache=none" for s in self.sockets]
        specs.append(f"file={self.control},format=raw,if=virtio,cache=none")
        return specs

    def snapshot(self, n):
        """Takes snapshot number n (1, 2, ...) of every disk; returns them."""
        for p in self.procs:
            p.send_signal(signal.SIGUSR1)
        snaps = []
        deadline = time.monotonic() + 30
        for path in self.snapshot_files:
            while True:
                text = path.read_text() if path.exists() else ""
                lines = text.splitlines()
                if len(lines) >= n and text.endswith("\n"):
                    snaps.append(json.loads(lines[n - 1]))
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path}: snapshot {n} did not come")
                time.sleep(0.01)
        return snaps

    def acknowledge(self, n):
        """Lets the guest go on past mark n."""
        self._control(f"ACK {n}")

    def abort(self):
        """Makes the guest stop at its next mark."""
        self._control("ABORT")

    def _control(self, word):
        fd = os.open(self.control, os.O_WRONLY)
        try:
            os.pwrite(fd, f"{word}\n".encode().ljust(512), 0)
            os.fsync(fd)
        finally:
            os.close(fd)

    def stop(self):
        """Stops every disksim (each writes its final statistics)."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        final = []
        for p, stats in zip(self.procs, self.stats_files):
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            final.append(json.loads(stats.read_text()) if stats.exists() else None)
        # The copies are as large as the fixture (4 GiB for the full one):
        # a folder of sessions would fill the host's disk.
        for image in self.session.glob("*.img"):
            image.unlink()
        return final
