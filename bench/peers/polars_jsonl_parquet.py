#!/usr/bin/env python3
"""Peer: polars.scan_ndjson (explicit schema) -> LazyFrame.sink_parquet(compression=codec), streaming.

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] polars_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression="uncompressed").

Types match the Sluice schema: Int64, String, Decimal(12, 2), Datetime(us, UTC).
polars' NDJSON reader does not turn a JSON number into a Decimal (SchemaError
"found value of type Float64"), so `amount` is read as Float64 and cast to
Decimal(12, 2) in the same lazy plan (the cast rounds to the nearest cent, so
138.56 stays 138.56).
"""
import sys

import polars as pl
from parquet_codec import parquet_codec

SCHEMA = {
    "order_id": pl.Int64,
    "customer_id": pl.Int64,
    "email": pl.String,
    "country": pl.String,
    "amount": pl.Float64,
    "quantity": pl.Int64,
    "status": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
}


def main(src: str, dst: str) -> None:
    codec = parquet_codec(none="uncompressed")
    (
        pl.scan_ndjson(src, schema=SCHEMA)
        .with_columns(pl.col("amount").cast(pl.Decimal(12, 2)))
        .sink_parquet(dst, compression=codec)
    )


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
