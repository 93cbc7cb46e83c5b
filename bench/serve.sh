#!/usr/bin/env bash
# Webhook intake -> SQLite, side by side: `sluice serve` with a webhook pipeline (202 once the
# records are fsynced to its spool; delivered to SQLite in the background) against a FastAPI +
# Pydantic app that validates each request and commits it to SQLite (WAL, synchronous=FULL)
# before its 202 (peers/fastapi_webhook.py, uvicorn). wrk posts ~1 KB orders for DURATION seconds:
# one JSON object per request, then NDJSON batches of 100 (both peers/webhook_orders.lua).
#
#   bench/serve.sh [--duration S] [--connections N] [--threads T] [--workers N] [--tools REGEX] [--keep] [--quick]
#
# Runs, in order (--tools matches their ids): sluice-single, fastapi-single, sluice-ndjson,
# fastapi-ndjson. Each starts its server fresh in bench/out/serve/<id>/, stops it after wrk
# (SIGTERM; Sluice drains its spool into SQLite before it exits) and checks the table: every
# 2xx-acknowledged record is in it, no order_id twice, and for Sluice exactly as many rows as its
# /metrics counted accepted. Exits non-zero when a check fails. --quick: 3 s, 8 connections.
# --workers: uvicorn worker processes for FastAPI (default 1). --keep: keep databases and spools.
#
# Sluice: $SLUICE (default .build/release/sluice). wrk and the sqlite3 CLI are required; FastAPI
# comes from bench/.venv (bench/setup.sh installs all three); a missing peer is n/a.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
DURATION=30
CONNECTIONS=64
THREADS=2
WORKERS=1
BATCH=100
TOOLS_RE=.
KEEP=0
QUICK=0
# SIGTERM waits this long for the spool to reach SQLite; the time it takes is the "stop s" column.
DRAIN_TIMEOUT=600
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --tools) TOOLS_RE="$2"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        --quick) DURATION=3; CONNECTIONS=8; QUICK=1; shift ;;
        -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
for v in "$DURATION" "$CONNECTIONS" "$THREADS" "$WORKERS"; do
    [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -ge 1 ] || { echo "--duration, --connections, --threads and --workers take positive integers (got '$v')" >&2; exit 2; }
done
[ "$THREADS" -le "$CONNECTIONS" ] || THREADS=$CONNECTIONS
log() { printf '[bench] %s\n' "$*" >&2; }

command -v wrk >/dev/null 2>&1 || { echo "wrk not found: run bench/setup.sh (it installs wrk with apt-get), or apt-get install wrk" >&2; exit 1; }
command -v sqlite3 >/dev/null 2>&1 || { echo "sqlite3 CLI not found: run bench/setup.sh, or apt-get install sqlite3" >&2; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "curl not found: apt-get install curl" >&2; exit 1; }

# id | tool | mode | records per request | path
RUNS=(
    "sluice-single|sluice|single|1|/v1/orders"
    "fastapi-single|fastapi|single|1|/v1/orders"
    "sluice-ndjson|sluice|ndjson x$BATCH|$BATCH|/v1/orders"
    "fastapi-ndjson|fastapi|ndjson x$BATCH|$BATCH|/v1/orders/batch"
)
SELECTED=()
for entry in "${RUNS[@]}"; do
    id="${entry%%|*}"
    if [[ "$id" =~ $TOOLS_RE ]]; then SELECTED+=("$entry"); fi
done
[ "${#SELECTED[@]}" -gt 0 ] || { echo "--tools '$TOOLS_RE' matches none of: sluice-single fastapi-single sluice-ndjson fastapi-ndjson" >&2; exit 2; }

if printf '%s\n' "${SELECTED[@]}" | grep -q '^sluice-'; then
    SLUICE="$(realpath -m "${SLUICE:-$REPO/.build/release/sluice}")"
    [ -x "$SLUICE" ] || { echo "build first: swift build -c release (no $SLUICE)" >&2; exit 1; }
