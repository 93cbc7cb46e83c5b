#!/usr/bin/env python3
"""Print the row count of an output: table `orders` (or argv[2]) in a SQLite or
DuckDB file, or all rows of a Parquet file / a directory of Parquet files.

usage: count_rows.py OUTPUT.(db|duckdb|parquet)|OUTPUT_DIR [TABLE]

Prints the count on stdout; exits 1 with a message on stderr when the output or
the table is missing. DuckDB files (by extension .duckdb) need the duckdb
module; Parquet outputs (a `.parquet` file, or a directory: every `*.parquet`
below it, hidden and `_`-prefixed files such as unfinished `.part.tmp` ignored)
need pyarrow and are counted with pyarrow.dataset.dataset(path).count_rows().
"""
import os
import sys


def count_parquet(path: str) -> int:
    import pyarrow.dataset as ds

    if os.path.isdir(path):
        files = []
        for root, dirs, names in os.walk(path):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            files += [os.path.join(root, n) for n in names if n.endswith(".parquet") and not n.startswith((".", "_"))]
        if not files:
            raise SystemExit(f"no .parquet files in {path}")
        return ds.dataset(sorted(files), format="parquet").count_rows()
    return ds.dataset(path, format="parquet").count_rows()


def count(path: str, table: str) -> int:
    if not os.path.exists(path):
        raise SystemExit(f"output not found: {path}")
    if os.path.isdir(path) or path.endswith(".parquet"):
        return count_parquet(path)
    if path.endswith(".duckdb"):
        import duckdb

        con = duckdb.connect(path, read_only=True)
        try:
            return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        finally:
            con.close()
    import sqlite3

    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    finally:
        con.close()


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    try:
        print(count(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else "orders"))
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001
        print(f"count failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
