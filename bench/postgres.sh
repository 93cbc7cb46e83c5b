#!/usr/bin/env bash
# PostgreSQL workloads, side by side on the same generated orders data:
#   csv-postgres      CSV -> PostgreSQL: Sluice append and merge, psql \copy (the fastest client-side
#                     path PostgreSQL has), pyarrow + ADBC, dlt (Parquet + ADBC, its fastest path;
#                     and its CSV + COPY default)
#   postgres-parquet  PostgreSQL table -> one Parquet file/directory: Sluice, connectorx + pyarrow,
#                     dlt's sql_table with the connectorx and the pyarrow backends
#
#   bench/postgres.sh [--rows N] [--runs K] [--quick] [--workloads csv-postgres,postgres-parquet]
#                     [--tools 'REGEX']
#
# The server: $SLUICE_TEST_POSTGRES_URL, or one started with scripts/peers (and stopped after).
# Sluice: $SLUICE, default .build/release/sluice. Python peers come from bench/.venv (bench/setup.sh);
# a missing one is n/a. Prints median seconds, rows/s, MB/s, peak RSS, a row check per output, and
# each tool's speed relative to the reference of the workload (psql \copy; Sluice for Parquet).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
# shellcheck source=lib/project.sh
source "$BENCH_DIR/lib/project.sh"
ROWS=2000000
RUNS=3
WORKLOADS="csv-postgres,postgres-parquet"
TOOLS='.*'
while [ $# -gt 0 ]; do
    case "$1" in
        --rows) ROWS="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --quick) ROWS=20000; RUNS=1; shift ;;
        --workloads) WORKLOADS="$2"; shift 2 ;;
        --tools) TOOLS="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="${SLUICE:-$REPO/.build/release/sluice}"
[ -x "$SLUICE" ] || { echo "no sluice binary at $SLUICE (swift build -c release)" >&2; exit 1; }
PY="$BENCH_DIR/.venv/bin/python"
# Parquet outputs are counted with pyarrow: the benchmark venv's, or the test suite's.
COUNT_PY="$PY"
[ -x "$COUNT_PY" ] || COUNT_PY="$REPO/.venv-test/bin/python"
export BENCH_PARQUET_CODEC="${BENCH_PARQUET_CODEC:-snappy}"

# shellcheck source=lib/postgres_peer.sh
source "$BENCH_DIR/lib/postgres_peer.sh"
use_postgres_peer "$REPO"
WORK="$BENCH_DIR/out/postgres"
cleanup() { stop_postgres_peer "$REPO"; }
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
# The source table of postgres-parquet, loaded once.
SOURCE_TABLE=bench.orders_source
if [[ ",$WORKLOADS," == *,postgres-parquet,* ]] && [ "$(q "SELECT count(*) FROM $SOURCE_TABLE" 2>/dev/null || echo 0)" != "$ROWS" ]; then
    q "DROP TABLE IF EXISTS $SOURCE_TABLE" >/dev/null
    psql "$URL" -X -q -v ON_ERROR_STOP=1 -c "CREATE TABLE $SOURCE_TABLE ($COLUMNS)" \
        -c "\\copy $SOURCE_TABLE FROM '$DATA' WITH (FORMAT csv, HEADER true)" -c "VACUUM ANALYZE $SOURCE_TABLE"
fi

for mode in append merge; do
    write_sluice_project "$WORK/$mode.yaml" "$DATA" csv "$WORK/state-$mode" \
        "{ type: postgres, url: \"$URL\", table: bench.orders_sluice_$mode, mode: $mode }"
done
cat >"$WORK/parquet.yaml" <<EOF
version: 1
state: "$WORK/state-parquet/state.db"
pipelines:
  orders:
    source: { type: postgres, url: "$URL", table: $SOURCE_TABLE }
    sink: { type: files, path: "$WORK/out-sluice", format: parquet, compression: $BENCH_PARQUET_CODEC }
EOF

# tool id | workload | command | output (table, or a Parquet path)
TOOL_LIST=(
    "sluice-append|csv-postgres|$SLUICE run -c $WORK/append.yaml|bench.orders_sluice_append"
    "sluice-merge|csv-postgres|$SLUICE run -c $WORK/merge.yaml|bench.orders_sluice_merge"
    "psql-copy|csv-postgres|psql $URL -X -q -v ON_ERROR_STOP=1 -c \"\\copy bench.orders_psql FROM '$DATA' WITH (FORMAT csv, HEADER true)\"|bench.orders_psql"
    "pyarrow-adbc|csv-postgres|$PY $BENCH_DIR/peers/pyarrow_adbc_csv_postgres.py $DATA $URL bench.orders_adbc|bench.orders_adbc"
    "dlt-parquet-adbc|csv-postgres|$PY $BENCH_DIR/peers/dlt_csv_postgres.py $DATA $URL bench.orders_dlt --format parquet|bench.orders_dlt"
    "dlt-csv-copy|csv-postgres|$PY $BENCH_DIR/peers/dlt_csv_postgres.py $DATA $URL bench.orders_dlt --format csv|bench.orders_dlt"
    "sluice|postgres-parquet|$SLUICE run -c $WORK/parquet.yaml|$WORK/out-sluice"
    "connectorx-pyarrow|postgres-parquet|$PY $BENCH_DIR/peers/connectorx_postgres_parquet.py $URL $SOURCE_TABLE $WORK/out-cx.parquet|$WORK/out-cx.parquet"
    "dlt-connectorx|postgres-parquet|$PY $BENCH_DIR/peers/dlt_postgres_parquet.py $URL $SOURCE_TABLE $WORK/out-dlt-cx --backend connectorx|$WORK/out-dlt-cx"
    "dlt-pyarrow|postgres-parquet|$PY $BENCH_DIR/peers/dlt_postgres_parquet.py $URL $SOURCE_TABLE $WORK/out-dlt-pa --backend pyarrow|$WORK/out-dlt-pa"
)

