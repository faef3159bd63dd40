-- wrk script of bench/ocsp, identical for govsign and openssl ocsp.
--
--   wrk ... -s ocsp_wrk.lua <url> -- MODE FILE [POST_PATH]
--
-- MODE get:   FILE has one request path per line (/prefix/<url-encoded base64 DER>).
-- MODE post:  FILE has one hex-encoded DER OCSPRequest per line; POSTed to POST_PATH.
-- MODE nonce: as post, but the last 16 bytes of each request (the nonce octets: the nonce
--             extension is the last element of the TBSRequest and the request is unsigned)
--             are replaced by fresh random bytes for every request.
-- Requests rotate over the certificates; each thread starts at a different offset.
-- done() prints one line "WRKJSON {...}" for bench/ocsp_bench.py.

-- wrk probes the address with an empty connection (connect, close) before the run. An
-- `openssl ocsp` 3.0 responder child that accepts an empty connection spins at 100% CPU on
-- read() = 0 forever (seen with 3.0.19, also with -timeout), which would starve the baseline:
-- resolve without the probe.
wrk.resolve = function(host, service)
  wrk.addrs = wrk.lookup(host, service)
end

local counter = 0
local threads = {}

function setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
  table.insert(threads, thread)
end

local mode, items, index, post_path, headers
local random_byte = {}

local function unhex(text)
  return (text:gsub("%x%x", function(pair) return string.char(tonumber(pair, 16)) end))
end

function init(args)
  mode = args[1]
  post_path = args[3] or "/"
  items = {}
  for line in io.lines(args[2]) do
    if #line > 0 then
      if mode == "get" then
        table.insert(items, line)
      else
        table.insert(items, unhex(line))
      end
    end
  end
  local id = thread_id or 1
  math.randomseed(os.time() * 1000 + id * 7919)
  index = (id * 7) % #items
  headers = { ["Content-Type"] = "application/ocsp-request" }
  for i = 0, 255 do random_byte[i] = string.char(i) end
end

function request()
  index = index % #items + 1
  local item = items[index]
  if mode == "get" then
    return wrk.format("GET", item)
  end
  if mode == "nonce" then
    local nonce = {}
    for i = 1, 16 do nonce[i] = random_byte[math.random(0, 255)] end
    item = item:sub(1, #item - 16) .. table.concat(nonce)
  end
  return wrk.format("POST", post_path, headers, item)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"max_us":%d,"mean_us":%.1f,"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
