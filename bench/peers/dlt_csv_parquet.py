#!/usr/bin/env python3
"""Peer: dlt pipeline writing the CSV (read as Arrow record batches with explicit column types,
dlt's fast path) to its filesystem destination as Parquet files, compressed with the codec.

usage: [BENCH_PARQUET_CODEC=snappy|zstd|gzip|none] dlt_csv_parquet.py INPUT.csv OUTPUT_DIR

The table lands in OUTPUT_DIR/bench/orders/*.parquet; dlt's own tables (_dlt_loads, ...) go to
_-prefixed folders next to it, which the row count and the output size leave out. dlt's working
files go to a scratch folder, removed afterwards.
"""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
import pyarrow.csv as pacsv  # noqa: E402
from parquet_codec import parquet_codec  # noqa: E402
from pyarrow_csv_parquet import TYPES  # noqa: E402


def main(src: str, out: str) -> None:
    work = tempfile.mkdtemp(prefix="dlt-bench-")
    os.environ["DLT_DATA_DIR"] = work
    os.environ["NORMALIZE__DATA_WRITER__COMPRESSION"] = parquet_codec()

    @dlt.resource(name="orders", write_disposition="append")
    def orders():
        convert = pacsv.ConvertOptions(column_types=TYPES, strings_can_be_null=True, quoted_strings_can_be_null=False)
        reader = pacsv.open_csv(src, read_options=pacsv.ReadOptions(block_size=16 << 20), convert_options=convert)
        for batch in reader:
            yield batch

    pipeline = dlt.pipeline(pipeline_name="bench_csv_parquet", pipelines_dir=os.path.join(work, "pipelines"),
                            destination=dlt.destinations.filesystem(bucket_url="file://" + os.path.abspath(out)),
                            dataset_name="bench", progress=None)
    info = pipeline.run(orders(), loader_file_format="parquet")
    info.raise_on_failed_jobs()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
