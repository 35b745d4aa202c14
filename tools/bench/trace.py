#!/usr/bin/env python3
"""Takes a benchmark session's disk traces apart, run by run.

    tools/bench/bench.py ... --trace --out DIR    # records DIR/session/diskN.trace
    tools/bench/trace.py DIR [--job extent] [--mode readahead]

For every run of the chosen job and mode and every disk that served at least
10 reads in it, prints: reads, simulated busy seconds and their split into
seek, rotation and transfer; the reads the drive's buffer served; the
reads that waited more than three quarters of a revolution (the head had
just passed the block: its request came too late, or behind a read further
on), how many of those arrived only after the
read before them had finished (the drive queue had run dry) and the median
distance from the read before; the reads whose address is below the one
before (the order went backwards); and how long the disk sat idle between
reads. Each trace line is written when a request completes, and disksim
writes "# snapshot" at each snapshot, so the lines between snapshots a and b
(a run's marks in results.json) are that run's requests.
"""

import argparse
import json
import statistics
from pathlib import Path


def segments(path):
    """The trace's requests, cut at its snapshot lines: segment n holds the
    requests between snapshot n and n + 1 (segment 0: before the first)."""
    out = [[]]
    for line in Path(path).read_text().splitlines():
        if line.startswith("# snapshot"):
            out.append([])
            continue
        f = line.split()
        out[-1].append({"arrival": float(f[0]), "start": float(f[1]), "finish": float(f[2]),
                        "kind": f[3], "offset": int(f[4]), "len": int(f[5]),
                        "seek": float(f[7]), "rotation": float(f[8]),
                        "buffered": len(f) > 9 and f[9] == "1"})
    return out


def summary(reqs, revolution):
    """The figures of one run on one disk (see the module's docstring)."""
    reads = [r for r in reqs if r["kind"] == "Read"]
    busy = sum(r["finish"] - r["start"] for r in reads)
    idle = sum(max(0.0, b["start"] - a["finish"]) for a, b in zip(reads, reads[1:]))
    # Each miss with the read before it (None for a run's first read).
    misses = [(reads[i - 1] if i else None, r) for i, r in enumerate(reads)
              if r["rotation"] > 0.75 * revolution]
    steps = [b["offset"] - a["offset"] for a, b in misses if a]
    return {
        "reads": len(reads),
        "busy_s": busy,
        "seek_s": sum(r["seek"] for r in reads),
        "rotation_s": sum(r["rotation"] for r in reads),
        "buffered": sum(1 for r in reads if r["buffered"]),
        "missed_revolutions": len(misses),
        "missed_after_dry_queue": sum(1 for a, b in misses if a and b["arrival"] > a["finish"]),
        "missed_step_median": statistics.median(steps) if steps else 0,
        "backwards": sum(1 for a, b in zip(reads, reads[1:]) if b["offset"] < a["offset"]),
        "idle_s": idle,
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", help="the benchmark's --out folder")
    p.add_argument("--job", default="extent")
    p.add_argument("--mode", default="readahead")
    args = p.parse_args()
    out = Path(args.out)
    doc = json.loads((out / "results.json").read_text())
    revolution = 60.0 / doc["disks"]["model"]["rpm"]
    traces = sorted((out / "session").glob("disk*.trace"), key=lambda t: int(t.stem[4:]))
    if not traces:
        raise SystemExit(f"no traces in {out / 'session'}: run bench.py with --trace")
    cut = [segments(t) for t in traces]
    print("simulated seconds; miss: waited > 3/4 revolution; back: address below the previous read")
    for run in doc["runs"]:
        if run["job"] != args.job or run["mode"] != args.mode:
            continue
        a, b = run["marks"]
        print(f"round {run['round']} {run['job']} {run['mode']}: {run['seconds']:.2f} wall s")
        for t, segs in zip(traces, cut):
            reqs = [r for s in segs[a:b] for r in s]
            s = summary(reqs, revolution)
            if s["reads"] < 10:
                continue
            print(f"  {t.stem}: {s['reads']} reads, busy {s['busy_s']:.3f} (seek {s['seek_s']:.3f}, "
                  f"rotation {s['rotation_s']:.3f}), buffered {s['buffered']}, miss {s['missed_revolutions']} "
                  f"({s['missed_revolutions'] * revolution:.3f} s; {s['missed_after_dry_queue']} after a dry queue, "
                  f"median step {s['missed_step_median'] / 1024:.0f} KiB), back {s['backwards']}, "
                  f"idle {s['idle_s']:.3f}")


if __name__ == "__main__":
    main()
