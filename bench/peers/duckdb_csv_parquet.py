#!/usr/bin/env python3
"""Peer: DuckDB COPY (SELECT * FROM read_csv(..., columns={...})) TO OUTPUT (FORMAT parquet, COMPRESSION codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] duckdb_csv_parquet.py INPUT.csv OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is COMPRESSION uncompressed).

In-memory DuckDB, default settings (all cores). Types match the Sluice schema:
BIGINT, VARCHAR, DECIMAL(12,2), TIMESTAMPTZ (Parquet timestamp micros, UTC).
"""
import sys

import duckdb
from parquet_codec import parquet_codec

COLUMNS = (
    "{'order_id': 'BIGINT', 'customer_id': 'BIGINT', 'email': 'VARCHAR', 'country': 'VARCHAR', "
    "'amount': 'DECIMAL(12,2)', 'quantity': 'BIGINT', 'status': 'VARCHAR', "
    "'created_at': 'TIMESTAMPTZ', 'note': 'VARCHAR'}"
)


def lit(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def copy_to_parquet(reader_sql: str, dst: str) -> None:
    """COPY the rows of `reader_sql` (a table function call) to a Parquet file
    compressed with BENCH_PARQUET_CODEC."""
    codec = parquet_codec(none="uncompressed")
    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT * FROM {reader_sql}) TO {lit(dst)} (FORMAT parquet, COMPRESSION {codec})")
    finally:
        con.close()


def main(src: str, dst: str) -> None:
    copy_to_parquet(f"read_csv({lit(src)}, header = true, columns = {COLUMNS})", dst)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
