#!/usr/bin/env python3
"""Peer: pyarrow.json.read_json (explicit schema) -> pyarrow.parquet.write_table(zstd).

usage: pyarrow_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

Types match the Sluice schema: int64, string, decimal128(12, 2), timestamp[us, UTC].
"""
import sys

import pyarrow as pa
import pyarrow.json as pajson
import pyarrow.parquet as pq

SCHEMA = pa.schema(
    [
        ("order_id", pa.int64()),
        ("customer_id", pa.int64()),
        ("email", pa.string()),
        ("country", pa.string()),
        ("amount", pa.decimal128(12, 2)),
        ("quantity", pa.int64()),
        ("status", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("note", pa.string()),
    ]
)


def main(src: str, dst: str) -> None:
    parse = pajson.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="error")
    table = pajson.read_json(src, parse_options=parse)
    pq.write_table(table, dst, compression="zstd")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
