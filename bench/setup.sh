#!/usr/bin/env bash
# Sets up everything bench/run.sh needs: a venv at bench/.venv with the peer
# tools, plus the sqlite3 CLI, GNU time and wrk (the HTTP load generator of
# bench/serve.sh). Idempotent: re-running only installs what is missing. A peer
# that fails to install is reported and skipped; the run script marks it "n/a".
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$BENCH_DIR/.venv"
PYTHON_BIN="${PYTHON:-python3}"

log() { printf '[setup] %s\n' "$*" >&2; }

# ---- system tools -----------------------------------------------------------
apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        log "apt-get not available; please install '$*' by hand"
        return 1
    fi
    local SUDO=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            log "not root and no sudo; please install '$*' by hand"; return 1
        fi
    fi
    if [ "$apt_updated" -eq 0 ]; then
        $SUDO apt-get update -qq || log "apt-get update failed (continuing)"
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
}

if ! command -v sqlite3 >/dev/null 2>&1; then
    log "installing sqlite3 CLI"
    apt_install sqlite3 || log "WARNING: sqlite3 CLI could not be installed; the sqlite3 peer will be n/a"
fi
if [ ! -x /usr/bin/time ]; then
    log "installing GNU time"
    apt_install time || log "WARNING: /usr/bin/time could not be installed; run.sh needs it"
fi
if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    apt_install wrk || log "WARNING: wrk could not be installed; serve.sh needs it"
fi

# ---- python venv -------------------------------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    log "creating venv at $VENV"
    if ! "$PYTHON_BIN" -m venv "$VENV"; then
        log "venv creation failed; trying to install python3-venv"
        apt_install python3-venv || true
        rm -rf "$VENV"
        "$PYTHON_BIN" -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip || log "pip upgrade failed (continuing)"
fi
PY="$VENV/bin/python"

# Each entry: "<pip requirement>|<python import check>"
PEERS=(
    "pyarrow|import pyarrow, pyarrow.csv, pyarrow.json, pyarrow.parquet, pyarrow.dataset"
    "adbc-driver-manager|import adbc_driver_manager"
    "adbc-driver-sqlite|import adbc_driver_sqlite.dbapi"
    "pandas|import pandas"
    "duckdb|import duckdb"
    "polars|import polars"
    "dlt[duckdb]|import dlt, duckdb"
    "dlt[sqlalchemy]|import dlt, sqlalchemy"
    "adbc-driver-postgresql|import adbc_driver_postgresql.dbapi"
    "dlt[postgres,parquet]|import dlt, psycopg2, pyarrow"
    "connectorx|import connectorx"
    "fastapi|import fastapi"
    "uvicorn|import uvicorn"
    "pydantic|import pydantic"
)

failed=()
for entry in "${PEERS[@]}"; do
    req="${entry%%|*}"
    check="${entry#*|}"
    if "$PY" -c "$check" >/dev/null 2>&1; then
        log "ok: $req (already installed)"
        continue
    fi
    log "installing $req"
    if "$PY" -m pip install -q "$req" && "$PY" -c "$check" >/dev/null 2>&1; then
        log "ok: $req"
    else
        log "WARNING: failed to install $req; peers that need it will be skipped (n/a)"
        failed+=("$req")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    log "done, with failures: ${failed[*]}"
else
    log "done: all peers installed in $VENV"
fi
"$PY" - <<'PYEOF' >&2 || true
import importlib
for mod in ["pyarrow", "adbc_driver_manager", "adbc_driver_sqlite", "adbc_driver_postgresql", "pandas", "duckdb", "polars",
            "dlt", "sqlalchemy", "psycopg2", "connectorx", "fastapi", "uvicorn", "pydantic"]:
    try:
        m = importlib.import_module(mod)
        print(f"[setup]   {mod:22s} {getattr(m, '__version__', '?')}")
    except Exception as e:  # noqa: BLE001
        print(f"[setup]   {mod:22s} MISSING ({type(e).__name__})")
PYEOF
exit 0
