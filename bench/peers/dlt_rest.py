#!/usr/bin/env python3
"""Peer: dlt's rest_api source (page_number paginator, total pages from the body) -> SQLite
through dlt's sqlalchemy destination.

usage: dlt_rest.py BASE_URL PER_PAGE OUTPUT.db
"""
import os
import shutil
import sys
import tempfile

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
from dlt.sources.rest_api import rest_api_source  # noqa: E402


def main(base: str, per_page: str, out: str) -> None:
    work = tempfile.mkdtemp(prefix="dlt-rest-")
    os.environ["DLT_DATA_DIR"] = work
    source = rest_api_source({
        "client": {"base_url": base + "/",
                   "paginator": {"type": "page_number", "base_page": 1, "page_param": "page", "total_path": "meta.total_pages"}},
        "resources": [{"name": "items", "endpoint": {"path": "items", "params": {"per_page": int(per_page)}, "data_selector": "data"}}],
    })
    pipeline = dlt.pipeline(pipeline_name="bench_rest", pipelines_dir=os.path.join(work, "pipelines"),
                            destination=dlt.destinations.sqlalchemy(f"sqlite:///{os.path.abspath(out)}"), dataset_name="main", progress=None)
    pipeline.run(source).raise_on_failed_jobs()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
