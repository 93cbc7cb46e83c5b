#!/usr/bin/env python3
"""Load generator for `sluice serve` webhook tests.

Sends TOTAL uniquely keyed records (order_id 1..TOTAL) to http://127.0.0.1:PORT/PATH in NDJSON
batches of BATCH over CONNECTIONS keep-alive connections. Every batch carries an Idempotency-Key
(its first id), and is sent again -- same key, same body -- after a connection error, a 5xx or a
429, until it gets a 2xx or DEADLINE seconds pass. The ids of every batch that got a 2xx are
written to ACKED (one line per batch: "first last status"); a line per answer status is
counted in the summary printed at the end as JSON.

    webhook_load.py PORT PATH TOTAL BATCH CONNECTIONS ACKED [DEADLINE] [--key HEADER=VALUE]
"""
import http.client
import json
import sys
import threading
import time

port, path, total, batch, connections, acked_path = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
deadline = time.time() + (float(sys.argv[7]) if len(sys.argv) > 7 and not sys.argv[7].startswith("--") else 300)
extra = {}
for a in sys.argv[1:]:
    if a.startswith("--key="):
        name, value = a[len("--key="):].split("=", 1)
        extra[name] = value

lock = threading.Lock()
next_batch = [1]
statuses = {}
retry_after_seen = [0]
acked = open(acked_path, "w")


def body(first, last):
    lines = []
    for i in range(first, last + 1):
        lines.append(json.dumps({"order_id": i, "email": f"user{i}@example.com", "amount": f"{i % 1000}.{i % 100:02d}",
                                 "status": "paid", "note": "x" * 120}))
    return ("\n".join(lines) + "\n").encode()


def worker():
    conn = None
    while True:
        with lock:
            first = next_batch[0]
            if first > total:
                return
            next_batch[0] += batch
        last = min(total, first + batch - 1)
        payload = body(first, last)
        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": f"batch-{first}", **extra}
        while True:
            if time.time() > deadline:
                with lock:
                    statuses["gave_up"] = statuses.get("gave_up", 0) + 1
                break
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request("POST", path, body=payload, headers=headers)
                r = conn.getresponse()
                r.read()
                status = r.status
                with lock:
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
                    if r.getheader("Retry-After"):
                        retry_after_seen[0] += 1
                if 200 <= status < 300:
                    with lock:
                        acked.write(f"{first} {last} {status}\n")
                        acked.flush()
                    break
                if status == 429 or status >= 500:
                    time.sleep(min(0.5, float(r.getheader("Retry-After") or 0.1)))
                    continue
                with lock:
                    statuses["refused"] = statuses.get("refused", 0) + 1
                break
            except (OSError, http.client.HTTPException):
                with lock:
                    statuses["connection_error"] = statuses.get("connection_error", 0) + 1
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.05)


threads = [threading.Thread(target=worker) for _ in range(connections)]
started = time.time()
for t in threads:
    t.start()
for t in threads:
    t.join()
acked.close()
print(json.dumps({"statuses": statuses, "retry_after": retry_after_seen[0], "seconds": round(time.time() - started, 2)}))