fi
PY="$BENCH_DIR/.venv/bin/python"
FASTAPI_NA=""
if [ ! -x "$PY" ]; then FASTAPI_NA="n/a (bench/setup.sh)"
elif ! "$PY" -c "import fastapi, uvicorn, pydantic" >/dev/null 2>&1; then FASTAPI_NA="n/a (fastapi/uvicorn missing: bench/setup.sh)"; fi

WORK="$BENCH_DIR/out/serve"
rm -rf "$WORK" && mkdir -p "$WORK"
SERVER_PID=""
trap '[ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true' EXIT

write_project() {
    cat >"$1" <<'YAML'
version: 1
pipelines:
  orders_hook:
    source:
      type: webhook
      path: /v1/orders
      max_body: 1MiB
    schema:
      columns:
        order_id: { type: int64, nullable: false }
        email: { type: string }
        amount: { type: "decimal(12,2)" }
        status: { type: string }
        created_at: { type: timestamp }
    quality:
      - accepted_values: { field: status, values: [new, paid, shipped, cancelled] }
    sink: { type: sqlite, path: out.db, table: orders, mode: append }
YAML
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Peak resident set of the server and its child processes (uvicorn's workers), in KiB.
peak_kb() {
    local total=0 p kb
    for p in "$1" $(pgrep -P "$1" 2>/dev/null || true); do
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# start_server TOOL DIR: starts it in the background (SERVER_PID) and waits until it answers on
# /healthz (BASE). Returns 1 when it does not come up.
start_server() {
    local tool="$1" dir="$2" i port
    BASE=""
    case "$tool" in
        sluice)
            write_project "$dir/sluice.yaml"
            "$SLUICE" serve -c "$dir/sluice.yaml" --port 0 --no-access-log --log-level warning --drain-timeout "$DRAIN_TIMEOUT" \
                >"$dir/server.out" 2>"$dir/server.log" &
            SERVER_PID=$!
            for i in $(seq 1 300); do
                BASE=$(sed -n 's|^sluice serve: listening on \(http://[^ ]*\)$|\1|p' "$dir/server.out")
                [ -n "$BASE" ] && break
                kill -0 "$SERVER_PID" 2>/dev/null || break
                sleep 0.1
            done
            ;;
        fastapi)
            port=$(free_port)
            "$PY" "$BENCH_DIR/peers/fastapi_webhook.py" --port "$port" --workers "$WORKERS" --db "$dir/out.db" \
                >"$dir/server.out" 2>"$dir/server.log" &
            SERVER_PID=$!
            BASE="http://127.0.0.1:$port"
            ;;
    esac
    [ -n "$BASE" ] || return 1
    for i in $(seq 1 300); do
        curl -fsS -o /dev/null --max-time 2 "$BASE/healthz" 2>/dev/null && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_server TOOL: SIGTERM, then waits for the exit (the drain), reading the peak RSS meanwhile. Sets
# PEAK_KB, STOP_SECS and STOP_RC (137: killed after the drain timeout).
stop_server() {
    local start kb deadline=$((SECONDS + DRAIN_TIMEOUT + 30))
    PEAK_KB=$(peak_kb "$SERVER_PID")
    start=$(date +%s.%N)
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    while kill -0 "$SERVER_PID" 2>/dev/null; do
        kb=$(peak_kb "$SERVER_PID"); [ "$kb" -gt "$PEAK_KB" ] && PEAK_KB=$kb
        if [ "$SECONDS" -gt "$deadline" ]; then
            log "server did not exit $((DRAIN_TIMEOUT + 30)) s after SIGTERM; killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        sleep 0.1
    done
    STOP_RC=0
    wait "$SERVER_PID" || STOP_RC=$?
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully: 128 + 15.
    [ "$1" = fastapi ] && [ "$STOP_RC" -eq 143 ] && STOP_RC=0
    STOP_SECS=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.2f", b - a}')
    SERVER_PID=""
}

# Sluice's own count of accepted records (/metrics), empty when it is not there; read until it
# holds still, as requests that were in flight when wrk stopped may still be finishing.
accepted_metric() {
    local last="" now i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        now=$(curl -fsS --max-time 5 "$BASE/metrics" 2>/dev/null \
            | awk '/^sluice_webhook_records_total\{/ && /status="accepted"/ && /pipeline="orders_hook"/ {printf "%.0f\n", $NF; exit}' || true)
        [ -n "$now" ] && [ "$now" = "$last" ] && break
        last=$now
        sleep 0.2
    done
    echo "$now"
}

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
failed=0
for entry in "${SELECTED[@]}"; do
    IFS='|' read -r id tool mode per_request path <<<"$entry"
    if [ "$tool" = fastapi ] && [ -n "$FASTAPI_NA" ]; then
        printf '%s\t%s\t%s\tn/a\t\t\t\t\t\t\t\t%s\n' "$id" "$tool" "$mode" "$FASTAPI_NA" >>"$RESULTS"; continue
    fi
    dir="$WORK/$id"
    mkdir -p "$dir"
    log "$id: starting $tool"
    if ! start_server "$tool" "$dir"; then
        log "$id: the server did not come up: $(tail -3 "$dir/server.log" "$dir/server.out" 2>/dev/null | tr '\n' ' ')"
        [ -n "$SERVER_PID" ] && { kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }
        printf '%s\t%s\t%s\tFAILED\t\t\t\t\t\t\t\t%s\n' "$id" "$tool" "$mode" "FAILED (did not start; see $dir/server.log)" >>"$RESULTS"
        failed=1; continue
    fi
    log "$id: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s $BASE$path"
    wrk_rc=0
    wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 10s -s "$BENCH_DIR/peers/webhook_orders.lua" "$BASE$path" -- "$per_request" \
        >"$dir/wrk.out" 2>&1 || wrk_rc=$?
    accepted=""
    [ "$tool" = sluice ] && accepted=$(accepted_metric)
    log "$id: stopping $tool"
    stop_server "$tool"
    declare -A R=()
    line=$(sed -n 's/^RESULT //p' "$dir/wrk.out" | tail -1)
    for kv in $line; do R[${kv%%=*}]=${kv#*=}; done
    read -r rows dupes < <(sqlite3 -separator ' ' "$dir/out.db" "SELECT count(*), count(*) - count(DISTINCT order_id) FROM orders" 2>/dev/null || echo "0 0")
    rows=${rows:-0}; dupes=${dupes:-0}
    if [ "$wrk_rc" -ne 0 ] || [ -z "${R[ok]:-}" ]; then
        check="FAILED (wrk: $(tail -2 "$dir/wrk.out" | tr '\n' ' '))"
    else
        per=${R[records_per_request]}
        acked=$((R[ok] * per))
        # Requests whose answer wrk never read (in flight when it stopped, timed out, cut off) may
        # still have been stored: at most one per connection, plus the timeouts and socket errors.
        unanswered=$(((CONNECTIONS + R[timeouts] + R[socket_errors]) * per))
        extra=$((rows - acked))
        if [ "$STOP_RC" -ne 0 ]; then check="FAILED (exit $STOP_RC after SIGTERM; see $dir/server.log)"
        elif [ "$acked" -eq 0 ]; then check="BAD (no record acknowledged)"
        elif [ "$dupes" -ne 0 ]; then check="BAD ($dupes duplicate order_id)"
        elif [ "$rows" -lt "$acked" ]; then check="BAD (missing $((acked - rows)) acknowledged records)"
        elif [ "$extra" -gt "$unanswered" ]; then check="BAD ($extra more rows than acknowledged records)"
        elif [ "$tool" = sluice ] && [ -z "$accepted" ]; then check="BAD (no sluice_webhook_records_total in /metrics)"
        elif [ "$tool" = sluice ] && [ "$rows" -ne "$accepted" ]; then check="BAD ($rows rows, /metrics accepted $accepted)"
        else
            check=ok
            [ "$extra" -gt 0 ] && check="ok (+$extra from unanswered requests)"
        fi
        errs=$((R[timeouts] + R[socket_errors]))
        [ "$errs" -gt 0 ] && check="$check; ${R[timeouts]} timeouts, ${R[socket_errors]} socket errors"
    fi
    case "$check" in ok*) ;; *) failed=1 ;; esac
    log "$id: ${R[rps]:-?} requests/s, p99 ${R[p99_ms]:-?} ms, ${R[non2xx]:-?} non-2xx, $rows rows, stopped in $STOP_SECS s: $check"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$tool" "$mode" "${R[rps]:-}" \
        "$([ -n "${R[ok]:-}" ] && python3 -c "print(${R[ok]} * ${R[records_per_request]} / ${R[duration_s]})")" \
        "${R[p50_ms]:-}" "${R[p99_ms]:-}" "${R[non2xx]:-}" "$((PEAK_KB / 1024))" "$rows" "$STOP_SECS" "$check" >>"$RESULTS"
    unset R
    [ "$KEEP" -eq 1 ] || rm -rf "$dir/out.db" "$dir/out.db-wal" "$dir/out.db-shm" "$dir/.sluice"
done

python3 - "$RESULTS" "$DURATION" "$CONNECTIONS" "$THREADS" "$WORKERS" "$BATCH" "$QUICK" <<'PY' | tee "$WORK/table.txt"
import sys
path, duration, connections, threads, workers, batch, quick = sys.argv[1:]
rows = [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]
by_id = {r[0]: r for r in rows}
w = "1 worker" if workers == "1" else f"{workers} workers"
print()
print(f"== webhook -> SQLite: ~1 KB orders, {duration} s per run, {connections} connections, {threads} wrk threads ==")
head = ("tool", "mode", "requests/s", "records/s", "p50 ms", "p99 ms", "non-2xx", "peak RSS MB", "rows in sink", "stop s", "check")
fmt = "{:<19} {:<11} {:>10} {:>10} {:>8} {:>8} {:>7} {:>11} {:>12} {:>6}  {}"
print(fmt.format(*head))
for r in rows:
    id_, tool, mode, rps, recs, p50, p99, non2xx, rss, sink, stop, check = (r + [""] * 12)[:12]
    label = f"fastapi ({w})" if tool == "fastapi" else tool
    if rps in ("", "n/a", "FAILED"):
        print(fmt.format(label, mode, rps or "n/a", "", "", "", "", "", "", "", check))
        continue
    print(fmt.format(label, mode, f"{float(rps):,.0f}", f"{float(recs):,.0f}", f"{float(p50):.2f}", f"{float(p99):.2f}",
                     non2xx, rss, f"{int(sink):,}", stop, check))

def measured(id_):
    r = by_id.get(id_)
    try:
        return float(r[4]), float(r[6])
    except (TypeError, IndexError, ValueError):
        return None

def ratio(mode):
    s, f = measured(f"sluice-{mode}"), measured(f"fastapi-{mode}")
    return s[0] / f[0] if s and f and f[0] > 0 else None

def verdict(ok):
    return "" if ok is None else " -> met" if ok else " -> NOT met"

print("records/s: 2xx-acknowledged records per second of load; stop s: SIGTERM to exit (Sluice delivers its spool).")
s, r = measured("sluice-single"), ratio("single")
p99 = f"sluice p99 {s[1]:.2f} ms" if s else "sluice p99 n/a"
print(f"sluice/fastapi records/s, single records: {'n/a' if r is None else f'{r:.2f}x'} ({p99}). "
      f"Goal: >= 5x FastAPI with p99 < 50 ms{verdict(None if r is None else r >= 5 and s[1] < 50)}")
s, r = measured("sluice-ndjson"), ratio("ndjson")
got = f"sluice {s[0]:,.0f} records/s" if s else "sluice n/a"
print(f"sluice/fastapi records/s, NDJSON x{batch}:   {'n/a' if r is None else f'{r:.2f}x'} ({got}). "
      f"Goal: >= 200,000 records/s{verdict(None if s is None else s[0] >= 200_000)}")
if quick == "1":
    print("(--quick: a smoke test of the script; the figures mean nothing.)")
PY
exit "$failed"
