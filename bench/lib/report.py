#!/usr/bin/env python3
"""Turns the raw measurements written by bench/run.sh into the results table
(stdout) and, optionally, a JSON document.

usage: report.py RESULTS_DIR [--json OUT] [--rows N] [--runs R] [--sluice PATH] [--mode quick|full]

RESULTS_DIR holds (all tab-separated, no header):
  workloads.tsv  workload_id, title, input_path, input_bytes, expected_rows[, output_kind[, codec]]
  tools.tsv      workload_id, tool_id, label, unavailable_reason ("" = available)
  results.tsv    workload_id, tool_id, round, exit_code, seconds, max_rss_kb, rows_found, log_path[, output_bytes]
  memcheck.tsv   label, expected_rows, input_bytes, exit_code, seconds, max_rss_kb, rows_found, log_path

Per tool: seconds = median over successful runs; peak RSS = max over successful
runs; ratio = tool seconds / sluice seconds in the same workload (the plain
"sluice" row, append mode), so > 1 means Sluice is faster.
For workloads whose output_kind is "parquet" the table adds "out MB" (total
size of the output file or directory, last successful run) and "out/pyarrow"
(that size / the pyarrow row's size; the goal is <= 1.10 for sluice); in the
JSON such a workload's "codec" is the Parquet compression every tool used
(run.sh --codec), null for the SQLite workloads.
Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys

REF_TOOL = "sluice"
SIZE_REF_TOOL = "pyarrow"


def _read_tsv(path: str) -> list[list[str]]:
    if not os.path.exists(path):
        return []
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(line.split("\t"))
    return rows


def _int(s: str) -> int | None:
    try:
        return int(s)
    except (TypeError, ValueError):
        return None


def _float(s: str) -> float | None:
    try:
        return float(s)
    except (TypeError, ValueError):
        return None


def aggregate(results_dir: str) -> dict:
    workloads = []
    for rec in _read_tsv(os.path.join(results_dir, "workloads.tsv")):
        wid, title, path, nbytes, expected, kind, codec = (rec + [""] * 7)[:7]
        workloads.append(
            {
                "id": wid,
                "codec": codec or None,
                "title": title,
                "input": path,
                "input_bytes": int(nbytes),
                "expected_rows": int(expected),
                "output_kind": kind or "sqlite",
                "tools": [],
            }
        )
    by_id = {w["id"]: w for w in workloads}

    tools: dict[tuple[str, str], dict] = {}
    for rec in _read_tsv(os.path.join(results_dir, "tools.tsv")):
        wid, tid, label = rec[0], rec[1], rec[2]
        reason = rec[3] if len(rec) > 3 else ""
        t = {"id": tid, "label": label, "unavailable": reason or None, "runs": []}
        tools[(wid, tid)] = t
        if wid in by_id:
            by_id[wid]["tools"].append(t)

    for rec in _read_tsv(os.path.join(results_dir, "results.tsv")):
        wid, tid, rnd, rc, secs, rss, found, log, outb = (rec + [""] * 9)[:9]
        t = tools.get((wid, tid))
        if t is None:
            continue
        t["runs"].append(
            {
                "round": _int(rnd),
                "exit_code": _int(rc),
                "seconds": _float(secs),
                "max_rss_kb": _int(rss),
                "rows_found": _int(found),
                "log": log,
                "output_bytes": _int(outb),
            }
        )

    for w in workloads:
        mb = w["input_bytes"] / 1e6
        for t in w["tools"]:
            ok = [r for r in t["runs"] if r["exit_code"] == 0 and r["seconds"] is not None]
            bad = [r for r in t["runs"] if r["exit_code"] != 0]
            t["ok_runs"] = len(ok)
            if t["unavailable"]:
                t["status"] = "n/a"
            elif bad:
                t["status"] = "failed"
                t["failure"] = f"exit {bad[0]['exit_code']}; log: {bad[0]['log']}"
            elif not ok:
                t["status"] = "not run"
            else:
                t["status"] = "ok"
            if ok:
                secs = statistics.median(r["seconds"] for r in ok)
                t["seconds"] = secs
                rss = [r["max_rss_kb"] for r in ok if r["max_rss_kb"] is not None]
                t["peak_rss_mb"] = max(rss) / 1024 if rss else None
                t["rows_per_s"] = w["expected_rows"] / secs if secs > 0 else None
                t["mb_per_s"] = mb / secs if secs > 0 else None
                wrong = [r["rows_found"] for r in ok if r["rows_found"] != w["expected_rows"]]
                t["row_count_ok"] = not wrong
                if wrong:
                    t["row_count_found"] = wrong[0]
                sizes = [r["output_bytes"] for r in ok if r["output_bytes"] is not None]
                t["output_bytes"] = sizes[-1] if sizes else None
            else:
                t["seconds"] = t["peak_rss_mb"] = t["rows_per_s"] = t["mb_per_s"] = None
                t["row_count_ok"] = None
                t["output_bytes"] = None
        ref = next((t for t in w["tools"] if t["id"] == REF_TOOL), None)
        ref_secs = ref.get("seconds") if ref else None
        w["reference_seconds"] = ref_secs
        for t in w["tools"]:
            s = t.get("seconds")
            t["ratio_vs_sluice"] = (s / ref_secs) if (s and ref_secs) else None
        size_ref = next((t for t in w["tools"] if t["id"] == SIZE_REF_TOOL), None)
        ref_bytes = size_ref.get("output_bytes") if size_ref else None
        w["reference_output_bytes"] = ref_bytes
        for t in w["tools"]:
            b = t.get("output_bytes")
            t["size_vs_pyarrow"] = (b / ref_bytes) if (b and ref_bytes) else None

    memcheck = []
    for rec in _read_tsv(os.path.join(results_dir, "memcheck.tsv")):
        label, expected, nbytes, rc, secs, rss, found, log = (rec + [""] * 8)[:8]
        memcheck.append(
            {
                "label": label,
                "expected_rows": _int(expected),
                "input_bytes": _int(nbytes),
                "exit_code": _int(rc),
                "seconds": _float(secs),
                "peak_rss_mb": (_int(rss) / 1024) if _int(rss) is not None else None,
                "rows_found": _int(found),
                "log": log,
            }
        )
    return {"workloads": workloads, "memcheck": memcheck}


def _fmt(v, spec: str, na: str = "n/a") -> str:
    return na if v is None else format(v, spec)


def render(data: dict) -> str:
    out = []
    any_sizes = False
    for w in data["workloads"]:
        sizes = w.get("output_kind") == "parquet"
        any_sizes = any_sizes or sizes
        headers = ["tool", "seconds", "rows/s", "MB/s", "peak RSS MB", "ratio"]
        if sizes:
            headers += ["out MB", "out/pyarrow"]
        headers.append("check")
        out.append("")
        out.append(
            f"== {w['title']}: {w['expected_rows']:,} rows, "
            f"{os.path.basename(w['input'])} {w['input_bytes'] / 1e6:.1f} MB =="
        )
        rows = []
        for t in w["tools"]:
            if t["status"] == "n/a":
                check = f"n/a: {t['unavailable']}"
            elif t["status"] == "failed":
                check = f"FAILED ({t['failure']})"
            elif t["status"] == "not run":
                check = "not run"
            elif t["row_count_ok"] is False:
                check = f"WARN rows={t.get('row_count_found')} (expected {w['expected_rows']})"
            else:
                check = "ok"
            cells = [
                t["label"],
                _fmt(t.get("seconds"), ".2f"),
                _fmt(t.get("rows_per_s"), ",.0f"),
                _fmt(t.get("mb_per_s"), ".1f"),
                _fmt(t.get("peak_rss_mb"), ".0f"),
                _fmt(t.get("ratio_vs_sluice"), ".2f"),
            ]
            if sizes:
                b = t.get("output_bytes")
                cells += [
                    _fmt(b / 1e6 if b is not None else None, ".2f"),
                    _fmt(t.get("size_vs_pyarrow"), ".2f"),
                ]
            rows.append(cells + [check])
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        right = set(range(1, len(headers) - 1))

        def line(cells):
            return "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(cells)
            ).rstrip()

        out.append(line(headers))
        out.append(line(["-" * x for x in widths]))
        out.extend(line(r) for r in rows)
        if w["reference_seconds"] is None:
            out.append("(no sluice time in this workload, so no ratios)")
    mc = data.get("memcheck") or []
    if mc:
        out.append("")
        parts = []
        for m in mc:
            if m["exit_code"] == 0:
                warn = "" if m["rows_found"] == m["expected_rows"] else f" WARN rows={m['rows_found']}"
                parts.append(
                    f"{m['expected_rows']:,} rows: {_fmt(m['peak_rss_mb'], '.0f')} MB peak RSS "
                    f"in {_fmt(m['seconds'], '.1f')} s{warn}"
                )
            else:
                parts.append(f"{m['expected_rows']:,} rows: FAILED (exit {m['exit_code']}; log: {m['log']})")
        line_ = "memory check (sluice, CSV -> SQLite): " + " | ".join(parts)
        if len(mc) >= 2 and all(m["exit_code"] == 0 and m["peak_rss_mb"] for m in mc[:2]):
            line_ += f" | RSS growth x{mc[1]['peak_rss_mb'] / mc[0]['peak_rss_mb']:.2f}"
            line_ += f" for x{(mc[1]['expected_rows'] or 0) / (mc[0]['expected_rows'] or 1):.0f} rows"
        out.append(line_)
    out.append("")
    out.append("seconds = median wall time; peak RSS = max over runs; MB/s = input file MB (10^6 B) / seconds;")
    out.append("ratio = tool seconds / sluice seconds (>1: sluice is faster).")
    if any_sizes:
        out.append("out MB = total size of the Parquet output (file or directory) in 10^6 B;")
        out.append("out/pyarrow = out MB / pyarrow write_table's out MB (goal for sluice: <= 1.10).")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("results_dir")
    ap.add_argument("--json", dest="json_out")
    ap.add_argument("--rows", type=int)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--sluice")
    ap.add_argument("--mode")
    args = ap.parse_args(argv)

    data = aggregate(args.results_dir)
    print(render(data))
    if args.json_out:
        doc = {
            "generated_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "mode": args.mode,
            "rows": args.rows,
            "runs_per_tool": args.runs,
            "sluice_binary": args.sluice,
            "host": {
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
            },
            "notes": {
                "seconds": "median wall time over successful runs (GNU time %e)",
                "peak_rss_mb": "max over runs of GNU time %M (KiB) / 1024",
                "mb_per_s": "input file size in 10^6 bytes / seconds",
                "ratio_vs_sluice": "tool seconds / sluice (append) seconds; >1 means sluice is faster",
                "output_bytes": "Parquet workloads: total bytes of the output file/directory (last successful run)",
                "size_vs_pyarrow": "Parquet workloads: output_bytes / the pyarrow tool's output_bytes",
                "codec": "Parquet workloads: the compression codec every tool wrote with (run.sh --codec)",
            },
            **data,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.json_out)), exist_ok=True)
        with open(args.json_out, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        print(f"JSON results written to {args.json_out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
