#!/usr/bin/env python3
"""Watches a SQLite replica while changes are made upstream, then reports replication lag.

usage: cdc_lag.py REPLICA.db TABLE SECONDS COMMITS.tsv

Polls `SELECT max(id) FROM TABLE` every 5 ms for SECONDS seconds and records when each id first
became visible. COMMITS.tsv holds `id<TAB>epoch_seconds` for every row the load generator
inserted (its clock_timestamp() at insert, a few ms before its commit). The lag of a row is the
time it appeared in the replica minus that time. Prints one JSON object: rows, p50, p99, max
(seconds) and the rows never seen. Standard library only.
"""
import bisect
import json
import sqlite3
import sys
import time


def main(db: str, table: str, seconds: float, commits: str) -> None:
    seen_ids, seen_at = [], []
    deadline = time.time() + seconds
    last = 0
    while time.time() < deadline:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05) as conn:
                row = conn.execute(f'SELECT max(id) FROM "{table}"').fetchone()
            top = row[0] or 0
        except sqlite3.Error:
            top = last
        if top > last:
            seen_ids.append(top)
            seen_at.append(time.time())
            last = top
        time.sleep(0.005)
    lags, missing = [], 0
    with open(commits) as f:
        for line in f:
            ident, stamp = line.split("\t")
            i = bisect.bisect_left(seen_ids, int(ident))
            if i == len(seen_ids):
                missing += 1
                continue
            lags.append(max(0.0, seen_at[i] - float(stamp)))
    lags.sort()
    pick = lambda q: round(lags[min(len(lags) - 1, int(q * len(lags)))], 3) if lags else None
    print(json.dumps({"rows": len(lags), "p50": pick(0.5), "p99": pick(0.99), "max": pick(1.0), "missing": missing}))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4])
