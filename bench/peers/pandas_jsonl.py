#!/usr/bin/env python3
"""Peer: pandas.read_json(lines=True) -> DataFrame.to_sql(sqlite3 connection, chunksize=50_000).

usage: pandas_jsonl.py INPUT.jsonl OUTPUT.db
"""
import sqlite3
import sys

import pandas as pd


def main(src: str, dst: str) -> None:
    df = pd.read_json(src, lines=True)
    conn = sqlite3.connect(dst)
    try:
        df.to_sql("orders", conn, if_exists="append", index=False, chunksize=50_000, method=None)
        conn.commit()
    finally:
        conn.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
