#!/usr/bin/env bash
# REST API -> SQLite, side by side against the project's test API (sluice-test-api, no added
# latency): Sluice's http source, dlt's rest_api source and a plain Python `requests` loop read
# RECORDS records in pages of PER_PAGE and load them into a fresh SQLite table.
#
#   bench/http.sh [--records N] [--per-page N] [--runs K] [--parents N] [--quick]
#
# Then fan-out: PARENTS teams, each team's players fetched with `for_each` (2 pages, 20 ms of
# simulated latency per request, concurrency 8); the time of that pipeline is compared with the
# ideal requests x latency / concurrency.
#
# Sluice: $SLUICE (default .build/release/sluice); the API: .build/release/sluice-test-api, or
# the debug one. Python peers from bench/.venv (bench/setup.sh); missing ones are n/a.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
RECORDS=100000
PER_PAGE=100
RUNS=3
PARENTS=200
while [ $# -gt 0 ]; do
    case "$1" in
        --records) RECORDS="$2"; shift 2 ;;
        --per-page) PER_PAGE="$2"; shift 2 ;;
        --runs) RUNS="$2"; shift 2 ;;
        --parents) PARENTS="$2"; shift 2 ;;
        --quick) RECORDS=2000; RUNS=1; PARENTS=24; shift ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="$(realpath "${SLUICE:-$REPO/.build/release/sluice}")"
API="$(dirname "$SLUICE")/sluice-test-api"
[ -x "$SLUICE" ] && [ -x "$API" ] || { echo "build first: swift build -c release (no $SLUICE or $API)" >&2; exit 1; }
PY="$BENCH_DIR/.venv/bin/python"
# shellcheck source=lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
WORK="$BENCH_DIR/out/http"
rm -rf "$WORK" && mkdir -p "$WORK"
"$API" --records "$RECORDS" >"$WORK/api.out" 2>&1 &
api_pid=$!
trap 'kill $api_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q "^listening on" "$WORK/api.out" && break; sleep 0.05; done
BASE="http://$(sed -n 's/^listening on //p' "$WORK/api.out")"
cat >"$WORK/sluice.yaml" <<YAML
version: 1
state: "$WORK/state/state.db"
pipelines:
  items:
    source: { type: http, url: "$BASE/items?per_page=$PER_PAGE", records_path: data,
              pagination: { type: page_number, total_pages_path: meta.total_pages } }
    schema: { columns: { id: { type: int64, primary_key: true } } }
    sink: { type: sqlite, path: "$WORK/sluice.db", table: items }
YAML
# tool | command | output
TOOLS=(
    "sluice|$SLUICE run -c $WORK/sluice.yaml|$WORK/sluice.db"
    "requests-loop|$PY $BENCH_DIR/peers/requests_rest.py $BASE $PER_PAGE $WORK/requests.db|$WORK/requests.db"
    "dlt-rest_api|$PY $BENCH_DIR/peers/dlt_rest.py $BASE $PER_PAGE $WORK/dlt.db|$WORK/dlt.db"
)
declare -A SECS RSS CHECK
for entry in "${TOOLS[@]}"; do
    IFS='|' read -r tool command output <<<"$entry"
    if [[ "$tool" != sluice ]] && [ ! -x "$PY" ]; then CHECK[$tool]="n/a (bench/setup.sh)"; continue; fi
    measure "$tool" "$RUNS" "$WORK" "rm -rf '$output' '$WORK/state'" "$command" || { CHECK[$tool]=FAILED; continue; }
    SECS[$tool]=$MEASURED_SECS
    RSS[$tool]=$MEASURED_RSS_MB
    got=$(python3 -c "import sqlite3; print(sqlite3.connect('$output').execute('SELECT count(*) FROM items').fetchone()[0])" 2>/dev/null || echo 0)
    [ "$got" = "$RECORDS" ] && CHECK[$tool]=ok || CHECK[$tool]="BAD ($got rows)"
