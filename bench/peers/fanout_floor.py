"""The floor for the fan-out benchmark: threads that only send the same requests (keep-alive
connections, bodies read and dropped), as many at once as Sluice's concurrency.

    python fanout_floor.py BASE_URL PARENTS LATENCY_MS CONCURRENCY  -> prints seconds
"""
import http.client
import queue
import sys
import threading
import time
from urllib.parse import urlparse

base, parents, latency, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
url = urlparse(base)
work = queue.Queue()
for team in range(1, parents + 1):
    work.put(team)


def worker():
    connection = http.client.HTTPConnection(url.hostname, url.port)
    while True:
        try:
            team = work.get_nowait()
        except queue.Empty:
            return
        for page in (1, 2):
            connection.request("GET", f"/teams/{team}/players?slow_ms={latency}&page={page}")
            connection.getresponse().read()


start = time.time()
threads = [threading.Thread(target=worker) for _ in range(concurrency)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"{time.time() - start:.3f}")
