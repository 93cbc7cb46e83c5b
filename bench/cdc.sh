#!/usr/bin/env bash
# Change data capture from PostgreSQL into a SQLite replica (mode: replicate), three measurements:
#   throughput   N row updates (transactions of 100) made while Sluice is stopped, then one
#                `sluice run` that drains them: changes/s, the rate Sluice sustains
#   lag          a load generator inserts RATE rows/s (20 transactions/s) for SECONDS while
#                `sluice run --follow` replicates; each row's lag = when it appears in SQLite
#                minus its insert time: p50, p99, max
#   big          one transaction updating BIG rows (wide rows: ~1 KB of JSON each, before and
#                after), drained by one run: seconds and peak RSS (memory must not grow with it)
#
#   bench/cdc.sh [--changes N] [--rate R] [--seconds S] [--big ROWS] [--quick]
#
# The server: $SLUICE_TEST_POSTGRES_URL, or one started with scripts/peers (and stopped after).
# Sluice: $SLUICE, default .build/release/sluice. Goals: >= 20,000 changes/s; p99 lag < 1 s at
# 5,000 changes/s; peak RSS flat for a 1 GB transaction.
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$BENCH_DIR")"
CHANGES=200000
RATE=5000
SECONDS_LAG=20
BIG=1000000
while [ $# -gt 0 ]; do
    case "$1" in
        --changes) CHANGES="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --seconds) SECONDS_LAG="$2"; shift 2 ;;
        --big) BIG="$2"; shift 2 ;;
        --quick) CHANGES=5000; RATE=500; SECONDS_LAG=3; BIG=5000; shift ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="${SLUICE:-$REPO/.build/release/sluice}"
[ -x "$SLUICE" ] || { echo "no sluice binary at $SLUICE (swift build -c release)" >&2; exit 1; }
SLUICE="$(realpath "$SLUICE")"
# shellcheck source=lib/postgres_peer.sh
source "$BENCH_DIR/lib/postgres_peer.sh"
use_postgres_peer "$REPO"
WORK="$BENCH_DIR/out/cdc"
follower=""
cleanup() {
    [ -n "$follower" ] && kill "$follower" 2>/dev/null
    psql "$URL" -X -q -c "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'bench_cdc'" >/dev/null 2>&1 || true
    stop_postgres_peer "$REPO"
}
trap cleanup EXIT
rm -rf "$WORK" && mkdir -p "$WORK"
q() { psql "$URL" -X -q -A -t -v ON_ERROR_STOP=1 -c "$1"; }
timed() { /usr/bin/time -f "%e %M" -o "$WORK/time" "$@" >"$WORK/run.log" 2>&1 || { tail -5 "$WORK/run.log" >&2; exit 1; }; read -r secs kb <"$WORK/time"; }

# A fresh table, slot and replica, with the initial snapshot taken.
fresh() { # ROWS
    q "DROP TABLE IF EXISTS bench_cdc; SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'bench_cdc'" >/dev/null
    q "CREATE TABLE bench_cdc (id bigint PRIMARY KEY, customer_id bigint, email text, amount numeric(12,2), status text,
         note text, updated_at timestamptz DEFAULT clock_timestamp())" >/dev/null
    q "INSERT INTO bench_cdc (id, customer_id, email, amount, status) SELECT i, i % 1000, 'user' || i || '@example.com', i % 500 + 0.25, 'new'
         FROM generate_series(1, $1) i" >/dev/null
    rm -rf "$WORK/project" && mkdir -p "$WORK/project"
    cat >"$WORK/project/sluice.yaml" <<EOF
version: 1
pipelines:
  cdc:
    source: { type: postgres, url: "$URL", mode: cdc, tables: [public.bench_cdc], slot: bench_cdc, poll_interval: 50ms }
    sink: { type: sqlite, path: replica.db, table: orders, mode: replicate }
EOF
    timed "$SLUICE" run -c "$WORK/project/sluice.yaml"
}
replica_matches() { # the replica's rows and amounts equal the source's
    local src dst
    src=$(q "SELECT count(*) || '/' || coalesce(sum(amount * 100)::bigint, 0) FROM bench_cdc")
    dst=$(python3 -c "import sqlite3; c = sqlite3.connect('$WORK/project/replica.db'); n, s = c.execute('SELECT count(*), coalesce(sum(CAST(round(amount * 100) AS INTEGER)), 0) FROM orders').fetchone(); print(f'{n}/{s}')")
    [ "$src" = "$dst" ] && echo ok || echo "BAD (source $src, replica $dst)"
}

