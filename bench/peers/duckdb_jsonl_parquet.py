#!/usr/bin/env python3
"""Peer: DuckDB COPY (SELECT * FROM read_json(..., format='newline_delimited', columns={...}))
TO OUTPUT (FORMAT parquet, COMPRESSION codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] duckdb_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

Same as duckdb_csv_parquet.py (including the codec), reading newline-delimited JSON.
"""
import sys

from duckdb_csv_parquet import COLUMNS, copy_to_parquet, lit

if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    copy_to_parquet(f"read_json({lit(sys.argv[1])}, format = 'newline_delimited', columns = {COLUMNS})", sys.argv[2])
