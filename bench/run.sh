#!/usr/bin/env bash
# Sluice vs. peer tools on the same generated "orders" data.
#
#   bench/run.sh [--rows N] [--quick] [--runs R] [--memcheck] [--json OUT]
#                [--workloads csv,jsonl,csv-parquet,jsonl-parquet|all] [--tools REGEX] [--keep]
#                [--codec snappy|zstd|gzip|none]
#
# See bench/README.md. Run bench/setup.sh once first (creates bench/.venv with
# the Python peers); a peer whose packages are missing is reported as n/a.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/project.sh
source "$BENCH_DIR/lib/project.sh"
SLUICE="${SLUICE:-$(cd "$BENCH_DIR/.." && pwd)/.build/release/sluice}"
PY="$BENCH_DIR/.venv/bin/python"
SYS_PY="${PYTHON:-python3}"
TIME_BIN=/usr/bin/time

ROWS=""
RUNS=""
QUICK=0
MEMCHECK=0
JSON_OUT=""
KEEP=0
WORKLOADS="csv,jsonl"
TOOLS_FILTER=""
CODEC=snappy

usage() {
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    cat <<'EOF'
Options:
  --rows N          rows in the data set (default 2,000,000; 20,000 with --quick)
  --quick           smoke test: 20,000 rows, 1 run per tool
  --runs R          runs per tool, the median is reported (default 3; 1 with --quick)
  --memcheck        also run sluice on a 10x bigger CSV and report both peak RSS
                    (ignored with --quick)
  --json OUT        also write all results as JSON to OUT
  --workloads LIST  comma list of csv, jsonl (-> SQLite), csv-parquet, jsonl-parquet
                    (-> Parquet), or all (default: csv,jsonl)
  --tools REGEX     only run tools whose id matches REGEX (ids: sluice, sluice-merge,
                    sqlite3, pyarrow-adbc, polars-adbc, pandas, dlt-sqlite, dlt-duckdb;
                    Parquet workloads: sluice, polars, duckdb, pyarrow, pandas)
  --keep            keep the outputs (databases, Parquet files) of the last run under
                    bench/out/work/
  --codec C         Parquet compression for every tool in the Parquet workloads:
                    snappy, zstd, gzip or none (default: snappy); the peers get it
                    as BENCH_PARQUET_CODEC
Environment:
  SLUICE            sluice binary (default: bench/../.build/release/sluice)
EOF
}

die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf '[bench] %s\n' "$*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --rows) [ $# -ge 2 ] || die "--rows needs a value"; ROWS="$2"; shift 2 ;;
        --rows=*) ROWS="${1#*=}"; shift ;;
        --runs) [ $# -ge 2 ] || die "--runs needs a value"; RUNS="$2"; shift 2 ;;
        --runs=*) RUNS="${1#*=}"; shift ;;
        --quick) QUICK=1; shift ;;
        --memcheck) MEMCHECK=1; shift ;;
        --json) [ $# -ge 2 ] || die "--json needs a path"; JSON_OUT="$2"; shift 2 ;;
        --json=*) JSON_OUT="${1#*=}"; shift ;;
        --workloads) [ $# -ge 2 ] || die "--workloads needs a value"; WORKLOADS="$2"; shift 2 ;;
        --workloads=*) WORKLOADS="${1#*=}"; shift ;;
        --tools) [ $# -ge 2 ] || die "--tools needs a value"; TOOLS_FILTER="$2"; shift 2 ;;
        --tools=*) TOOLS_FILTER="${1#*=}"; shift ;;
        --keep) KEEP=1; shift ;;
        --codec) [ $# -ge 2 ] || die "--codec needs a value"; CODEC="$2"; shift 2 ;;
        --codec=*) CODEC="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done

if [ "$QUICK" -eq 1 ]; then
    ROWS="${ROWS:-20000}"
    RUNS="${RUNS:-1}"
else
    ROWS="${ROWS:-2000000}"
    RUNS="${RUNS:-3}"
