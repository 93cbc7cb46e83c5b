#!/usr/bin/env bash
# Peer: sqlite3 CLI ".import --csv" (untyped: every column is TEXT).
# usage: sqlite3_csv.sh INPUT.csv OUTPUT.db
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 INPUT.csv OUTPUT.db" >&2; exit 2; }
exec sqlite3 "$2" ".import --csv $1 orders"
