#!/usr/bin/env python3
"""Peer: DuckDB COPY (SELECT * FROM read_json(..., format='newline_delimited', columns={...}))
TO OUTPUT (FORMAT parquet, COMPRESSION zstd).

usage: duckdb_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

In-memory DuckDB, default settings (all cores). Types match the Sluice schema:
BIGINT, VARCHAR, DECIMAL(12,2), TIMESTAMPTZ (Parquet timestamp micros, UTC).
"""
import sys

import duckdb

COLUMNS = (
    "{'order_id': 'BIGINT', 'customer_id': 'BIGINT', 'email': 'VARCHAR', 'country': 'VARCHAR', "
    "'amount': 'DECIMAL(12,2)', 'quantity': 'BIGINT', 'status': 'VARCHAR', "
    "'created_at': 'TIMESTAMPTZ', 'note': 'VARCHAR'}"
)


def lit(s: str) -> str:
    """SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def main(src: str, dst: str) -> None:
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_json({lit(src)}, format = 'newline_delimited', columns = {COLUMNS})) "
            f"TO {lit(dst)} (FORMAT parquet, COMPRESSION zstd)"
        )
    finally:
        con.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
