#!/usr/bin/env python3
"""Peer: dlt's sql_table source (backend connectorx or pyarrow) -> filesystem destination,
Parquet files.

usage: dlt_postgres_parquet.py URL SCHEMA.TABLE OUTPUT_DIR [--backend connectorx|pyarrow]
"""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
from pg_url import with_password  # noqa: E402
from dlt.sources.sql_database import sql_table  # noqa: E402
from parquet_codec import parquet_codec  # noqa: E402


def main(url: str, qualified: str, out: str, backend: str) -> None:
    schema, table = qualified.split(".")
    work = tempfile.mkdtemp(prefix="dlt-bench-")
    os.environ["DLT_DATA_DIR"] = work
    os.environ["NORMALIZE__DATA_WRITER__COMPRESSION"] = parquet_codec()
    source = sql_table(credentials=with_password(url).replace("postgresql://", "postgresql+psycopg2://", 1), schema=schema, table=table, backend=backend, chunk_size=100_000)
    pipeline = dlt.pipeline(pipeline_name="bench_pg_parquet", pipelines_dir=os.path.join(work, "pipelines"),
                            destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.abspath(out)),
                            dataset_name="bench", progress=None)
    info = pipeline.run(source, loader_file_format="parquet")
    info.raise_on_failed_jobs()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    backend = "connectorx"
    if "--backend" in args:
        i = args.index("--backend")
        backend = args[i + 1]
        del args[i : i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    main(args[0], args[1], args[2], backend)