fi
[[ "$ROWS" =~ ^[0-9]+$ ]] && [ "$ROWS" -ge 1 ] || die "--rows must be a positive integer (got '$ROWS')"
[[ "$RUNS" =~ ^[0-9]+$ ]] && [ "$RUNS" -ge 1 ] || die "--runs must be a positive integer (got '$RUNS')"
case "$CODEC" in snappy|zstd|gzip|none) ;; *) die "--codec must be snappy, zstd, gzip or none (got '$CODEC')" ;; esac
# The Parquet peers (peers/*_parquet.py) read the codec from here.
export BENCH_PARQUET_CODEC="$CODEC"
if [ -n "$JSON_OUT" ]; then
    case "$JSON_OUT" in /*) ;; *) JSON_OUT="$PWD/$JSON_OUT" ;; esac
fi
ALL_WORKLOADS="csv,jsonl,csv-parquet,jsonl-parquet"
[ "$WORKLOADS" = all ] && WORKLOADS="$ALL_WORKLOADS"
IFS=',' read -r -a WORKLOAD_LIST <<<"$WORKLOADS"
[ "${#WORKLOAD_LIST[@]}" -gt 0 ] || die "--workloads is empty (use $ALL_WORKLOADS or all)"
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in csv|jsonl|csv-parquet|jsonl-parquet) ;; *) die "unknown workload '$w' (use $ALL_WORKLOADS or all)" ;; esac
done

# ---- prerequisites ------------------------------------------------------------
command -v "$SYS_PY" >/dev/null 2>&1 || die "$SYS_PY not found (Python 3.11+ is needed for the generator)"
if [ ! -x "$TIME_BIN" ]; then
    log "$TIME_BIN missing; installing the 'time' package"
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time) >&2 \
            || die "could not install GNU time; run: apt-get install time"
    else
        die "GNU time ($TIME_BIN) is required; run bench/setup.sh or apt-get install time"
    fi
fi

SLUICE_MISSING=""
if [ -x "$SLUICE" ]; then
    SLUICE="$(cd "$(dirname "$SLUICE")" && pwd)/$(basename "$SLUICE")"
else
    SLUICE_MISSING="sluice binary not found"
    log "NOTE: sluice binary not found at $SLUICE (build it with 'swift build -c release'"
    log "      or point SLUICE at one); sluice rows will be n/a, the peers still run"
fi
if [ ! -x "$PY" ]; then
    log "NOTE: $BENCH_DIR/.venv is missing; Python peers will be n/a (run bench/setup.sh)"
fi
COUNT_PY="$SYS_PY"
[ -x "$PY" ] && COUNT_PY="$PY"

# ---- data -----------------------------------------------------------------------
GEN="$BENCH_DIR/generate_orders.py"
GEN_HASH="$(sha256sum "$GEN" | cut -c1-16)"

# ensure_data DIR ROWS SCALE FORMATS: (re)generates DIR unless it holds a complete
# data set made by this version of the generator.
ensure_data() {
    local dir="$1" rows="$2" scale="$3" formats="$4"
    local stamp="$GEN_HASH rows=$rows scale=$scale formats=$formats"
    if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$stamp" ]; then
        log "using cached data in $dir"
        return 0
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    log "generating $((rows * scale)) rows into $dir"
    "$SYS_PY" "$GEN" --rows "$rows" --scale "$scale" --formats "$formats" --out "$dir" >&2
    printf '%s' "$stamp" >"$dir/.complete"
}

DATA_DIR="$BENCH_DIR/data/rows_$ROWS"
ensure_data "$DATA_DIR" "$ROWS" 1 csv,jsonl

OUT_DIR="$BENCH_DIR/out"
RES_DIR="$OUT_DIR/results"
WORK_DIR="$OUT_DIR/work"
rm -rf "$RES_DIR" "$WORK_DIR"
mkdir -p "$RES_DIR" "$WORK_DIR"
: >"$RES_DIR/workloads.tsv"
: >"$RES_DIR/tools.tsv"
: >"$RES_DIR/results.tsv"
: >"$RES_DIR/memcheck.tsv"

# ---- tools ------------------------------------------------------------------------
# A workload is INPUTFORMAT[-parquet]: csv/jsonl load into SQLite, *-parquet write Parquet.
input_format() { echo "${1%%-*}"; }
is_parquet() { [[ "$1" == *-parquet ]]; }

tools_for() {
    case "$1" in
        csv) echo "sluice sluice-merge sqlite3 pyarrow-adbc polars-adbc pandas dlt-sqlite dlt-duckdb" ;;
        jsonl) echo "sluice pyarrow-adbc polars-adbc pandas" ;;
        csv-parquet) echo "sluice polars duckdb pyarrow dlt pandas" ;;
        jsonl-parquet) echo "sluice polars duckdb pyarrow pandas" ;;
    esac
}

tool_label() { # tool_label TOOL [WORKLOAD]
    if is_parquet "${2:-}"; then
        case "$1" in
            polars) echo "polars sink_parquet" ; return ;;
            duckdb) echo "duckdb COPY" ; return ;;
            pyarrow) echo "pyarrow write_table" ; return ;;
            pandas) echo "pandas to_parquet" ; return ;;
            dlt) echo "dlt filesystem" ; return ;;
        esac
    fi
    case "$1" in
        sluice) echo "sluice" ;;
        sluice-merge) echo "sluice (merge)" ;;
        sqlite3) echo "sqlite3 .import (untyped)" ;;
        pyarrow-adbc) echo "pyarrow + ADBC" ;;
        polars-adbc) echo "polars + ADBC" ;;
        pandas) echo "pandas to_sql" ;;
        dlt-sqlite) echo "dlt -> sqlite (sqlalchemy)" ;;
        dlt-duckdb) echo "dlt -> duckdb (not SQLite)" ;;
        *) echo "$1" ;;
    esac
}

declare -A PY_CHECK_CACHE=()
# check_py "mod1, mod2": sets REASON when the imports fail (cached per module list).
check_py() {
    local mods="$1"
    if [ ! -x "$PY" ]; then
        REASON="bench/.venv missing (run bench/setup.sh)"
        return 0
    fi
    if [ -z "${PY_CHECK_CACHE[$mods]+x}" ]; then
        if "$PY" -c "import $mods" >/dev/null 2>&1; then
            PY_CHECK_CACHE[$mods]=""
        else
            PY_CHECK_CACHE[$mods]="not installed: $mods (run bench/setup.sh)"
        fi
    fi
    REASON="${PY_CHECK_CACHE[$mods]}"
}

declare -A SLUICE_PARQUET_CACHE=()
# check_sluice_parquet WORKLOAD: sets REASON when this sluice build rejects a
# parquet sink (`sluice validate` on the benchmark's own project file; checked once).
check_sluice_parquet() {
    local workload="$1"
    if [ -z "${SLUICE_PARQUET_CACHE[$workload]+x}" ]; then
        local dir="$WORK_DIR/probe/$workload" out
        mkdir -p "$dir/state"
        write_sluice_project "$dir/project.yaml" "$DATA_DIR/orders.$(input_format "$workload")" \
            "$(input_format "$workload")" "$dir/state" "$(sink_parquet "$dir/out")"
        out="$("$SLUICE" validate -c "$dir/project.yaml" 2>&1)" || true
        SLUICE_PARQUET_CACHE[$workload]=""
        if [[ "$out" == *"parquet is not available"* ]]; then
            SLUICE_PARQUET_CACHE[$workload]="this sluice build cannot write parquet (rebuild: swift build -c release)"
        fi
        rm -rf "$dir"
    fi
    REASON="${SLUICE_PARQUET_CACHE[$workload]}"
}

# check_tool WORKLOAD TOOL: sets REASON to why the tool can't run, or to "".
REASON=""
check_tool() {
    REASON=""
    if is_parquet "$1"; then
        case "$2" in
            sluice) REASON="$SLUICE_MISSING"; [ -n "$REASON" ] || check_sluice_parquet "$1" ;;
            polars) check_py "polars" ;;
            duckdb) check_py "duckdb" ;;
            pyarrow) check_py "pyarrow.csv, pyarrow.json, pyarrow.parquet" ;;
            pandas) check_py "pandas, pyarrow.parquet" ;;
            dlt) check_py "dlt, pyarrow.csv, pyarrow.parquet" ;;
        esac
        return 0
    fi
    case "$2" in
        sluice|sluice-merge) REASON="$SLUICE_MISSING" ;;
        sqlite3) command -v sqlite3 >/dev/null 2>&1 || REASON="sqlite3 CLI not installed (run bench/setup.sh)" ;;
        pyarrow-adbc) check_py "pyarrow.csv, pyarrow.json, adbc_driver_sqlite.dbapi" ;;
        polars-adbc) check_py "polars, adbc_driver_sqlite.dbapi" ;;
        pandas) check_py "pandas" ;;
        dlt-sqlite) check_py "dlt, sqlalchemy, pyarrow.csv" ;;
        dlt-duckdb) check_py "dlt, duckdb, pyarrow.csv" ;;
    esac
}

# Sink lines for write_sluice_project (bench/lib/project.sh).
sink_sqlite() { printf '{ type: sqlite, path: "%s", table: orders, mode: %s }' "$1" "$2"; } # OUT_DB MODE
sink_parquet() { printf '{ type: files, path: "%s", format: parquet, compression: %s }' "$1" "$CODEC"; } # OUT_DIR


# prepare_tool WORKLOAD TOOL DIR INPUT: removes old outputs, sets CMD (array) and OUTFILE.
CMD=()
OUTFILE=""
prepare_tool() {
    local workload="$1" tool="$2" dir="$3" input="$4"
    local format
    format="$(input_format "$workload")"
    mkdir -p "$dir"
    if is_parquet "$workload"; then
        case "$tool" in
            sluice)
                # Sluice writes OUTFILE/orders-<hash>-part-NNNN.parquet.
                OUTFILE="$dir/sluice-out"
                rm -rf "$dir/state" "$OUTFILE"
                mkdir -p "$dir/state"
                write_sluice_project "$dir/project.yaml" "$input" "$format" "$dir/state" "$(sink_parquet "$OUTFILE")"
                CMD=("$SLUICE" run -c "$dir/project.yaml" --json)
                ;;
            polars|duckdb|pyarrow|pandas)
                OUTFILE="$dir/out.parquet"
                CMD=("$PY" "$BENCH_DIR/peers/${tool}_${format}_parquet.py" "$input" "$OUTFILE")
                ;;
            dlt)
                # A directory: dlt writes OUTFILE/bench/orders/*.parquet.
                OUTFILE="$dir/dlt-out"
                CMD=("$PY" "$BENCH_DIR/peers/dlt_${format}_parquet.py" "$input" "$OUTFILE")
                ;;
            *) die "unknown tool $tool" ;;
        esac
        rm -rf "$OUTFILE"
        return 0
    fi
    case "$tool" in
        sluice|sluice-merge)
            local mode=append
            [ "$tool" = sluice-merge ] && mode=merge
            OUTFILE="$dir/sluice.db"
            rm -rf "$dir/state" "$OUTFILE" "$OUTFILE-wal" "$OUTFILE-shm" "$OUTFILE-journal"
            mkdir -p "$dir/state"
            write_sluice_project "$dir/project.yaml" "$input" "$format" "$dir/state" "$(sink_sqlite "$OUTFILE" "$mode")"
            CMD=("$SLUICE" run -c "$dir/project.yaml" --json)
            ;;
        sqlite3)
            OUTFILE="$dir/out.db"
            CMD=(bash "$BENCH_DIR/peers/sqlite3_csv.sh" "$input" "$OUTFILE")
            ;;
        pyarrow-adbc|polars-adbc|pandas)
            OUTFILE="$dir/out.db"
            CMD=("$PY" "$BENCH_DIR/peers/${tool//-/_}_${format}.py" "$input" "$OUTFILE")
            ;;
        dlt-sqlite)
            OUTFILE="$dir/out.db"
            CMD=("$PY" "$BENCH_DIR/peers/dlt_csv.py" "$input" "$OUTFILE" --destination sqlite)
            ;;
        dlt-duckdb)
            OUTFILE="$dir/out.duckdb"
            CMD=("$PY" "$BENCH_DIR/peers/dlt_csv.py" "$input" "$OUTFILE" --destination duckdb)
            ;;
        *) die "unknown tool $tool" ;;
    esac
    rm -rf "$OUTFILE" "$OUTFILE-wal" "$OUTFILE-shm" "$OUTFILE-journal" "$OUTFILE.wal" "$OUTFILE.dlt"
}

remove_outputs() {
    rm -rf "$OUTFILE" "$OUTFILE-wal" "$OUTFILE-shm" "$OUTFILE-journal" "$OUTFILE.wal" "$OUTFILE.dlt"
}

# measure LOG TIMEFILE CMD...: runs CMD under GNU time; sets M_RC, M_SECS, M_RSS.
measure() {
    local logf="$1" tf="$2"
    shift 2
    M_RC=0
    "$TIME_BIN" -f '%e %M' -o "$tf" "$@" >"$logf" 2>&1 </dev/null || M_RC=$?
    local last
    last="$(tail -n 1 "$tf" 2>/dev/null || true)"
    M_SECS="${last%% *}"
    M_RSS="${last##* }"
    [[ "$M_SECS" =~ ^[0-9.]+$ ]] || M_SECS=""
    [[ "$M_RSS" =~ ^[0-9]+$ ]] || M_RSS=""
}

count_rows() { # count_rows OUTPUT LOG: rows of table orders / of the Parquet file(s), or nothing
    "$COUNT_PY" "$BENCH_DIR/lib/count_rows.py" "$1" 2>>"$2" || true
}

filesize() { stat -c %s "$1"; }
# outsize PATH: bytes of a file, or total of the *.parquet files under a directory
# (hidden files such as an unfinished .part.tmp are not output, as in count_rows.py).
outsize() {
    if [ -d "$1" ]; then
        find "$1" -type f -name '*.parquet' ! -name '.*' ! -path '*/.*' ! -path '*/_*' -printf '%s\n' 2>/dev/null \
            | awk '{ s += $1 } END { print s + 0 }'
    else
        stat -c %s "$1" 2>/dev/null || true
    fi
}

