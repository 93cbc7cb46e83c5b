#!/usr/bin/env python3
"""Peer: pandas.read_csv (explicit dtypes) -> DataFrame.to_parquet(engine="pyarrow", compression=codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] pandas_csv_parquet.py INPUT.csv OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression=None).

pandas has no decimal dtype in its default (NumPy) backend, so `amount` is
float64 (Parquet DOUBLE); created_at is datetime64[us, UTC]; strings are
pandas' string dtype. No index column is written.
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
    "note": "string",
}


def main(src: str, dst: str) -> None:
    codec = parquet_codec(none=None)
    df = pd.read_csv(src, dtype=DTYPES, parse_dates=["created_at"])
    df.to_parquet(dst, engine="pyarrow", compression=codec, index=False)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
