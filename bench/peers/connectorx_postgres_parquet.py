#!/usr/bin/env python3
"""Peer: connectorx.read_sql (binary COPY TO, straight into Arrow) -> pyarrow.parquet.write_table.

usage: connectorx_postgres_parquet.py URL SCHEMA.TABLE OUTPUT.parquet
"""
import sys

import connectorx as cx
import pyarrow.parquet as pq
from parquet_codec import parquet_codec


def main(url: str, table: str, out: str) -> None:
    arrow = cx.read_sql(url, f"SELECT * FROM {table}", return_type="arrow")
    pq.write_table(arrow, out, compression=parquet_codec())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