# ---- run ------------------------------------------------------------------------------
log "rows=$ROWS runs=$RUNS quick=$QUICK memcheck=$MEMCHECK workloads=$WORKLOADS codec=$CODEC${TOOLS_FILTER:+ tools=~$TOOLS_FILTER}"
if [ -z "$SLUICE_MISSING" ]; then
    log "sluice: $SLUICE"
fi

declare -A FAILED=()
for workload in "${WORKLOAD_LIST[@]}"; do
    input="$DATA_DIR/orders.$(input_format "$workload")"
    case "$workload" in
        csv) title="CSV -> SQLite" ;;
        jsonl) title="JSONL -> SQLite" ;;
        csv-parquet) title="CSV -> Parquet ($CODEC)" ;;
        jsonl-parquet) title="JSONL -> Parquet ($CODEC)" ;;
    esac
    kind=sqlite
    codec=""
    if is_parquet "$workload"; then
        kind=parquet
        codec="$CODEC"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$title" "$input" "$(filesize "$input")" "$ROWS" "$kind" "$codec" \
        >>"$RES_DIR/workloads.tsv"

    tools=()
    for tool in $(tools_for "$workload"); do
        if [ -n "$TOOLS_FILTER" ] && ! [[ "$tool" =~ $TOOLS_FILTER ]]; then
            continue
        fi
        check_tool "$workload" "$tool"
        reason="$REASON"
        printf '%s\t%s\t%s\t%s\n' "$workload" "$tool" "$(tool_label "$tool" "$workload")" "$reason" >>"$RES_DIR/tools.tsv"
        if [ -n "$reason" ]; then
            log "$workload / $tool: n/a ($reason)"
        else
            tools+=("$tool")
        fi
    done

    for ((round = 1; round <= RUNS; round++)); do
        for tool in "${tools[@]}"; do
            key="$workload/$tool"
            [ -n "${FAILED[$key]+x}" ] && continue
            dir="$WORK_DIR/$workload/$tool"
            prepare_tool "$workload" "$tool" "$dir" "$input"
            logf="$dir/run$round.log"
            measure "$logf" "$dir/run$round.time" "${CMD[@]}"
            found=""
            outbytes=""
            label="$(tool_label "$tool" "$workload")"
            if [ "$M_RC" -eq 0 ]; then
                found="$(count_rows "$OUTFILE" "$logf")"
                check="rows ok"
                [ "$found" = "$ROWS" ] || check="WARN rows=${found:-?} expected $ROWS"
                size_note=""
                if is_parquet "$workload"; then
                    outbytes="$(outsize "$OUTFILE")"
                    size_note=", output $(awk -v b="${outbytes:-0}" 'BEGIN { printf "%.2f", b / 1e6 }') MB"
                fi
                log "$workload / $label run $round/$RUNS: ${M_SECS:-?} s, $(( ${M_RSS:-0} / 1024 )) MB RSS$size_note, $check"
            else
                FAILED[$key]=1
                log "$workload / $label run $round/$RUNS: FAILED (exit $M_RC), last lines of $logf:"
                tail -n 5 "$logf" | sed 's/^/    /' >&2 || true
            fi
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$workload" "$tool" "$round" "$M_RC" "$M_SECS" "$M_RSS" "$found" "$logf" "$outbytes" \
                >>"$RES_DIR/results.tsv"
            # Keep only the last run's output, and only with --keep.
            if [ "$round" -lt "$RUNS" ] || [ "$KEEP" -eq 0 ]; then
                remove_outputs
            fi
        done
    done
