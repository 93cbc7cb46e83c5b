#!/usr/bin/env python3
"""Peer: dlt pipeline loading the CSV (read as Arrow record batches, dlt's fast
path) into SQLite (sqlalchemy destination) or DuckDB.

usage: dlt_csv.py INPUT.csv OUTPUT.db [--destination sqlite|duckdb]

The table lands as "orders" in the main schema of OUTPUT (for DuckDB: schema
"main" of the .duckdb file). dlt's own working files go to a scratch folder
next to OUTPUT, removed afterwards.
"""
import os
import shutil
import sys

# No telemetry / no network from dlt; keep its working dir out of $HOME.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402


def main(src: str, dst: str, destination: str) -> None:
    dst = os.path.abspath(dst)
    work = dst + ".dlt"
    shutil.rmtree(work, ignore_errors=True)
    os.environ["DLT_DATA_DIR"] = work

    @dlt.resource(name="orders", write_disposition="append")
    def orders():
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=16 << 20))
        for batch in reader:
            yield batch

    if destination == "sqlite":
        dest = dlt.destinations.sqlalchemy(f"sqlite:///{dst}")
        dataset = "main"
    elif destination == "duckdb":
        dest = dlt.destinations.duckdb(dst)
        dataset = "main"
    else:
        raise SystemExit(f"unknown destination {destination!r}")

    pipeline = dlt.pipeline(
        pipeline_name="bench_orders",
        pipelines_dir=os.path.join(work, "pipelines"),
        destination=dest,
        dataset_name=dataset,
        progress=None,
    )
    info = pipeline.run(orders())
    info.raise_on_failed_jobs()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    destination = "sqlite"
    if "--destination" in args:
        i = args.index("--destination")
        destination = args[i + 1]
        del args[i : i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], destination)
