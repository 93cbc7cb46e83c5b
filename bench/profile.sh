#!/usr/bin/env bash
# `sluice profile` on the orders CSV against DuckDB's SUMMARIZE and pandas'
# describe(include='all') + nunique(), in one run, median of RUNS, with peak RSS.
# Goals: >= 1.0x DuckDB, >= 5x pandas, peak RSS <= 256 MB.
#
#   bench/profile.sh [--rows N] [--runs K] [--quick]
#
# Sluice: $SLUICE (default .build/release/sluice); peers from bench/.venv (bench/setup.sh).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
ROWS=2000000
RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --quick) ROWS=20000; RUNS=1; shift ;;
        -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="$(realpath "${SLUICE:-$REPO/.build/release/sluice}")"
[ -x "$SLUICE" ] || { echo "build first: swift build -c release (no $SLUICE)" >&2; exit 1; }
PY="$BENCH_DIR/.venv/bin/python"
# shellcheck source=lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
WORK="$BENCH_DIR/out/profile"
DATA="$BENCH_DIR/out/data-$ROWS"
mkdir -p "$WORK" "$DATA"
[ -f "$DATA/orders.csv" ] || python3 "$BENCH_DIR/generate_orders.py" --rows "$ROWS" --out "$DATA" --formats csv >&2
CSV="$DATA/orders.csv"
TOOLS=(
    "sluice|$SLUICE profile $CSV --json"
    "duckdb-summarize|$PY -c \"import duckdb; print(duckdb.sql(\\\"SUMMARIZE SELECT * FROM read_csv('$CSV')\\\").fetchall()[:1])\""
    "pandas|$PY -c \"import pandas as pd; d = pd.read_csv('$CSV'); print(d.describe(include='all').shape, d.nunique().sum())\""
)
declare -A SECS RSS OK
for entry in "${TOOLS[@]}"; do
    IFS='|' read -r tool command <<<"$entry"
    if [[ "$tool" != sluice ]] && [ ! -x "$PY" ]; then OK[$tool]="n/a (bench/setup.sh)"; continue; fi
    measure "$tool" "$RUNS" "$WORK" "" "$command" || { OK[$tool]=FAILED; continue; }
    SECS[$tool]=$MEASURED_SECS
    RSS[$tool]=$MEASURED_RSS_MB
    OK[$tool]=ok
done
rows=$(python3 -c "import json; print(json.load(open('$WORK/sluice.out'))['rows'])")
[ "$rows" = "$ROWS" ] || OK[sluice]="BAD ($rows rows)"
echo
echo "== profile of the orders CSV, $ROWS rows (median of $RUNS) =="
printf '%-17s %8s %11s %12s %10s  %s\n' tool seconds rows/s "peak RSS MB" "sluice is" check
for entry in "${TOOLS[@]}"; do
    IFS='|' read -r tool _ <<<"$entry"
    s="${SECS[$tool]:-}"
    if [ -z "$s" ]; then printf '%-17s %8s %11s %12s %10s  %s\n' "$tool" n/a "" "" "" "${OK[$tool]:-}"; continue; fi
    ratio=$(python3 -c "print(f'{$s / ${SECS[sluice]}:.2f}x')")
    printf '%-17s %8.2f %11s %12s %10s  %s\n' "$tool" "$s" "$(python3 -c "print(f'{$ROWS / $s:,.0f}')")" "${RSS[$tool]}" "$ratio" "${OK[$tool]}"
done
echo "sluice is = tool seconds / Sluice seconds. Goals: >= 1.0x duckdb-summarize, >= 5x pandas, sluice peak RSS <= 256 MB."
[ "${OK[sluice]}" = ok ]
