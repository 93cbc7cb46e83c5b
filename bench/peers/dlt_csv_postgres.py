#!/usr/bin/env python3
"""Peer: dlt pipeline loading the CSV into PostgreSQL. The resource yields Arrow record batches
(dlt's fast path); --format parquet stages them as Parquet and loads through ADBC (dlt's fastest
PostgreSQL path), --format csv uses dlt's default for Arrow tables (CSV + COPY).

usage: dlt_csv_postgres.py INPUT.csv URL SCHEMA.TABLE [--format parquet|csv]
"""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
from pg_url import with_password  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402

TYPES = {
    "order_id": pa.int64(), "customer_id": pa.int64(), "email": pa.string(), "country": pa.string(),
    "amount": pa.decimal128(12, 2), "quantity": pa.int64(), "status": pa.string(),
    "created_at": pa.timestamp("us", tz="UTC"), "note": pa.string(),
}


def main(src: str, url: str, qualified: str, file_format: str) -> None:
    schema, table = qualified.split(".")
    work = tempfile.mkdtemp(prefix="dlt-bench-")
    os.environ["DLT_DATA_DIR"] = work

    @dlt.resource(name=table, write_disposition="append")
    def orders():
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=16 << 20),
                                convert_options=pacsv.ConvertOptions(column_types=TYPES))
        for batch in reader:
            yield batch

    pipeline = dlt.pipeline(pipeline_name="bench_orders_pg", pipelines_dir=os.path.join(work, "pipelines"),
                            destination=dlt.destinations.postgres(with_password(url)), dataset_name=schema, progress=None)
    info = pipeline.run(orders(), loader_file_format=file_format)
    info.raise_on_failed_jobs()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    fmt = "parquet"
    if "--format" in args:
        i = args.index("--format")
        fmt = args[i + 1]
        del args[i : i + 2]
    if len(args) != 3:
        sys.exit(__doc__)
    main(args[0], args[1], args[2], fmt)
