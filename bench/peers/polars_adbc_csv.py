#!/usr/bin/env python3
"""Peer: polars.read_csv -> DataFrame.write_database(engine="adbc", SQLite).

usage: polars_adbc_csv.py INPUT.csv OUTPUT.db
"""
import sys

import polars as pl


def main(src: str, dst: str) -> None:
    df = pl.read_csv(src, try_parse_dates=True)
    df.write_database("orders", f"sqlite:///{dst}", engine="adbc", if_table_exists="append")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
