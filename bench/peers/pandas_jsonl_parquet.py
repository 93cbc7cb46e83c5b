#!/usr/bin/env python3
"""Peer: pandas.read_json(lines=True, explicit dtypes) -> DataFrame.to_parquet(engine="pyarrow", compression=codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] pandas_jsonl_parquet.py INPUT.jsonl OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression=None).

pandas has no decimal dtype in its default (NumPy) backend, so `amount` is
float64 (Parquet DOUBLE); created_at is read as text and converted with
pandas.to_datetime(utc=True) to datetime64[us, UTC]; strings are pandas'
string dtype. No index column is written.
"""
import sys

import pandas as pd
from parquet_codec import parquet_codec

DTYPES = {
    "order_id": "int64",
    "customer_id": "int64",
    "email": "string",
    "country": "string",
    "amount": "float64",
    "quantity": "int64",
    "status": "string",
    "created_at": "string",
    "note": "string",
}


def main(src: str, dst: str) -> None:
    codec = parquet_codec(none=None)
    df = pd.read_json(src, lines=True, dtype=DTYPES)
    df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
    df.to_parquet(dst, engine="pyarrow", compression=codec, index=False)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
