#!/usr/bin/env python3
"""Posts COUNT seeded random and hostile bodies to http://127.0.0.1:PORT/PATH (with KEY in
X-API-Key) and prints a JSON object counting the answers by status, plus "dropped" for
connections closed without an answer.

    webhook_fuzz.py PORT PATH KEY COUNT SEED
"""
import http.client
import json
import random
import sys

port, path, key, count, seed = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
good = '{"order_id": 1, "status": "new", "email": "a@b.c", "amount": "1.50"}'


def hostile():
    kind = rng.randrange(14)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
    if kind == 1:
        return b"[" * rng.randrange(1, 60000)
    if kind == 2:
        return ('{"order_id": ' + "9" * rng.randrange(20, 5000) + "}").encode()
    if kind == 3:
        return b'{"order_id": 1, "email": "\xff\xfe\xc3\x28"}'
    if kind == 4:
        return ('{"order_id": 1, "email": "\'; DROP TABLE orders; --", "status": "new"}').encode()
    if kind == 5:
        return b'{"order_id": 1, "email": "a\x00b"}'
    if kind == 6:
        return ('{"order_id": 2, "email": "' + "x" * rng.randrange(1000, 60000) + '"}').encode()
    if kind == 7:
        lines = [good, "{", "[]", "null", '{"order_id": "x"}', "", '"str"', good.replace("1", "3")]
        rng.shuffle(lines)
        return "\n".join(lines).encode()
    if kind == 8:
        b = bytearray(good.encode())
        for _ in range(rng.randrange(1, 8)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    if kind == 9:
        return good[: rng.randrange(len(good))].encode()
    if kind == 10:
        return ("[" + ",".join([good] * rng.randrange(0, 50)) + "]").encode()
    if kind == 11:
        return ('{"a":' * 5000 + "1" + "}" * 5000).encode()
    if kind == 12:
        return b""
    return ('{"order_id": 1, "order_id": 2, "status": {"nested": [1, 2, {"x": null}]}, "amount": 1e400}').encode()


types = ["application/json", "application/x-ndjson", "text/plain", None, "application/json; charset=utf-8"]
statuses = {}
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
for i in range(count):
    body = hostile()
    headers = {"X-API-Key": key}
    t = rng.choice(types)
    if t:
        headers["Content-Type"] = t
    try:
        conn.request("POST", path, body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        if r.getheader("Connection", "").lower() == "close":
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    except (OSError, http.client.HTTPException):
        statuses["dropped"] = statuses.get("dropped", 0) + 1
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
print(json.dumps(statuses))
