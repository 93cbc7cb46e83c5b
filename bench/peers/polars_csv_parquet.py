#!/usr/bin/env python3
"""Peer: polars.scan_csv (explicit schema) -> LazyFrame.sink_parquet(compression=codec), streaming.

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] polars_csv_parquet.py INPUT.csv OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression="uncompressed").

Types match the Sluice schema: Int64, String, Decimal(12, 2), Datetime(us, UTC).
"""
import sys

import polars as pl
from parquet_codec import parquet_codec

SCHEMA = {
    "order_id": pl.Int64,
    "customer_id": pl.Int64,
    "email": pl.String,
    "country": pl.String,
    "amount": pl.Decimal(12, 2),
    "quantity": pl.Int64,
    "status": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "note": pl.String,
}


def main(src: str, dst: str) -> None:
    codec = parquet_codec(none="uncompressed")
    pl.scan_csv(src, schema=SCHEMA).sink_parquet(dst, compression=codec)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
