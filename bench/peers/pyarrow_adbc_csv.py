#!/usr/bin/env python3
"""Peer: pyarrow.csv.read_csv -> ADBC SQLite driver adbc_ingest (mode=create).

usage: pyarrow_adbc_csv.py INPUT.csv OUTPUT.db
"""
import sys

import adbc_driver_sqlite.dbapi as sqlite_dbapi
import pyarrow.csv as pacsv


def main(src: str, dst: str) -> None:
    table = pacsv.read_csv(src)
    with sqlite_dbapi.connect(dst) as conn:
        with conn.cursor() as cur:
            cur.adbc_ingest("orders", table, mode="create")
        conn.commit()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
