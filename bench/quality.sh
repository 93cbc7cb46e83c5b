#!/usr/bin/env bash
# Quality rules inline with ingestion: the orders CSV into SQLite with and without the nine rule
# types of the spec (not_null, unique, range, pattern, accepted_values, freshness, completeness,
# row_count, expression), median of RUNS each, in one run. Goal: with rules >= 0.8x the speed
# without.
#
#   bench/quality.sh [--rows N] [--runs K] [--quick]
#
# Sluice: $SLUICE (default .build/release/sluice). The data: bench/generate_orders.py.
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
        -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
SLUICE="$(realpath "${SLUICE:-$REPO/.build/release/sluice}")"
[ -x "$SLUICE" ] || { echo "build first: swift build -c release (no $SLUICE)" >&2; exit 1; }
# shellcheck source=lib/project.sh
source "$BENCH_DIR/lib/project.sh"
# shellcheck source=lib/measure.sh
source "$BENCH_DIR/lib/measure.sh"
WORK="$BENCH_DIR/out/quality"
DATA="$BENCH_DIR/out/data-$ROWS"
mkdir -p "$WORK" "$DATA"
[ -f "$DATA/orders.csv" ] || python3 "$BENCH_DIR/generate_orders.py" --rows "$ROWS" --out "$DATA" --formats csv >&2
RULES='    quality:
      - not_null: [order_id, email]
      - unique: [order_id]
      - range: { field: amount, min: 0, max: 100000 }
      - pattern: { field: email, regex: "^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", severity: warn }
      - accepted_values: { field: status, values: [new, paid, shipped, cancelled, refunded] }
      - freshness: { field: created_at, max_age: 36500d, severity: warn }
      - completeness: { field: email, min_ratio: 0.95 }
      - row_count: { min: 1, max_change: 50% }
      - expression: { name: positive_total, check: "amount * quantity >= 0" }'
declare -A SECS RSS
for variant in plain rules; do
    write_sluice_project "$WORK/$variant.yaml" "$DATA/orders.csv" csv "$WORK/state-$variant" \
        "{ type: sqlite, path: \"$WORK/$variant.db\", table: orders }"
    if [ "$variant" = rules ]; then
        python3 - "$WORK/$variant.yaml" "$RULES" <<'PY'
import sys
path, rules = sys.argv[1], sys.argv[2]
text = open(path).read().replace("    sink:", rules + "\n    sink:", 1)
open(path, "w").write(text)
PY
    fi
    measure "$variant" "$RUNS" "$WORK" "rm -rf '$WORK/$variant.db' '$WORK/state-$variant'" \
        "'$SLUICE' run -c '$WORK/$variant.yaml' --json" || exit 1
    SECS[$variant]=$MEASURED_SECS
    RSS[$variant]=$MEASURED_RSS_MB
done
score=$(python3 -c "import json; print(json.load(open('$WORK/rules.out'))['pipelines'][0]['quality_score'])")
written=$(python3 -c "import json; print(json.load(open('$WORK/rules.out'))['pipelines'][0]['records_written'])")
echo
echo "== CSV -> SQLite, $ROWS rows, with and without the nine rule types (median of $RUNS) =="
printf '%-8s %8s %11s %12s\n' variant seconds rows/s "peak RSS MB"
for v in plain rules; do
    printf '%-8s %8.2f %11s %12s\n' "$v" "${SECS[$v]}" "$(python3 -c "print(f'{$ROWS / ${SECS[$v]}:,.0f}')")" "${RSS[$v]}"
done
python3 -c "print(f'with rules: {${SECS[plain]} / ${SECS[rules]}:.2f}x the speed without (goal >= 0.8x); quality score $score, $written rows written')"
