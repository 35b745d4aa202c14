"""Figures of a benchmark session: aggregation, the table and the SVG chart.

Every figure comes from runs measured side by side in one session. Per job
and mode: seconds (median, min, max over the runs), speedups of the medians
over the plain walk (for scrub and the users' jobs: over stock btrfs, without
the module) and over the forward walk, the fraction of the physical limit
reached (limit / median), and each disk's busy fraction (simulated busy time
of the disk during the run over the run's wall time; median over the runs).

The physical limit of a job is the time the disks need just to transfer
what the job must read, at their sequential rate (divided by the speed
factor), all of them at once:
- tree jobs: the blocks the plain walk reads (it reads each block it needs
  exactly once) times the node size, over the summed rate of the disks that
  hold a copy of any of the tree's blocks (RAID1: each block is needed from
  one copy only); for both trees at once, the larger of that bound for the
  two trees together and for each tree alone (a tree's blocks can come only
  from its own disks);
- scrub: it must read every copy of every used block from its own disk, so
  the limit is the slowest disk's bytes scrubbed (data and tree) over its rate.

That limit assumes the blocks lie packed. On an aged filesystem they do not,
so tree jobs also get a *sweep limit*, the best the layout allows: each
metadata chunk's blocks are shared out between its copies' disks (the lower
part of the chunk to the first copy, the upper to the second, cut where the
two sweeps take equally long; equal block counts for three copies), and each
disk serves its share in one ascending sweep, everything queued at once, timed
by the disk model itself (`disksim --sweep`); the limit is the slowest disk's
time. The fraction of the sweep limit says how close a schedule came to what
an ideal one, which knew every block's address in advance, achieves here.

The jobs of the in-kernel users of the readahead (mount, quota rescan, send,
delete) read what btrfs decides, so they get no limit; their runs must show
the same work in both modes of a round, and the module's runs must show that
the job's user made readahead requests that read blocks.
"""

import html
import math
import statistics

from fixture import chunk_of

TREE_JOBS = ("extent", "csum", "both", "scrub")
USER_JOBS = ("mount", "rescan", "send", "delete")
JOBS = TREE_JOBS + USER_JOBS
MODES = {job: ("stock", "module") for job in ("scrub",) + USER_JOBS}
# readahead-cmp: the readahead of another build of the module, given to
# bench.py with --compare-module (absent otherwise).
TREE_MODES = ("plain", "forward", "forward-always", "readahead", "readahead-cmp")
TREES_OF_JOB = {"extent": ("extent",), "csum": ("csum",), "both": ("extent", "csum")}


def modes_of(job):
    """The modes a job runs in, baseline first."""
    return MODES.get(job, TREE_MODES)


