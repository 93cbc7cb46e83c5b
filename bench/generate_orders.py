#!/usr/bin/env python3
"""Deterministic generator for the benchmark "orders" data set.

    generate_orders.py --rows N --out DIR [--seed S] [--formats csv,jsonl] [--scale K]

Writes DIR/orders.csv (RFC 4180: header row, CRLF-free "\n" line ends, a field
is quoted only when it contains a comma, a double quote or a line break; an
empty note is an empty field) and DIR/orders.jsonl (one JSON object per line;
an empty note is null).

Columns: order_id (int, unique 1..N), customer_id (int), email, country
(ISO 3166 alpha-2), amount (decimal, exactly 2 places), quantity (int),
status (new|paid|shipped|cancelled|refunded), created_at (ISO-8601 UTC,
e.g. 2024-03-05T12:34:56Z), note (free text, sometimes with commas and double
quotes, ~5% empty).

--scale K writes K copies of the N base rows back to back with order_id
shifted by N per copy (so ids stay unique, 1..K*N): a K-times bigger file at
a fraction of the cost of generating K*N fresh rows.

The output depends only on --rows, --seed and --scale (same bytes on every run
with the same Python major version). Pure standard library, no numpy.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import random
import sys
import time

CHUNK = 50_000

STATUSES = ["new", "paid", "shipped", "cancelled", "refunded"]
STATUS_WEIGHTS = [15, 35, 40, 6, 4]

COUNTRIES = [
    "US", "US", "US", "GB", "DE", "FR", "NL", "SE", "NO", "DK", "FI", "ES", "IT",
    "PT", "PL", "CZ", "AT", "CH", "BE", "IE", "CA", "CA", "MX", "BR", "AR", "JP",
    "KR", "IN", "AU", "NZ", "ZA", "SG",
]

FIRST = [
    "alex", "sam", "jo", "maria", "li", "noah", "emma", "olivia", "liam", "ava",
    "mia", "lucas", "sofia", "hugo", "ines", "yuki", "arjun", "priya", "omar",
    "lena", "ivan", "anna", "marek", "chloe", "finn", "zoe", "ravi", "amir",
]
LAST = [
    "smith", "jones", "garcia", "muller", "rossi", "tanaka", "kim", "nguyen",
    "silva", "novak", "dubois", "jensen", "kowalski", "patel", "cohen", "ali",
    "berg", "costa", "weber", "moreau", "santos", "larsen", "fischer", "ito",
]
DOMAINS = [
    "example.com", "mail.example.org", "example.net", "shop.example",
    "corp.example.com", "inbox.example.io",
]

WORDS = (
    "please deliver to the back door leave with neighbour gift wrap fragile "
    "handle with care urgent call before arrival no signature required "
    "second floor office hours only weekend delivery ok box damaged replace "
    "customer asked for invoice split shipment reorder of previous item "
    "color blue size large discount applied loyalty member"
).split()

QUOTED = [
    '"fragile"', '"as is"', '"rush"', 'the "blue" one', '5" screen',
    'said "thanks"', '"do not bend"',
]

N_CUSTOMERS = 250_000
N_NOTES = 20_000
EMPTY_NOTE_PCT = 5  # percent


def _csv_field(s: str) -> str:
    if '"' in s or "," in s or "\n" in s or "\r" in s:
        return '"' + s.replace('"', '""') + '"'
    return s


def _build_pools(rnd: random.Random):
    """Precomputed string pools so the per-row work is only indexing + joins."""
    cust_ids = [str(i) for i in range(1, N_CUSTOMERS + 1)]
    emails = []
    cust_country = []
    for i in range(N_CUSTOMERS):
        f = FIRST[rnd.randrange(len(FIRST))]
        l = LAST[rnd.randrange(len(LAST))]
        d = DOMAINS[rnd.randrange(len(DOMAINS))]
        sep = "._"[rnd.randrange(2)]
        emails.append(f"{f}{sep}{l}{i + 1}@{d}")
        cust_country.append(COUNTRIES[rnd.randrange(len(COUNTRIES))])

    notes_csv = []
    notes_json = []
    for _ in range(N_NOTES):
        n_words = rnd.randint(3, 14)
        parts = []
        for _w in range(n_words):
            r = rnd.random()
            if r < 0.015:
                parts.append(QUOTED[rnd.randrange(len(QUOTED))])
            else:
                w = WORDS[rnd.randrange(len(WORDS))]
                if r > 0.96:
                    w += ","
                parts.append(w)
        text = " ".join(parts).rstrip(",")
        notes_csv.append(_csv_field(text))
        notes_json.append(json.dumps(text, ensure_ascii=False))
    # ~5% empty notes: CSV empty field, JSON null.
    n_empty = N_NOTES * EMPTY_NOTE_PCT // (100 - EMPTY_NOTE_PCT)
    notes_csv.extend([""] * n_empty)
    notes_json.extend(["null"] * n_empty)

    start = _dt.date(2024, 1, 1)
    days = [(start + _dt.timedelta(days=d)).isoformat() + "T" for d in range(366)]
    times = [
        f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
    ]
    return cust_ids, emails, cust_country, notes_csv, notes_json, days, times


def generate(rows: int, out: str, seed: int, formats: set[str], scale: int) -> None:
    rnd = random.Random(seed)
    cust_ids, emails, cust_country, notes_csv, notes_json, days, times = _build_pools(rnd)
    n_cust = len(cust_ids)
    n_notes = len(notes_csv)
    cust_range = range(n_cust)
    note_range = range(n_notes)
    day_range = range(len(days))
    time_range = range(len(times))
    qty_range = range(1, 21)
    qty_w = [30, 20, 12, 9, 7, 5, 4, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]

    os.makedirs(out, exist_ok=True)
    csv_path = os.path.join(out, "orders.csv")
    jsonl_path = os.path.join(out, "orders.jsonl")
    fcsv = open(csv_path + ".tmp", "w", encoding="utf-8", newline="") if "csv" in formats else None
    fjs = open(jsonl_path + ".tmp", "w", encoding="utf-8", newline="") if "jsonl" in formats else None
    if fcsv:
        fcsv.write("order_id,customer_id,email,country,amount,quantity,status,created_at,note\n")

    choices = rnd.choices
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        cidx = choices(cust_range, k=n)
        # amounts: mostly small, some large; cents as int
        cents = [int(rnd.random() ** 2.5 * 99_999_9) + 99 for _ in range(n)]
        qty = choices(qty_range, weights=qty_w, k=n)
        status = choices(STATUSES, weights=STATUS_WEIGHTS, k=n)
        didx = choices(day_range, k=n)
        tidx = choices(time_range, k=n)
        nidx = choices(note_range, k=n)

        if fcsv:
            buf = []
            app = buf.append
            for j in range(n):
                ci = cidx[j]
                c = cents[j]
                app(
                    f"{lo + j + 1},{cust_ids[ci]},{emails[ci]},{cust_country[ci]},"
                    f"{c // 100}.{c % 100:02d},{qty[j]},{status[j]},"
                    f"{days[didx[j]]}{times[tidx[j]]},{notes_csv[nidx[j]]}\n"
                )
            fcsv.write("".join(buf))
        if fjs:
            buf = []
            app = buf.append
            for j in range(n):
                ci = cidx[j]
                c = cents[j]
                app(
                    f'{{"order_id":{lo + j + 1},"customer_id":{cust_ids[ci]},'
                    f'"email":"{emails[ci]}","country":"{cust_country[ci]}",'
                    f'"amount":{c // 100}.{c % 100:02d},"quantity":{qty[j]},'
                    f'"status":"{status[j]}","created_at":"{days[didx[j]]}{times[tidx[j]]}",'
                    f'"note":{notes_json[nidx[j]]}}}\n'
                )
            fjs.write("".join(buf))

    if fcsv:
        fcsv.close()
        if scale > 1:
            _scale_csv(csv_path + ".tmp", rows, scale)
        os.replace(csv_path + ".tmp", csv_path)
    if fjs:
        fjs.close()
        if scale > 1:
            _scale_jsonl(jsonl_path + ".tmp", rows, scale)
        os.replace(jsonl_path + ".tmp", jsonl_path)


def _scale_csv(path: str, rows: int, scale: int) -> None:
    """Append scale-1 copies of the data rows with order_id shifted by rows*k."""
    with open(path, "r", encoding="utf-8", newline="") as src:
        header = src.readline()
        base_off = len(header.encode("utf-8"))
    with open(path, "a", encoding="utf-8", newline="") as dst:
        for k in range(1, scale):
            shift = rows * k
            with open(path, "r", encoding="utf-8", newline="") as src:
                src.seek(base_off)
                # Read only the base rows (the file grows as we append).
                remaining = rows
                while remaining > 0:
                    lines = src.readlines(8 << 20)
                    if not lines:
                        break
                    if len(lines) > remaining:
                        lines = lines[:remaining]
                    remaining -= len(lines)
                    out = []
                    app = out.append
                    for line in lines:
                        i = line.index(",")
                        app(str(int(line[:i]) + shift))
                        app(line[i:])
                    dst.write("".join(out))
                    dst.flush()


def _scale_jsonl(path: str, rows: int, scale: int) -> None:
    prefix = '{"order_id":'
    plen = len(prefix)
    with open(path, "a", encoding="utf-8", newline="") as dst:
        for k in range(1, scale):
            shift = rows * k
            with open(path, "r", encoding="utf-8", newline="") as src:
                remaining = rows
                while remaining > 0:
                    lines = src.readlines(8 << 20)
                    if not lines:
                        break
                    if len(lines) > remaining:
                        lines = lines[:remaining]
                    remaining -= len(lines)
                    out = []
                    app = out.append
                    for line in lines:
                        i = line.index(",", plen)
                        app(prefix)
                        app(str(int(line[plen:i]) + shift))
                        app(line[i:])
                    dst.write("".join(out))
                    dst.flush()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2_000_000, help="base row count (default 2,000,000)")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--seed", type=int, default=20240305, help="RNG seed (default 20240305)")
    ap.add_argument("--formats", default="csv,jsonl", help="comma list of csv,jsonl (default both)")
    ap.add_argument("--scale", type=int, default=1, help="write K copies with shifted order_ids (K*rows rows)")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.scale < 1:
        ap.error("--rows and --scale must be >= 1")
    formats = {f.strip() for f in args.formats.split(",") if f.strip()}
    bad = formats - {"csv", "jsonl"}
    if bad or not formats:
        ap.error(f"unknown format(s): {','.join(sorted(bad)) or '(none)'}")

    t0 = time.perf_counter()
    generate(args.rows, args.out, args.seed, formats, args.scale)
    dt = time.perf_counter() - t0
    sizes = []
    for f in sorted(formats):
        p = os.path.join(args.out, f"orders.{f}")
        sizes.append(f"{p} {os.path.getsize(p) / 1e6:.1f} MB")
    print(
        f"generated {args.rows * args.scale:,} rows in {dt:.1f}s: " + ", ".join(sizes),
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
