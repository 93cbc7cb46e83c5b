"""The webhook peer of bench/serve.sh: FastAPI + Pydantic + SQLite, the usual way to write one.

    fastapi_webhook.py --db OUT.db [--port P] [--host H] [--workers N]

`POST /v1/orders` takes one JSON object (FastAPI validates it against `Order`; 422 with
Pydantic's errors when it does not fit). `POST /v1/orders/batch` takes NDJSON
(`application/x-ndjson`, one object per line) and validates every line. Each request's valid
records go into the `orders` table in one transaction (WAL, `synchronous=FULL`: on disk when
the answer leaves), then 202; a batch with invalid lines stores the valid ones and answers 422
listing the others — the same contract as Sluice's webhook source (`on_invalid: accept_valid`).
Fields beyond the declared ones are allowed and kept as JSON text in the `extra` column.

The port comes from --port, else $PORT, else 8000; the database from --db, else $WEBHOOK_DB.
One worker by default (one process, FastAPI's thread pool for the SQLite writes); --workers N
runs N uvicorn worker processes writing the same database.
"""
from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import threading
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal, Optional

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

TABLE_DDL = """CREATE TABLE IF NOT EXISTS orders (
    order_id INTEGER NOT NULL,
    email TEXT,
    amount TEXT,
    status TEXT,
    created_at TEXT,
    extra TEXT
)"""
INSERT = "INSERT INTO orders (order_id, email, amount, status, created_at, extra) VALUES (?, ?, ?, ?, ?, ?)"


class Order(BaseModel):
    """The record of the Sluice pipeline's schema: order_id required, the rest nullable,
    status one of the accepted values, other fields allowed."""

    model_config = ConfigDict(extra="allow")

    order_id: int
    email: Optional[str] = None
    amount: Optional[Annotated[Decimal, Field(max_digits=12, decimal_places=2)]] = None
    status: Optional[Literal["new", "paid", "shipped", "cancelled"]] = None
    created_at: Optional[datetime] = None


def open_db(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(TABLE_DDL)
    conn.commit()
    return conn


class Store:
    """One connection per process; the lock makes the thread pool's writers take turns
    (SQLite has one writer at a time anyway) without busy-waiting on SQLite's lock."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.conn: Optional[sqlite3.Connection] = None

    def write(self, orders: list[Order]) -> None:
        rows = [
            (
                o.order_id,
                o.email,
                None if o.amount is None else str(o.amount),
                o.status,
                None if o.created_at is None else o.created_at.isoformat(),
                json.dumps(o.model_extra, separators=(",", ":")) if o.model_extra else None,
            )
            for o in orders
        ]
        with self.lock:
            if self.conn is None:
                self.conn = open_db(self.path)
            with self.conn:  # one transaction, committed (fsynced) before the answer
                self.conn.executemany(INSERT, rows)


store = Store(os.environ.get("WEBHOOK_DB", "webhook.db"))
app = FastAPI()


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.post("/v1/orders", status_code=202)
def post_order(order: Order) -> dict:
    store.write([order])
    return {"status": "accepted", "accepted": 1, "rejected": 0}


@app.post("/v1/orders/batch", status_code=202)
async def post_batch(request: Request):
    content_type = request.headers.get("content-type", "")
    if "ndjson" not in content_type and "jsonl" not in content_type:
        return JSONResponse({"error": "expected application/x-ndjson"}, status_code=415)
    body = await request.body()
    valid: list[Order] = []
    errors: list[dict] = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            valid.append(Order.model_validate_json(line))
        except ValidationError as e:
            errors.append({"line": number, "errors": e.errors(include_url=False, include_context=False, include_input=False)})
    if valid:
        await run_in_threadpool(store.write, valid)
    if errors:
        return JSONResponse({"status": "partial" if valid else "rejected", "accepted": len(valid),
                             "rejected": len(errors), "errors": errors[:100]}, status_code=422)
    return {"status": "accepted", "accepted": len(valid), "rejected": 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--db", default=os.environ.get("WEBHOOK_DB"))
    args = parser.parse_args()
    if not args.db:
        parser.error("--db (or $WEBHOOK_DB) is required")
    db = os.path.abspath(args.db)
    open_db(db).close()  # the table exists before any worker writes
    os.environ["WEBHOOK_DB"] = db  # the worker processes import this module afresh

    import uvicorn

    here = os.path.dirname(os.path.abspath(__file__))
    uvicorn.run("fastapi_webhook:app", app_dir=here, host=args.host, port=args.port, workers=args.workers,
                log_level="warning", access_log=False)


if __name__ == "__main__":
    sys.exit(main())
