#!/usr/bin/env python3
"""Summarise a trace written by libradlads_trace.so (see trace.c).

The trace is split into passes at every kernel whose name starts with --split (default embedding_f32, the first
kernel of every forward pass). For each pass (or only the last --last N): the span from the first start to the last
end, the time some kernel was running (the union of their intervals), the idle rest, and the idle gaps grouped by the
kernels on either side, largest first. Negative gaps (a kernel starting before the one before it ended, as PDL allows)
count as overlap.

"end increments": under PDL a kernel starts early and waits, so its duration overstates what it adds. What a kernel
adds to the pass is how much later it ends than everything before it (its end minus the latest earlier end): summed
per kernel name over the pass, these add up to the span.
"""
import argparse
import collections
import csv


def short(name):
    return name.split("(")[0].split("<")[0][:48]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("trace")
    p.add_argument("--split", default="embedding_f32", help="kernel name prefix that starts a pass")
    p.add_argument("--last", type=int, default=3, help="passes to print, counted from the end")
    p.add_argument("--top", type=int, default=12, help="gap groups and kernels to list per pass")
    a = p.parse_args()
    events = []
    with open(a.trace) as f:
        for r in csv.DictReader(f):
            events.append((int(r["start_ns"]), int(r["end_ns"]), r["kind"], r["name"], r["grid_x_or_bytes"]))
    events.sort()
    starts = [i for i, e in enumerate(events) if e[2] == "kernel" and e[3].startswith(a.split)]
    if not starts:
        starts = [0]
    bounds = list(zip(starts, starts[1:] + [len(events)]))
    for number, (i0, i1) in list(enumerate(bounds))[-a.last:]:
        seg = events[i0:i1]
        span = seg[-1][1] - seg[0][0]
        busy, end, overlap = 0, seg[0][0], 0
        gaps = collections.defaultdict(lambda: [0, 0])
        per = collections.defaultdict(lambda: [0, 0])
        adds = collections.defaultdict(int)
        prev = None
        for s, e, kind, name, _ in seg:
            n = short(name) if kind == "kernel" else kind
            per[n][0] += 1
            per[n][1] += e - s
            if prev is not None:
                gap = s - end
                if gap > 0:
                    g = gaps[(prev, n)]
                    g[0] += 1
                    g[1] += gap
                else:
                    overlap += min(-gap, e - s)
            busy += max(0, e - max(s, end))
            adds[n] += max(0, e - max(end, seg[0][0]))
            end = max(end, e)
            prev = n
        print(f"pass {number}: {len(seg)} activities, span {span / 1e6:.3f} ms, busy {busy / 1e6:.3f} ms, "
              f"idle {(span - busy) / 1e6:.3f} ms ({(span - busy) / span:.1%}), overlapped {overlap / 1e6:.3f} ms")
        print("  idle gaps by (before -> after): count, total us, mean us")
        for (x, y), (c, t) in sorted(gaps.items(), key=lambda kv: -kv[1][1])[:a.top]:
            print(f"    {x:>32} -> {y:<32} {c:5d} {t / 1e3:9.1f} {t / c / 1e3:7.2f}")
        print("  kernels: count, total us, mean us")
        for n, (c, t) in sorted(per.items(), key=lambda kv: -kv[1][1])[:a.top]:
            print(f"    {n:<48} {c:5d} {t / 1e3:9.1f} {t / c / 1e3:7.2f}")
        print("  end increments (what each kernel adds to the span): count, total us, mean us")
        for n, t in sorted(adds.items(), key=lambda kv: -kv[1])[:a.top]:
            c = per[n][0]
            print(f"    {n:<48} {c:5d} {t / 1e3:9.1f} {t / c / 1e3:7.2f}")


if __name__ == "__main__":
    main()
