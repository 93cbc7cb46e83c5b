#!/usr/bin/env python3
"""Peer: pyarrow.csv.read_csv (explicit column types) -> ADBC PostgreSQL driver adbc_ingest
(binary COPY) into an existing table.

usage: pyarrow_adbc_csv_postgres.py INPUT.csv URL SCHEMA.TABLE
"""
import sys

import adbc_driver_postgresql.dbapi as pg_dbapi
import pyarrow as pa
import pyarrow.csv as pacsv

TYPES = {
    "order_id": pa.int64(), "customer_id": pa.int64(), "email": pa.string(), "country": pa.string(),
    "amount": pa.decimal128(12, 2), "quantity": pa.int64(), "status": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"), "note": pa.string(),
}


def main(src: str, url: str, qualified: str) -> None:
    schema, table_name = qualified.split(".")
    table = pacsv.read_csv(src, convert_options=pacsv.ConvertOptions(column_types=TYPES))
    with pg_dbapi.connect(url) as conn:
        with conn.cursor() as cur:
            cur.adbc_ingest(table_name, table, mode="append", db_schema_name=schema)
        conn.commit()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
