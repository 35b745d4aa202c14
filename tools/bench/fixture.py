"""The benchmark fixture: an aged btrfs on several raw disk images.

`ensure()` builds it once, in a VM running its generator (make-fixture.sh
for the aged filesystem of the tree jobs and scrub, make-users-fixture.sh for
the jobs of the in-kernel users), and caches it under a folder named after
the hash of the generator, of fixture-layout.sh and of the parameters, so a
changed generator makes a new fixture and an unchanged one is never rebuilt.
The folder holds the disk images (disk0.img, ...) and layout.json: the
chunks, the space use and every extent and csum tree block in walk order,
from which `summarize()` derives tree sizes, which disks hold them and how
scattered they are.
"""

import hashlib
import json
import shutil
import statistics
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

HERE = Path(__file__).resolve().parent
LAYOUT = HERE / "fixture-layout.sh"
VMRUN = HERE.parent / "vm" / "vmrun.py"


class FixtureSpec:
    """What a generator builds, from its fields: `disks` disks of
    `disk_size`, and the generator's parameters (the other fields, as
    FIX_NAME variables)."""

    GENERATOR: ClassVar[Path]

    def env(self):
        """The guest script's parameters, as vmrun --env values."""
        return {f"FIX_{n.upper()}": str(v) for n, v in asdict(self).items() if n != "disk_size"}

    def key(self):
        """Hash of the generators' content and of these parameters."""
        h = hashlib.sha256(self.GENERATOR.read_bytes())
        h.update(LAYOUT.read_bytes())
        h.update(json.dumps(asdict(self), sort_keys=True).encode())
        return h.hexdigest()[:16]


@dataclass(frozen=True)
class Spec(FixtureSpec):
    """The aged filesystem of make-fixture.sh: disks, node size and aging
    (phases "ROUNDS NEW APPEND REWRITE DELETE SMALL_NEW SMALL_DELETE",
    snapshot periods "COUNT KEEP"; see the script)."""

    GENERATOR: ClassVar[Path] = HERE / "make-fixture.sh"
    disks: int
    disk_size: str
    nodesize: int
    grow: str
    snapshots: str
    churn: str
    seed: int
    mount_opts: str


@dataclass(frozen=True)
class UsersSpec(FixtureSpec):
    """The filesystem of make-users-fixture.sh: block groups of many
    extents, files of many extents to delete, a subvolume of small files
    ("DIRS FILES SIZE"), churn ("ROUNDS COUNT"); see the script."""

    GENERATOR: ClassVar[Path] = HERE / "make-users-fixture.sh"
    disks: int
    disk_size: str
    nodesize: int
    groups: int
    group_bytes: int
    extents: int
    files: int
    file_extents: int
    meta: str
    churn: str


def ensure(spec, cache, kernel, initramfs, log=print, timeout=5400):
    """The fixture's folder under `cache`, built first if it is not there
    (by a VM given `timeout` seconds)."""
    folder = Path(cache) / f"fixture-{spec.key()}"
    if (folder / "layout.json").exists():
        log(f"fixture: cached in {folder}")
        return folder
    work = Path(cache) / f"building-{spec.key()}"
    shutil.rmtree(work, ignore_errors=True)
    log(f"fixture: building in {work} (once; cached afterwards)")
    cmd = [sys.executable, str(VMRUN), "--kernel", str(kernel), "--initramfs", str(initramfs),
           "--workdir", str(work), "--script", str(spec.GENERATOR), "--file", str(LAYOUT),
           "--timeout", str(timeout), "--quiet"]
    cmd += [a for _ in range(spec.disks) for a in ("--disk", spec.disk_size)]
    cmd += [a for k, v in spec.env().items() for a in ("--env", f"{k}={v}")]
    proc = subprocess.run(cmd)
    output = (work / "output.log").read_text(errors="replace")
    if proc.returncode != 0:
        sys.stdout.write(output[-4000:])
        raise RuntimeError(f"building the fixture failed (exit {proc.returncode}, logs in {work})")
    for line in output.splitlines():
        if not line.startswith("@@"):
            log("  | " + line)
    layout = parse_layout(output)
    layout["spec"] = asdict(spec)
    (work / "layout.json").write_text(json.dumps(layout, indent=1) + "\n")
    for f in ("run.cpio", "job.cpio", "jobroot"):
        p = work / f
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    work.rename(folder)
    return folder


