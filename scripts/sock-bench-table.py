#!/usr/bin/env python3
"""The summary table of scripts/sock-bench.sh.

Usage: sock-bench-table.py RUNS OUT ROUNDS QUICK
RUNS holds one line per successful run, KEY=VALUE words (load, label, bench_mode and
what eta_sock_bench printed). Prints, per load and measure and metric, the median of
each mode, its spread (min-max), the ratio of medians to tcp and, for ddp, the
issue's target with PASS/MISS. OUT ("" for none) receives the same rows: JSON if it
ends in .json (with every run), else TSV.
"""
import json
import statistics
import sys

MODES = ("tcp", "tcp+shim", "ddp")
# metric of each measure: (key, unit, higher is better)
METRICS = {
    "stream": [("MBps", "MB/s", True), ("cpu_per_GB", "CPU s/GB", False)],
    "rtt": [("p50_us", "us RTT p50", False), ("p99_us", "us RTT p99", False),
            ("cpu_per_1k_rtt", "CPU s/1k RTT", False)],
    "rr": [("req_per_s", "req/s", True), ("p50_us", "us p50", False), ("p99_us", "us p99", False),
           ("cpu_per_1k_req", "CPU s/1k req", False)],
    "connect": [("us_per_cycle", "us/cycle", False), ("s_per_3000", "s/3000 cycles", False),
                ("cpu_per_1k_cycles", "CPU s/1k cycles", False)],
}


def target(label, key, load):
    """The issue's target for ddp/tcp, as (comparison, ratio), or None."""
    if label == "stream_1MiB" and key == "MBps":
        return (">=", 0.90)
    if label == "stream_64KiB" and key == "MBps":
        return (">=", 1.00)
    if label.startswith("stream") and key == "cpu_per_GB" and not label.endswith("1proc"):
        return ("<=", 1.3)
    if label == "rtt_64B" and key == "p50_us":
        return ("<=", 1.15 if load == "idle" else 1.25)
    if label == "rr_20conn" and key == "req_per_s":
        return (">=", 0.90)
    if label == "rr_20conn" and key == "p50_us":
        return ("<=", 1.2)
    if label == "connect_cycle" and key == "us_per_cycle":
        return ("<=", 3.0)
    return None


def parse(path):
    runs = []
    for line in open(path):
        run = dict(w.split("=", 1) for w in line.split())
        if run.get("measure") == "connect":
            run["s_per_3000"] = str(float(run["us_per_cycle"]) * 3000 / 1e6)
        runs.append(run)
    return runs


def rows(runs):
    out = []
    order = []
    for r in runs:
        k = (r["load"], r["label"], r["measure"])
        if k not in order:
            order.append(k)
    for load, label, measure in order:
        mine = [r for r in runs if (r["load"], r["label"]) == (load, label)]
        for key, unit, _higher in METRICS[measure]:
            row = {"load": load, "measure": label, "metric": key, "unit": unit, "modes": {}}
            for mode in MODES:
                v = [float(r[key]) for r in mine if r["bench_mode"] == mode and key in r]
                if v:
                    row["modes"][mode] = {"n": len(v), "median": statistics.median(v),
                                          "min": min(v), "max": max(v)}
            base = row["modes"].get("tcp", {}).get("median")
            for mode, s in row["modes"].items():
                s["ratio_to_tcp"] = s["median"] / base if base else None
            t = target(label, key, load)
            ddp = row["modes"].get("ddp", {}).get("ratio_to_tcp")
            row["target"] = f"{t[0]} {t[1]:.2f}x" if t else ""
            if t and ddp is not None:
                row["verdict"] = "PASS" if (ddp >= t[1] if t[0] == ">=" else ddp <= t[1]) else "MISS"
            else:
                row["verdict"] = ""
            out.append(row)
    return out


def fmt(v):
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def show(table, rounds, quick):
    print(f"\nMedians of {rounds} round(s){' (--quick)' if quick else ''}; [min-max]; (ratio of medians to tcp)")
    head = f"{'load':5} {'measure':19} {'metric':16} " + " ".join(f"{m:>27}" for m in MODES) + "  target"
    print(head)
    print("-" * len(head))
    for row in table:
        cells = []
        for mode in MODES:
            s = row["modes"].get(mode)
            if not s:
                cells.append(f"{'-':>27}")
                continue
            c = f"{fmt(s['median'])} [{fmt(s['min'])}-{fmt(s['max'])}]"
            if mode != "tcp" and s["ratio_to_tcp"] is not None:
                c += f" ({s['ratio_to_tcp']:.2f}x)"
            cells.append(f"{c:>27}")
        tail = f"  {row['target']} {row['verdict']}" if row["target"] else ""
        print(f"{row['load']:5} {row['measure']:19} {row['unit']:16} " + " ".join(cells) + tail)


def write(path, table, runs, rounds, quick):
    if path.endswith(".json"):
        with open(path, "w") as f:
            json.dump({"rounds": rounds, "quick": quick, "rows": table, "runs": runs}, f, indent=1)
        return
    with open(path, "w") as f:
        f.write("load\tmeasure\tmetric\tunit\tmode\tn\tmedian\tmin\tmax\tratio_to_tcp\ttarget\tverdict\n")
        for row in table:
            for mode, s in row["modes"].items():
                ratio = "" if s["ratio_to_tcp"] is None else f"{s['ratio_to_tcp']:.4f}"
                t, v = (row["target"], row["verdict"]) if mode == "ddp" else ("", "")
                f.write(f"{row['load']}\t{row['measure']}\t{row['metric']}\t{row['unit']}\t{mode}\t{s['n']}\t"
                        f"{s['median']:.6g}\t{s['min']:.6g}\t{s['max']:.6g}\t{ratio}\t{t}\t{v}\n")


def main():
    runs_path, out, rounds, quick = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    runs = parse(runs_path)
    table = rows(runs)
    show(table, rounds, quick)
    if out:
        write(out, table, runs, rounds, quick)
        print(f"\ntable written to {out}")


if __name__ == "__main__":
    main()