prepare() { # TOOL OUTPUT: every run is a first load into an empty (pre-created where the tool needs it) table
    rm -rf "$WORK"/state-*
    case "$1" in
        sluice-append|sluice-merge)
            q "DROP TABLE IF EXISTS $2; DELETE FROM bench._sluice_state WHERE true" >/dev/null 2>&1 || true ;;
        psql-copy|pyarrow-adbc) q "DROP TABLE IF EXISTS $2; CREATE TABLE $2 ($COLUMNS)" >/dev/null ;;
        dlt-parquet-adbc|dlt-csv-copy) q "DROP TABLE IF EXISTS $2; DROP TABLE IF EXISTS bench._dlt_loads, bench._dlt_pipeline_state, bench._dlt_version" >/dev/null ;;
        *) rm -rf "$2" ;;
    esac
}
count() { # OUTPUT: rows and distinct order ids
    if [[ "$1" == /* ]]; then
        "$COUNT_PY" "$BENCH_DIR/lib/count_rows.py" "$1" 2>/dev/null | awk '{print $1 "/" $1}'
    else
        q "SELECT count(*) || '/' || count(DISTINCT order_id) FROM $1"
    fi
}
needs_venv() { [[ "$1" != sluice* && "$1" != psql-copy ]]; }

declare -A SECONDS_OF RSS_OF CHECK_OF
for entry in "${TOOL_LIST[@]}"; do
    IFS='|' read -r tool workload command output <<<"$entry"
    [[ ",$WORKLOADS," == *,$workload,* ]] || continue
    [[ "$tool" =~ ^($TOOLS)$ ]] || continue
    if needs_venv "$tool" && [ ! -x "$PY" ]; then CHECK_OF[$tool]="n/a (bench/setup.sh)"; continue; fi
    times=()
    rss=0
    for run in $(seq 1 "$RUNS"); do
        prepare "$tool" "$output"
        /usr/bin/time -f "%e %M" -o "$WORK/time" bash -c "$command" >"$WORK/$tool.log" 2>&1 \
            || { echo "[bench] $tool failed: $(tail -3 "$WORK/$tool.log")" >&2; CHECK_OF[$tool]="FAILED ($WORK/$tool.log)"; break; }
        read -r secs kb <"$WORK/time"
        times+=("$secs")
        [ "$kb" -gt "$rss" ] && rss=$kb
        echo "[bench] $tool run $run/$RUNS: ${secs} s, $((kb / 1024)) MB RSS" >&2
    done
    if [ ${#times[@]} -gt 0 ]; then
        SECONDS_OF[$tool]=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
        RSS_OF[$tool]=$((rss / 1024))
        got=$(count "$output" || true)
        [ "$got" = "$ROWS/$ROWS" ] && CHECK_OF[$tool]=ok || CHECK_OF[$tool]="BAD ($got)"
    fi
done

table() { # WORKLOAD TITLE REFERENCE_TOOL RATIO_LABEL
    local workload="$1" reference="${SECONDS_OF[$3]:-}"
    [[ ",$WORKLOADS," == *,$workload,* ]] || return 0
    echo
    echo "== $2 =="
    printf '%-20s %8s %10s %7s %12s %10s  %s\n' tool seconds rows/s MB/s "peak RSS MB" "$4" check
    for entry in "${TOOL_LIST[@]}"; do
        IFS='|' read -r tool w _ _ <<<"$entry"
        [ "$w" = "$workload" ] || continue
        [[ "$tool" =~ ^($TOOLS)$ ]] || continue
        local s="${SECONDS_OF[$tool]:-}"
        if [ -z "$s" ]; then printf '%-20s %8s %10s %7s %12s %10s  %s\n' "$tool" n/a "" "" "" "" "${CHECK_OF[$tool]:-}"; continue; fi
        local ratio
        ratio=$([ -n "$reference" ] && python3 -c "print(f'{$reference / $s:.2f}x')" || echo n/a)
        [ "$workload" = postgres-parquet ] && ratio=$([ -n "$reference" ] && python3 -c "print(f'{$s / $reference:.2f}x')" || echo n/a)
        printf '%-20s %8.2f %10s %7.1f %12s %10s  %s\n' "$tool" "$s" "$(python3 -c "print(f'{$ROWS / $s:,.0f}')")" \
            "$(python3 -c "print($MB / $s)")" "${RSS_OF[$tool]}" "$ratio" "${CHECK_OF[$tool]}"
    done
}
table csv-postgres "CSV -> PostgreSQL: $ROWS rows, orders.csv $(printf '%.1f' "$MB") MB" psql-copy "vs \\copy"
echo "vs \\copy = psql \\copy seconds / tool seconds (>1: faster than \\copy). Goals: append >= 0.95x, merge >= 0.6x; append >= 1.5x dlt-parquet-adbc."
table postgres-parquet "PostgreSQL -> Parquet ($BENCH_PARQUET_CODEC): $ROWS rows (MB/s of the CSV size)" sluice "sluice is"
echo "sluice is = tool seconds / Sluice seconds (>1: Sluice is faster). Goal: >= 1.0x dlt's fastest backend."

# A Sluice row that failed or wrote the wrong rows fails the script (the smoke run in scripts/test).
for tool in sluice-append sluice-merge sluice; do
    check="${CHECK_OF[$tool]:-ok}"
    [ "$check" = ok ] || { echo "[bench] $tool: $check" >&2; exit 1; }
done
