#!/usr/bin/env python3
"""Print the row count of table `orders` (or argv[2]) in a SQLite or DuckDB file.

usage: count_rows.py OUTPUT.(db|duckdb) [TABLE]

Prints the count on stdout; exits 1 with a message on stderr when the file or
the table is missing. DuckDB files (by extension .duckdb) need the duckdb module.
"""
import os
import sys


def count(path: str, table: str) -> int:
    if not os.path.exists(path):
        raise SystemExit(f"output not found: {path}")
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