done
echo
echo "== REST API -> SQLite: $RECORDS records, pages of $PER_PAGE, no added latency =="
printf '%-14s %8s %11s %12s %10s  %s\n' tool seconds records/s "peak RSS MB" "sluice is" check
for entry in "${TOOLS[@]}"; do
    IFS='|' read -r tool _ _ <<<"$entry"
    s="${SECS[$tool]:-}"
    if [ -z "$s" ]; then printf '%-14s %8s %11s %12s %10s  %s\n' "$tool" n/a "" "" "" "${CHECK[$tool]:-}"; continue; fi
    ratio=$([ -n "${SECS[sluice]:-}" ] && python3 -c "print(f'{$s / ${SECS[sluice]}:.2f}x')" || echo n/a)
    printf '%-14s %8.2f %11s %12s %10s  %s\n' "$tool" "$s" "$(python3 -c "print(f'{$RECORDS / $s:,.0f}')")" "${RSS[$tool]}" "$ratio" "${CHECK[$tool]}"
done
echo "sluice is = tool seconds / Sluice seconds (>1: Sluice is faster). Goal: >= 10x dlt-rest_api."

# Fan-out with latency: the pipeline's own duration (from --json) against the ideal.
LATENCY_MS=20
CONCURRENCY=8
cat >"$WORK/fanout.yaml" <<YAML
version: 1
state: "$WORK/fanout-state/state.db"
pipelines:
  teams:
    source: { type: http, url: "$BASE/teams?count=$PARENTS", records_path: "" }
    sink: { type: sqlite, path: "$WORK/fanout.db", table: teams }
  players:
    depends_on: [teams]
    source: { type: http, url: "$BASE/teams/{team_id}/players?slow_ms=$LATENCY_MS", records_path: data,
              pagination: { type: page_number, total_pages_path: meta.total_pages },
              for_each: { pipeline: teams, field: team_id, concurrency: $CONCURRENCY } }
    sink: { type: sqlite, path: "$WORK/fanout.db", table: players }
YAML
best=""
for run in $(seq 1 "$RUNS"); do
    rm -rf "$WORK/fanout.db" "$WORK/fanout-state"
    curl -s -X POST "$BASE/_reset" >/dev/null
    /usr/bin/time -f "%e %M" -o "$WORK/time" "$SLUICE" run -c "$WORK/fanout.yaml" --json >"$WORK/fanout.json" 2>"$WORK/fanout.log" \
        || { echo "[bench] fan-out failed: $(tail -3 "$WORK/fanout.log")" >&2; exit 1; }
    secs=$(python3 -c "import json; print(next(p['duration_s'] for p in json.load(open('$WORK/fanout.json'))['pipelines'] if p['name'] == 'players'))")
    echo "[bench] fan-out run $run/$RUNS: players ${secs} s" >&2
    if [ -z "$best" ] || python3 -c "import sys; sys.exit(0 if $secs < $best else 1)"; then best=$secs; fi
done
read -r _ kb <"$WORK/time"
requests=$(curl -s "$BASE/_stats" | python3 -c "import json, sys; d = json.load(sys.stdin)['by_path']; print(sum(v for k, v in d.items() if k.endswith('/players')))")
rows=$(python3 -c "import sqlite3; print(sqlite3.connect('$WORK/fanout.db').execute('SELECT count(*) FROM players').fetchone()[0])")
expected=$((PARENTS * 10))
# What the server and this machine allow: bare threads sending the same requests.
floor=$(for run in $(seq 1 "$RUNS"); do python3 "$BENCH_DIR/peers/fanout_floor.py" "$BASE" "$PARENTS" "$LATENCY_MS" "$CONCURRENCY"; done | sort -n | head -1)
python3 - "$best" "$requests" "$rows" "$expected" "$((kb / 1024))" "$floor" <<PY
import sys
secs, requests, rows, expected, rss, floor = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], float(sys.argv[6])
ideal = requests * $LATENCY_MS / 1000 / $CONCURRENCY
print()
print(f"== fan-out: $PARENTS parents, {requests} requests of $LATENCY_MS ms, concurrency $CONCURRENCY (best of $RUNS) ==")
print(f"players pipeline {secs:.2f} s, ideal {ideal:.2f} s: {secs / ideal:.2f}x ideal (goal <= 1.2x); "
      f"{rows} rows ({'ok' if rows == expected else f'BAD, expected {expected}'}), peak RSS {rss} MB")
print(f"bare request threads (no parsing, no sink): {floor:.2f} s = {floor / ideal:.2f}x ideal")
sys.exit(0 if rows == expected else 1)
PY
[ "${CHECK[sluice]:-}" = ok ]
