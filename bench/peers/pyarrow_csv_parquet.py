#!/usr/bin/env python3
"""Peer: pyarrow.csv.read_csv (explicit column types) -> pyarrow.parquet.write_table(compression=codec).

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] pyarrow_csv_parquet.py INPUT.csv OUTPUT.parquet

The codec is BENCH_PARQUET_CODEC (default snappy; none is compression="none").

Types match the Sluice schema: int64, string, decimal128(12, 2), timestamp[us, UTC].
An empty unquoted field is null (as in Sluice), a quoted "" stays an empty string.
"""
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from parquet_codec import parquet_codec

TYPES = {
    "order_id": pa.int64(),
    "customer_id": pa.int64(),
    "email": pa.string(),
    "country": pa.string(),
    "amount": pa.decimal128(12, 2),
    "quantity": pa.int64(),
    "status": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"),
    "note": pa.string(),
}


def main(src: str, dst: str) -> None:
    codec = parquet_codec()
    convert = pacsv.ConvertOptions(
        column_types=TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    table = pacsv.read_csv(src, convert_options=convert)
    pq.write_table(table, dst, compression=codec)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
