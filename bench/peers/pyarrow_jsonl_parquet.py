#!/usr/bin/env python3
"""Peer: pyarrow.json.read_json (explicit schema) -> pyarrow.parquet.write_table(compression=codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] pyarrow_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression="none").

Types match the Sluice schema: int64, string, decimal128(12, 2), timestamp[us, UTC].
"""
import sys

import pyarrow as pa
import pyarrow.json as pajson
from pyarrow_csv_parquet import TYPES
import pyarrow.parquet as pq
from parquet_codec import parquet_codec

# The same column types as the CSV peer.
SCHEMA = pa.schema(list(TYPES.items()))


def main(src: str, dst: str) -> None:
    codec = parquet_codec()
    parse = pajson.ParseOptions(explicit_schema=SCHEMA, unexpected_field_behavior="error")
    table = pajson.read_json(src, parse_options=parse)
    pq.write_table(table, dst, compression=codec)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
