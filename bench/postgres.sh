#!/usr/bin/env bash
# CSV -> PostgreSQL, side by side on the same generated orders CSV: Sluice append, Sluice merge
# and psql \copy into an identically typed table (the fastest client-side path PostgreSQL has).
#
#   bench/postgres.sh [--rows N] [--runs K] [--quick]
#
# The server: $SLUICE_TEST_POSTGRES_URL, or one started with scripts/peers (and stopped after).
# Sluice: $SLUICE, default .build/release/sluice. Prints median seconds, rows/s, peak RSS, a row
# check per table, and each tool's speed relative to psql \copy.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
# shellcheck source=lib/project.sh
source "$BENCH_DIR/lib/project.sh"
ROWS=2000000
RUNS=3
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --quick) ROWS=20000; RUNS=1; shift ;;
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="${SLUICE:-$REPO/.build/release/sluice}"
[ -x "$SLUICE" ] || { echo "no sluice binary at $SLUICE (swift build -c release)" >&2; exit 1; }

started_server=0
if [ -z "${SLUICE_TEST_POSTGRES_URL:-}" ]; then
    eval "$("$REPO/scripts/peers" start postgres)"
    started_server=1
fi
URL="$SLUICE_TEST_POSTGRES_URL"
WORK="$BENCH_DIR/out/postgres"
cleanup() { [ "$started_server" = 1 ] && "$REPO/scripts/peers" stop postgres; true; }
trap cleanup EXIT
mkdir -p "$WORK"

DATA="$BENCH_DIR/data/rows_$ROWS/orders.csv"
if [ ! -f "$DATA" ]; then
    mkdir -p "$(dirname "$DATA")"
    python3 "$BENCH_DIR/generate_orders.py" --rows "$ROWS" --out "$(dirname "$DATA")" >/dev/null
fi
MB=$(python3 -c "import os; print(os.path.getsize('$DATA') / 1e6)")

q() { psql "$URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE SCHEMA IF NOT EXISTS bench" >/dev/null

COLUMNS='order_id bigint PRIMARY KEY, customer_id bigint, email text, country text, amount numeric(12,2),
         quantity bigint, status text, created_at timestamptz, note text'

for mode in append merge; do
    write_sluice_project "$WORK/$mode.yaml" "$DATA" csv "$WORK/state-$mode" \
        "{ type: postgres, url: \"$URL\", table: bench.orders_sluice_$mode, mode: $mode }"
done

prepare() { # TOOL: drop the target (and Sluice's positions) so every run is a first load
    case "$1" in
        sluice-append) q "DROP TABLE IF EXISTS bench.orders_sluice_append; DELETE FROM bench._sluice_state WHERE true" >/dev/null 2>&1 || true ;;
        sluice-merge) q "DROP TABLE IF EXISTS bench.orders_sluice_merge; DELETE FROM bench._sluice_state WHERE true" >/dev/null 2>&1 || true ;;
        psql-copy) q "DROP TABLE IF EXISTS bench.orders_psql" >/dev/null ;;
    esac
}
command_for() {
    case "$1" in
        sluice-append) echo "$SLUICE run -c $WORK/append.yaml" ;;
        sluice-merge) echo "$SLUICE run -c $WORK/merge.yaml" ;;
        psql-copy) echo "psql $URL -X -q -v ON_ERROR_STOP=1 -c \"CREATE TABLE bench.orders_psql ($COLUMNS)\" -c \"\\copy bench.orders_psql FROM '$DATA' WITH (FORMAT csv, HEADER true)\"" ;;
    esac
}
table_for() { case "$1" in sluice-append) echo orders_sluice_append ;; sluice-merge) echo orders_sluice_merge ;; psql-copy) echo orders_psql ;; esac; }

declare -A SECONDS_OF RSS_OF CHECK_OF
for tool in sluice-append sluice-merge psql-copy; do
    times=()
    rss=0
    for run in $(seq 1 "$RUNS"); do
        prepare "$tool"
        rm -rf "$WORK"/state-*
        /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "$(command_for "$tool")" >"$WORK/$tool.log" 2>&1 \
            || { echo "[bench] $tool failed: $(tail -3 "$WORK/$tool.log")" >&2; break; }
        read -r secs kb <"$WORK/time"
        times+=("$secs")
        [ "$kb" -gt "$rss" ] && rss=$kb
        echo "[bench] $tool run $run/$RUNS: ${secs} s, $((kb / 1024)) MB RSS" >&2
    done
    if [ ${#times[@]} -gt 0 ]; then
        SECONDS_OF[$tool]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        RSS_OF[$tool]=$((rss / 1024))
        got=$(q "SELECT count(*) || '/' || count(DISTINCT order_id) FROM bench.$(table_for "$tool")")
        [ "$got" = "$ROWS/$ROWS" ] && CHECK_OF[$tool]=ok || CHECK_OF[$tool]="BAD ($got)"
    fi
done

echo
echo "== CSV -> PostgreSQL: $ROWS rows, orders.csv $(printf '%.1f' "$MB") MB =="
printf '%-14s %8s %10s %7s %12s %10s  %s\n' tool seconds rows/s MB/s "peak RSS MB" "vs \\copy" check
copy="${SECONDS_OF[psql-copy]:-}"
for tool in sluice-append sluice-merge psql-copy; do
    s="${SECONDS_OF[$tool]:-}"
    if [ -z "$s" ]; then printf '%-14s %8s\n' "$tool" n/a; continue; fi
    ratio=$([ -n "$copy" ] && python3 -c "print(f'{$copy / $s:.2f}x')" || echo n/a)
    printf '%-14s %8.2f %10s %7.1f %12s %10s  %s\n' "$tool" "$s" "$(python3 -c "print(f'{$ROWS / $s:,.0f}')")" \
        "$(python3 -c "print($MB / $s)")" "${RSS_OF[$tool]}" "$ratio" "${CHECK_OF[$tool]}"
done
echo "vs \\copy = psql \\copy seconds / tool seconds (>1: faster than \\copy). Goals: append >= 0.95x, merge >= 0.6x."