def load(folder):
    """The fixture's layout, with its summary."""
    layout = json.loads((Path(folder) / "layout.json").read_text())
    layout["summary"] = summarize(layout)
    return layout


def parse_layout(output):
    """The @@FIX lines of make-fixture.sh's output as a dict."""
    layout = {"chunks": [], "df": {}, "blocks": {"extent": [], "csum": []}}
    for line in output.splitlines():
        f = line.split()
        if not f or f[0] != "@@FIX":
            continue
        if f[1] == "nodesize":
            layout["nodesize"] = int(f[2])
        elif f[1] == "df":
            layout["df"][f[2]] = {"total": int(f[3]), "used": int(f[4])}
        elif f[1] == "chunk":
            stripes = [tuple(int(x) for x in s.split(":")) for s in f[5:]]
            layout["chunks"].append({"logical": int(f[2]), "length": int(f[3]), "type": f[4],
                                     "stripes": stripes})
        elif f[1] == "block":
            layout["blocks"][f[2]].append((int(f[3]), int(f[4])))
    if "nodesize" not in layout or not all(layout["blocks"].values()):
        raise RuntimeError("the fixture generator's output lacks its layout")
    return layout


def chunk_of(chunks, logical):
    """The chunk holding a logical address."""
    for c in chunks:
        if c["logical"] <= logical < c["logical"] + c["length"]:
            return c
    raise KeyError(f"no chunk holds {logical}")


def by_devids(chunks, per_chunk):
    """Blocks by the devids of their chunk, most first: chunks on the same
    devices (every DUP chunk of one disk, say) add up."""
    counts = {}
    for logical, blocks in per_chunk.items():
        devids = "+".join(str(d) for d, _ in chunk_of(chunks, logical)["stripes"])
        counts[devids] = counts.get(devids, 0) + len(blocks)
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def summarize(layout):
    """Per tree: size, the disks holding it and how scattered it is.

    - blocks, nodes, leaves, levels, bytes;
    - chunks: metadata chunks holding its blocks; disks: the devids with a
      copy of any of them (disk i of the fixture is devid i + 1);
      blocks_by_devids: its blocks by the devids of their chunk ("5+2";
      "1+1" for DUP on devid 1), summed over chunks on the same devices;
    - density: the tree's bytes over the span its blocks cover in their
      chunks, summed over chunks (1.0 = packed, as after a fresh copy);
    - walk_jump_median: median distance (bytes, in logical address) between
      two blocks read one after another by a depth-first walk;
    - walk_near: fraction of those steps that land within 1 MiB ahead.
    """
    nodesize = layout["nodesize"]
    chunks = layout["chunks"]
    out = {}
    for tree, blocks in layout["blocks"].items():
        per_chunk = {}
        disks = set()
        for bytenr, _ in blocks:
            c = chunk_of(chunks, bytenr)
            per_chunk.setdefault(c["logical"], []).append(bytenr)
            disks.update(devid for devid, _ in c["stripes"])
        span = sum(max(b) + nodesize - min(b) for b in per_chunk.values())
        jumps = [b[0] - a[0] for a, b in zip(blocks, blocks[1:])]
        out[tree] = {
            "blocks": len(blocks),
            "nodes": sum(1 for _, level in blocks if level > 0),
            "leaves": sum(1 for _, level in blocks if level == 0),
            "levels": 1 + max(level for _, level in blocks),
            "bytes": len(blocks) * nodesize,
            "chunks": len(per_chunk),
            "blocks_by_devids": by_devids(chunks, per_chunk),
            "disks": sorted(disks),
            "density": round(len(blocks) * nodesize / span, 4),
            "walk_jump_median": int(statistics.median(abs(j) for j in jumps)) if jumps else 0,
            "walk_near": round(sum(1 for j in jumps if 0 < j <= 1 << 20) / max(1, len(jumps)), 4),
        }
    out["metadata_chunks"] = sum(1 for c in chunks if "METADATA" in c["type"])
    out["data_chunks"] = sum(1 for c in chunks if "DATA" in c["type"])
    return out
