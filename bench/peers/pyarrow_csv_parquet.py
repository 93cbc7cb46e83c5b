#!/usr/bin/env python3
"""Peer: pyarrow.csv.read_csv (explicit column types) -> pyarrow.parquet.write_table(zstd).

usage: pyarrow_csv_parquet.py INPUT.csv OUTPUT.parquet

Types match the Sluice schema: int64, string, decimal128(12, 2), timestamp[us, UTC].
An empty unquoted field is null (as in Sluice), a quoted "" stays an empty string.
"""
import sys

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

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
    convert = pacsv.ConvertOptions(
        column_types=TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False
    )
    table = pacsv.read_csv(src, convert_options=convert)
    pq.write_table(table, dst, compression="zstd")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