echo "[bench] throughput: $CHANGES updates" >&2
rows=$(( CHANGES < 100000 ? CHANGES : 100000 ))
fresh "$rows"
q "DO \$\$ BEGIN FOR k IN 0..$(( CHANGES / 100 - 1 )) LOOP
     UPDATE bench_cdc SET status = 'paid', amount = amount + 1 WHERE id > (k * 100) % $rows AND id <= (k * 100) % $rows + 100; COMMIT;
   END LOOP; END \$\$" >/dev/null
timed "$SLUICE" run -c "$WORK/project/sluice.yaml"
tp_secs=$secs; tp_rss=$((kb / 1024)); tp_check=$(replica_matches)

echo "[bench] lag: $RATE rows/s for $SECONDS_LAG s" >&2
fresh 1000
(cd "$WORK/project" && exec "$SLUICE" run --follow >"$WORK/follow.log" 2>&1) &
follower=$!
sleep 1
per_tx=$(( RATE / 20 ))
python3 "$BENCH_DIR/lib/cdc_lag.py" "$WORK/project/replica.db" orders "$(( SECONDS_LAG + 5 ))" "$WORK/commits.tsv" >"$WORK/lag.json" &
watcher=$!
q "DO \$\$ DECLARE started timestamptz := clock_timestamp(); BEGIN
     FOR k IN 0..$(( SECONDS_LAG * 20 - 1 )) LOOP
       INSERT INTO bench_cdc (id, customer_id, email, amount, status)
         SELECT 1000000 + k * $per_tx + i, i, 'lag' || i || '@example.com', 1.5, 'new' FROM generate_series(1, $per_tx) i;
       COMMIT;
       PERFORM pg_sleep(greatest(0, extract(epoch FROM started + (k + 1) * interval '50 milliseconds' - clock_timestamp())));
     END LOOP; END \$\$" >/dev/null
q "COPY (SELECT id, extract(epoch FROM updated_at) FROM bench_cdc WHERE id > 1000000 ORDER BY id) TO STDOUT" >"$WORK/commits.tsv"
wait "$watcher"
kill -INT "$follower"; wait "$follower" || true; follower=""
lag_check=$(replica_matches)

echo "[bench] big transaction: $BIG rows updated at once" >&2
fresh "$BIG"
q "UPDATE bench_cdc SET note = repeat('n', 300), status = 'shipped'" >/dev/null
txn_mb=$(q "SELECT round((pg_current_wal_lsn() - confirmed_flush_lsn) / 1048576) FROM pg_replication_slots WHERE slot_name = 'bench_cdc'")
timed "$SLUICE" run -c "$WORK/project/sluice.yaml"
big_secs=$secs; big_rss=$((kb / 1024)); big_check=$(replica_matches)

echo
echo "== CDC: PostgreSQL -> SQLite replica (mode: replicate) =="
python3 - "$CHANGES" "$tp_secs" "$tp_rss" "$tp_check" "$WORK/lag.json" "$RATE" "$lag_check" "$BIG" "$txn_mb" "$big_secs" "$big_rss" "$big_check" <<'PY'
import json, sys
changes, tp_secs, tp_rss, tp_check, lag_file, rate, lag_check, big, txn_mb, big_secs, big_rss, big_check = sys.argv[1:]
lag = json.load(open(lag_file))
print(f"throughput   {int(changes):>9,} updates drained in {float(tp_secs):.2f} s = {int(changes) / float(tp_secs):>9,.0f} changes/s, peak RSS {tp_rss} MB  {tp_check}   (goal >= 20,000/s)")
print(f"lag          {int(rate):>9,} rows/s: p50 {lag['p50']} s, p99 {lag['p99']} s, max {lag['max']} s over {lag['rows']:,} rows, {lag['missing']} unseen  {lag_check}   (goal p99 < 1 s)")
print(f"big          {int(big):>9,} rows in one transaction ({txn_mb} MB of WAL): {float(big_secs):.2f} s, peak RSS {big_rss} MB  {big_check}")
ok = tp_check == "ok" and lag_check == "ok" and big_check == "ok" and lag["missing"] == 0
sys.exit(0 if ok else 1)
PY
