#!/usr/bin/env python3
"""The Parquet compression codec for the *_parquet.py peers.

run.sh exports BENCH_PARQUET_CODEC (its --codec option): snappy, zstd, gzip
or none; unset or empty means snappy. Each peer passes the codec to its
writer, spelling "none" the way that library does (DuckDB and polars:
"uncompressed", pyarrow: "none", pandas: None). Standard library only.
"""
import os
import sys

CODECS = ("snappy", "zstd", "gzip", "none")
DEFAULT = "snappy"


def parquet_codec(none: str | None = "none") -> str | None:
    """BENCH_PARQUET_CODEC (default snappy), with "none" replaced by `none`; exits on an unknown codec."""
    codec = os.environ.get("BENCH_PARQUET_CODEC") or DEFAULT
    if codec not in CODECS:
        sys.exit(f"BENCH_PARQUET_CODEC must be one of {', '.join(CODECS)} (got {codec!r})")
    return none if codec == "none" else codec
