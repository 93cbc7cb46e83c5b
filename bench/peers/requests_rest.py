#!/usr/bin/env python3
"""Peer: a plain `requests` loop over the pages (one kept-alive session) -> sqlite3 executemany.

usage: requests_rest.py BASE_URL PER_PAGE OUTPUT.db
"""
import json
import sqlite3
import sys

import requests


def main(base: str, per_page: str, out: str) -> None:
    db = sqlite3.connect(out)
    db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, team_id INTEGER, score REAL, updated_at TEXT, tags TEXT, meta TEXT)")
    session = requests.Session()
    page = 1
    while True:
        body = session.get(f"{base}/items", params={"per_page": per_page, "page": page}, timeout=30).json()
        rows = [(r["id"], r["name"], r["team_id"], r["score"], r["updated_at"], json.dumps(r["tags"]), json.dumps(r["meta"])) for r in body["data"]]
        db.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        if not rows or page >= body["meta"]["total_pages"]:
            break
        page += 1
    db.commit()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
