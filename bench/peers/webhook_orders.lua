-- wrk script for bench/serve.sh: POSTs ~1 KB JSON orders to the URL's path. The first script
-- argument is the records per request: 1 (the default) sends one JSON object
-- (Content-Type: application/json), more send an NDJSON batch (application/x-ndjson, one order
-- per line). order_id is unique across threads and records: the thread's number (1, 2, ...)
-- followed by its 9-digit record counter.
--
--   wrk -t2 -c64 -d30s -s bench/peers/webhook_orders.lua http://127.0.0.1:PORT/v1/orders -- 100
--
-- done() prints one line for the script to parse:
--   RESULT requests=N ok=N non2xx=M records_per_request=B timeouts=T socket_errors=E
--          p50_ms=X p99_ms=Y rps=Z duration_s=S
-- (ok: 2xx answers; requests: all answers; latencies from wrk's histogram, in microseconds).

local threads = {}
local next_tid = 1

function setup(thread)
    thread:set("tid", next_tid)
    next_tid = next_tid + 1
    table.insert(threads, thread)
end

local statuses = { "new", "paid", "shipped", "cancelled" }
local countries = { "DE", "FR", "US", "GB", "NL", "SE", "ES", "IT" }
local note = string.rep("Leave the parcel with the neighbour if nobody answers; ring twice. ", 12)

-- One order as JSON text (about 1 KB), varied by n.
function order(id, n)
    return string.format(
        '{"order_id":%s,"customer_id":%d,"email":"customer%d@example.com","country":"%s",'
        .. '"amount":%d.%02d,"quantity":%d,"status":"%s","created_at":"2024-03-%02dT%02d:%02d:%02dZ",'
        .. '"channel":"web","currency":"EUR","sku":"SKU-%06d","note":"%s"}',
        id, 100000 + n % 50000, n % 50000, countries[n % 8 + 1],
        n % 100000, n % 100, 1 + n % 9, statuses[n % 4 + 1], 1 + n % 28, n % 24, n % 60, (n * 7) % 60,
        n % 1000000, note)
end

function init(args)
    batch = math.max(1, tonumber(args[1] or "") or 1)
    headers = { ["Content-Type"] = batch == 1 and "application/json" or "application/x-ndjson" }
    seq = 0
    ok = 0
    non2xx = 0
    lines = {}
end

function request()
    if batch == 1 then
        seq = seq + 1
        return wrk.format("POST", wrk.path, headers, order(tid .. string.format("%09d", seq), seq))
    end
    for i = 1, batch do
        seq = seq + 1
        lines[i] = order(tid .. string.format("%09d", seq), seq)
    end
    return wrk.format("POST", wrk.path, headers, table.concat(lines, "\n", 1, batch) .. "\n")
end

function response(status, headers, body)
    if status >= 200 and status < 300 then ok = ok + 1 else non2xx = non2xx + 1 end
end

function done(summary, latency, requests)
    local total_ok, total_bad, size = 0, 0, 1
    for _, t in ipairs(threads) do
        total_ok = total_ok + t:get("ok")
        total_bad = total_bad + t:get("non2xx")
        size = t:get("batch") or size
    end
    local e = summary.errors
    local secs = summary.duration / 1e6
    io.write(string.format("RESULT requests=%d ok=%d non2xx=%d records_per_request=%d timeouts=%d socket_errors=%d "
        .. "p50_ms=%.3f p99_ms=%.3f rps=%.1f duration_s=%.3f\n",
        summary.requests, total_ok, total_bad, size, e.timeout, e.connect + e.read + e.write,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.requests / secs, secs))
end