done

# ---- memory check --------------------------------------------------------------------------
if [ "$MEMCHECK" -eq 1 ]; then
    if [ "$QUICK" -eq 1 ]; then
        log "memory check skipped in --quick mode"
    elif [ -n "$SLUICE_MISSING" ]; then
        log "memory check skipped: $SLUICE_MISSING"
    else
        BIG_ROWS=$((ROWS * 10))
        BIG_DIR="$BENCH_DIR/data/rows_${ROWS}_x10"
        ensure_data "$BIG_DIR" "$ROWS" 10 csv
        for spec in "$ROWS:$DATA_DIR/orders.csv" "$BIG_ROWS:$BIG_DIR/orders.csv"; do
            n="${spec%%:*}"
            input="${spec#*:}"
            dir="$WORK_DIR/memcheck/rows_$n"
            prepare_tool csv sluice "$dir" "$input"
            measure "$dir/run.log" "$dir/run.time" "${CMD[@]}"
            found=""
            [ "$M_RC" -eq 0 ] && found="$(count_rows "$OUTFILE" "$dir/run.log")"
            log "memcheck $n rows: exit $M_RC, ${M_SECS:-?} s, $(( ${M_RSS:-0} / 1024 )) MB RSS, rows=${found:-?}"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "sluice" "$n" "$(filesize "$input")" "$M_RC" "$M_SECS" "$M_RSS" "$found" "$dir/run.log" \
                >>"$RES_DIR/memcheck.tsv"
            [ "$KEEP" -eq 1 ] || remove_outputs
        done
    fi
fi

# ---- report ---------------------------------------------------------------------------------
mode=full
[ "$QUICK" -eq 1 ] && mode=quick
report_args=("$RES_DIR" --rows "$ROWS" --runs "$RUNS" --sluice "$SLUICE" --mode "$mode")
[ -n "$JSON_OUT" ] && report_args+=(--json "$JSON_OUT")
"$SYS_PY" "$BENCH_DIR/lib/report.py" "${report_args[@]}" | tee "$RES_DIR/table.txt"
log "raw results and logs: $OUT_DIR"