def spread(values):
    """Median, min and max of a list of numbers."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_figures(run, snapshots, disks):
    """Per-disk busy fraction and bytes read of one run, from the snapshots,
    and the reads the disks served, of which the drives' buffers served how
    many (0 from a disksim without a buffer)."""
    before, after = (snapshots[m] for m in run["marks"])
    busy, read = {}, {}
    reads = buffered = 0
    for i in range(disks):
        name = after[i]["name"]
        busy[name] = (after[i]["busy_wall_s"] - before[i]["busy_wall_s"]) / run["seconds"]
        read[name] = after[i]["bytes_read"] - before[i]["bytes_read"]
        reads += after[i]["requests"]["reads"] - before[i]["requests"]["reads"]
        buffered += after[i].get("buffered_reads", 0) - before[i].get("buffered_reads", 0)
    return busy, read, reads, buffered


def limit_seconds(job, baseline_runs, layout, rate):
    """The physical limit of a job (see the module's docstring), and the
    blocks a tree job reads; None for the users' jobs."""
    if job in USER_JOBS:
        return None, None
    if job == "scrub":
        per_disk = {}
        for run in baseline_runs:
            for dev in run["scrub"].values():
                n = dev["data_bytes_scrubbed"] + dev["tree_bytes_scrubbed"]
                per_disk.setdefault(dev["devid"], []).append(n)
        return max(statistics.median(v) for v in per_disk.values()) / rate, None
    trees = TREES_OF_JOB[job]
    blocks = [statistics.median(run["reada"][i]["blocks_read"] for run in baseline_runs) for i in range(len(trees))]
    disks = [set(layout["summary"][tree]["disks"]) for tree in trees]

    def bound(n, holders):
        return n * layout["nodesize"] / (len(holders) * rate)

    limits = [bound(n, d) for n, d in zip(blocks, disks)] + [bound(sum(blocks), set().union(*disks))]
    return max(limits), int(sum(blocks))


def sweep_limit_seconds(trees, layout, sweep):
    """The sweep limit of reading `trees` (see the module's docstring).

    `sweep(disk, extents)` returns the seconds disk number `disk` (devid - 1)
    takes to serve the (physical offset, length) extents in one ascending
    sweep. None if a tree lives in a chunk whose copies are not whole
    mirrors (striped metadata)."""
    nodesize = layout["nodesize"]
    per_chunk = {}
    for tree in trees:
        for bytenr, _ in layout["blocks"][tree]:
            c = chunk_of(layout["chunks"], bytenr)
            per_chunk.setdefault(c["logical"], (c, set()))[1].add(bytenr)
    shares = {}
    for chunk, blocks in per_chunk.values():
        profile = chunk["type"].split("|")[1] if "|" in chunk["type"] else "SINGLE"
        if profile not in ("SINGLE", "DUP", "RAID1", "RAID1C3", "RAID1C4"):
            return None
        # One copy per disk: DUP's second copy is on the same disk.
        copies = list({devid: offset for devid, offset in reversed(chunk["stripes"])}.items())[::-1]
        ordered = sorted(blocks)

        def extents(i, part):
            devid, offset = copies[i]
            return [(offset + b - chunk["logical"], nodesize) for b in part]

        cuts = [i * len(ordered) // len(copies) for i in range(len(copies) + 1)]
        if len(copies) == 2:
            # The split that balances the two sweeps: the lower part's time
            # grows with the cut, the upper part's shrinks.
            lo, hi = 0, len(ordered)
            while lo < hi:
                mid = (lo + hi) // 2
                if sweep(copies[0][0] - 1, extents(0, ordered[:mid])) < \
                        sweep(copies[1][0] - 1, extents(1, ordered[mid:])):
                    lo = mid + 1
                else:
                    hi = mid
            cuts[1] = lo
        for i, (devid, _) in enumerate(copies):
            shares.setdefault(devid - 1, []).extend(extents(i, ordered[cuts[i]:cuts[i + 1]]))
    return max(sweep(disk, share) for disk, share in shares.items() if share)


def add_sweep_limits(entries, layout, sweep):
    """Adds sweep_limit_seconds and fraction_of_sweep_limit to the tree
    jobs' entries (None for scrub, or when the layout has no sweep limit)."""
    own = {}  # sweep_limit_seconds of each set of trees, computed once

    def limit_of(trees):
        if trees not in own:
            own[trees] = sweep_limit_seconds(trees, layout, sweep)
        return own[trees]

    for e in entries:
        trees = TREES_OF_JOB.get(e["job"])
        limit = None
        if trees:
            # Reading more blocks never takes less time: both trees' limit
            # is at least each tree's own.
            limits = [limit_of(t) for t in (trees, *((x,) for x in trees))]
            limit = None if None in limits else max(limits)
        e["sweep_limit_seconds"] = limit
        e["fraction_of_sweep_limit"] = limit / e["seconds"]["median"] if limit else None


def check_equal_work(job, runs):
    """In each round, every mode of a tree job visits the same blocks of
    each tree: a mode that did less work would look faster. Between rounds
    the mounted filesystem may change a little (seen: every mode of the
    third of three rounds found one extent tree block more). A user job's modes
    do the same work in each round (a round's deletes change what the next
    round's jobs find), and only the module's runs read ahead, as the job's
    user."""
    if job == "scrub":
        return
    if job in USER_JOBS:
        for mode, rs in runs.items():
            for r in rs:
                made, read = r["prefetch"]["requests"], r["prefetch"]["blocks_read"]
                if mode == "module" and (made < 1 or read < 1):
                    raise RuntimeError(f"round {r['round']} {job} module: the job's user made {made} "
                                       f"readahead requests, which read {read} blocks")
                if mode == "stock" and (made or read):
                    raise RuntimeError(f"round {r['round']} {job} stock: readahead without the module")
        work_of, what = (lambda r: r["work"]), "work"
    else:
        work_of, what = (lambda r: tuple(x["blocks_visited"] for x in r["reada"])), "blocks visited"
    rounds = {}
    for mode, rs in runs.items():
        for r in rs:
            rounds.setdefault(r["round"], {})[mode] = work_of(r)
    for rnd, work in rounds.items():
        if len(set(work.values())) != 1:
            raise RuntimeError(f"unequal work in job {job}, round {rnd}: {what} per mode {work}")


def ratio(medians, baseline, mode):
    """How many times faster `mode` ran than `baseline`, None if the job
    has no such baseline."""
    return medians[baseline] / medians[mode] if baseline in medians else None


def ratio_cell(entry, key):
    """A speedup for a table cell: two decimals, "-" if there is none."""
    return f"{entry[key]:.2f}" if entry[key] is not None else "-"


def aggregate(raw, snapshots, layout, rate, disks):
    """One entry per job and mode, in JOBS and mode order.

    `raw` holds the guest's result lines, `snapshots` maps mark numbers to
    the disks' statistics, `rate` is one disk's sequential rate in bytes per
    wall second (the speed factor applied).
    """
    entries = []
    for job in JOBS:
        runs = {m: rs for m in modes_of(job) if (rs := [r for r in raw if r["job"] == job and r["mode"] == m])}
        if not runs:
            continue
        check_equal_work(job, runs)
        baseline = modes_of(job)[0]
        limit, blocks = limit_seconds(job, runs[baseline], layout, rate)
        medians = {m: statistics.median(r["seconds"] for r in rs) for m, rs in runs.items()}
        for mode, rs in runs.items():
            figures = [run_figures(r, snapshots, disks) for r in rs]
            names = list(figures[0][0])
            entry = {
                "job": job,
                "mode": mode,
                "runs": len(rs),
                "seconds": spread([r["seconds"] for r in rs]),
                "speedup_vs_plain": ratio(medians, baseline, mode),
                "speedup_vs_forward": ratio(medians, "forward", mode),
                "speedup_vs_forward_always": ratio(medians, "forward-always", mode),
                "limit_seconds": limit,
                "fraction_of_limit": limit / medians[mode] if limit else None,
                "disk_busy": {n: statistics.median(f[0][n] for f in figures) for n in names},
                "bytes_read": int(statistics.median(sum(f[1].values()) for f in figures)),
                "disk_reads": int(statistics.median(f[2] for f in figures)),
                "buffered_reads": int(statistics.median(f[3] for f in figures)),
                "seconds_each": [r["seconds"] for r in rs],
            }
            if job in USER_JOBS:
                entry["work"] = sorted({r["work"] for r in rs})
                entry["prefetch_requests"] = int(statistics.median(r["prefetch"]["requests"] for r in rs))
                entry["prefetch_blocks_read"] = int(statistics.median(r["prefetch"]["blocks_read"] for r in rs))
            if blocks is not None:
                entry["blocks_to_read"] = blocks
                entry["blocks_read"] = int(statistics.median(
                    sum(x["blocks_read"] for x in r["reada"]) for r in rs))
            entries.append(entry)
    return entries


def table(entries):
    """The results as a fixed-width text table."""
    names = list(entries[0]["disk_busy"]) if entries else []
    head = (f"{'job':<7} {'mode':<14} {'seconds (min-max)':>21} {'x plain':>8} {'x fwd':>6} {'x fwa':>6} "
            f"{'limit':>8} {'of limit':>8} {'sweep':>7} {'of sweep':>8}  busy "
            + " ".join(n.replace("disk", "d") for n in names))
    lines = [head, "-" * len(head)]
    for e in entries:
        s = e["seconds"]
        fwd, fwa = ratio_cell(e, "speedup_vs_forward"), ratio_cell(e, "speedup_vs_forward_always")
        busy = " ".join(f"{100 * e['disk_busy'][n]:>2.0f}" for n in names)
        if e.get("sweep_limit_seconds"):
            sweep = f"{e['sweep_limit_seconds']:>7.2f} {100 * e['fraction_of_sweep_limit']:>7.1f}%"
        else:
            sweep = f"{'-':>7} {'-':>8}"
        if e["limit_seconds"] is not None:
            limit = f"{e['limit_seconds']:>8.3f} {100 * e['fraction_of_limit']:>7.1f}%"
        else:
            limit = f"{'-':>8} {'-':>8}"
        lines.append(
            f"{e['job']:<7} {e['mode']:<14} {s['median']:>9.2f} ({s['min']:.2f}-{s['max']:.2f})".ljust(44)
            + f" {e['speedup_vs_plain']:>8.2f} {fwd:>6} {fwa:>6} {limit} {sweep}  {busy}")
    lines.append("(x plain: speedup over the plain walk, for scrub and the users' jobs over stock btrfs;"
                 " x fwd, x fwa: over the forward and forward-always walks;"
                 " limit: seconds at the physical limit (blocks packed);"
                 " sweep: seconds of one ideal ascending sweep over the blocks where they lie;"
                 " busy: % of the run each disk was busy)")
    return "\n".join(lines)


COLORS = {"plain": "#9e9e9e", "forward": "#f0a030", "forward-always": "#c06010", "readahead": "#2f7ed8",
          "readahead-cmp": "#7cb5ec", "stock": "#9e9e9e", "module": "#2f7ed8"}


def svg(entries, title, subtitle):
    """A horizontal bar chart (log scale): per job and mode the median
    seconds, a min-max whisker, and the job's physical limit as a mark."""
    rows = []
    for job in JOBS:
        group = [e for e in entries if e["job"] == job]
        if group:
            rows.append(("job", job, group[0]["limit_seconds"]))
            rows.extend(("bar", e, None) for e in group)
    values = [e["seconds"]["max"] for e in entries] + [e["limit_seconds"] for e in entries if e["limit_seconds"]]
    values += [e["sweep_limit_seconds"] for e in entries if e.get("sweep_limit_seconds")]
    values += [e["seconds"]["min"] for e in entries]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    left, right, top, bar, gap = 150, 40, 70, 18, 8
    width = 820
    plot = width - left - right
    height = top + sum(bar + gap if kind == "bar" else 26 for kind, _, _ in rows) + 60

    def x(v):
        return left + plot * (math.log10(max(v, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{left}" y="22" font-size="15" font-weight="bold">{html.escape(title)}</text>',
           f'<text x="{left}" y="40" fill="#555">{html.escape(subtitle)}</text>']
    decade = lo
    while decade <= hi * 1.001:
        for k in range(1, 10):
            v = decade * k
            if v > hi * 1.001:
                break
            xv = x(v)
            stroke = "#bbb" if k == 1 else "#eee"
            out.append(f'<line x1="{xv:.1f}" y1="{top - 8}" x2="{xv:.1f}" y2="{height - 45}" stroke="{stroke}"/>')
        out.append(f'<text x="{x(decade):.1f}" y="{height - 30}" text-anchor="middle">{decade:g} s</text>')
        decade *= 10
    y = top
    for kind, item, limit in rows:
        if kind == "job":
            y += 6
            out.append(f'<text x="10" y="{y + 12}" font-weight="bold">{html.escape(item)}</text>')
            if limit:
                out.append(f'<text x="{x(limit) + 4:.1f}" y="{y + 12}" fill="#c00" font-size="11">'
                           f'physical limit {limit:.3g} s</text>')
            sweep = next((e.get("sweep_limit_seconds") for e in entries if e["job"] == item), None)
            if sweep:
                out.append(f'<text x="{x(sweep) + 4:.1f}" y="{y + 12}" fill="#080" font-size="11">'
                           f'sweep limit {sweep:.3g} s</text>')
            y += 20
            continue
        e, s = item, item["seconds"]
        out.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{html.escape(e["mode"])}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{x(s["median"]) - left:.1f}" height="{bar}" '
                   f'fill="{COLORS.get(e["mode"], "#666")}"/>')
        ym = y + bar / 2
        out.append(f'<line x1="{x(s["min"]):.1f}" y1="{ym}" x2="{x(s["max"]):.1f}" y2="{ym}" stroke="black"/>')
        for v in (s["min"], s["max"]):
            out.append(f'<line x1="{x(v):.1f}" y1="{y + 4}" x2="{x(v):.1f}" y2="{y + bar - 4}" stroke="black"/>')
        label = f'{s["median"]:.3g} s'
        if e["speedup_vs_plain"] != 1:
            label += f'  ({e["speedup_vs_plain"]:.1f}x)'
        out.append(f'<text x="{x(s["max"]) + 6:.1f}" y="{y + 13}">{label}</text>')
        if e["limit_seconds"]:
            xl = x(e["limit_seconds"])
            out.append(f'<line x1="{xl:.1f}" y1="{y - 2}" x2="{xl:.1f}" y2="{y + bar + 2}" '
                       f'stroke="#c00" stroke-width="2"/>')
        if e.get("sweep_limit_seconds"):
            xs = x(e["sweep_limit_seconds"])
            out.append(f'<line x1="{xs:.1f}" y1="{y - 2}" x2="{xs:.1f}" y2="{y + bar + 2}" '
                       f'stroke="#080" stroke-width="2" stroke-dasharray="3,2"/>')
        y += bar + gap
    out.append(f'<text x="{left}" y="{height - 10}" fill="#555">bar: median; whiskers: min-max; '
               'red: physical limit; green: sweep limit; (Nx): over plain walk / stock btrfs</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(doc):
    """The fixture and the results as Markdown tables, for the record in
    Documentation/benchmarks.md."""
    out = ["| tree | blocks (nodes + leaves) | levels | MiB | blocks by chunk devids "
           "| density | walk steps within 1 MiB | median walk jump |",
           "|---|---|---|---|---|---|---|---|"]
    for tree in ("extent", "csum"):
        t = doc["fixture"]["summary"][tree]
        chunks = ", ".join(f"{k}: {v}" for k, v in t["blocks_by_devids"].items())
        out.append(f"| {tree} | {t['blocks']} ({t['nodes']} + {t['leaves']}) | {t['levels']} "
                   f"| {t['bytes'] / 2**20:.1f} | {chunks} | {t['density']:.3f} "
                   f"| {100 * t['walk_near']:.0f} % | {t['walk_jump_median'] / 2**20:.1f} MiB |")
    entries = doc["results"]
    names = list(entries[0]["disk_busy"]) if entries else []
    out += ["", "| job | mode | seconds: median (min-max) | x plain | x forward | x forward-always "
            "| physical limit (s) "
            "| of limit | sweep limit (s) | of sweep | busy % " + " ".join(n.replace("disk", "d") for n in names)
            + " |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in entries:
        s = e["seconds"]
        fwd, fwa = ratio_cell(e, "speedup_vs_forward"), ratio_cell(e, "speedup_vs_forward_always")
        sweep = (f"{e['sweep_limit_seconds']:.2f} | {100 * e['fraction_of_sweep_limit']:.1f} %"
                 if e.get("sweep_limit_seconds") else "- | -")
        busy = " ".join(f"{100 * e['disk_busy'][n]:.0f}" for n in names)
        limit = (f"{e['limit_seconds']:.3f} | {100 * e['fraction_of_limit']:.1f} %"
                 if e["limit_seconds"] is not None else "- | -")
        out.append(f"| {e['job']} | {e['mode']} | {s['median']:.2f} ({s['min']:.2f}-{s['max']:.2f}) "
                   f"| {e['speedup_vs_plain']:.2f} | {fwd} | {fwa} | {limit} | {sweep} | {busy} |")
    return "\n".join(out) + "\n"

