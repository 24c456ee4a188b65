-- Shared by the scenario scripts (loaded with dofile; bench/run.py sets the BENCH_* variables).
--
-- Subject ids: thread t of T takes positions t, t+T, t+2T, ... of a permutation of
-- [BENCH_ID_LO, BENCH_ID_HI) (position k -> lo + (offset + k * stride) mod span, stride
-- coprime with span), so no two requests of a run name the same subject until the
-- whole range has been used. Ids are formatted like bench/seed.py's (`bench-%07d`).
-- `done` prints one machine-readable line that bench/run.py parses.

local lo = tonumber(os.getenv("BENCH_ID_LO") or "0")
local hi = tonumber(os.getenv("BENCH_ID_HI") or "100000")
local stride = tonumber(os.getenv("BENCH_STRIDE") or "7919")
local offset = tonumber(os.getenv("BENCH_OFFSET") or "0")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
local id_format = os.getenv("BENCH_ID_FORMAT") or "bench-%07d"
local span = hi - lo

token = os.getenv("BENCH_TOKEN") or ""
property_key = os.getenv("BENCH_PROPERTY_KEY") or ""

local created = 0
function setup(thread)
   thread:set("tid", created)
   created = created + 1
end

local position = 0
function next_subject()
   local k = position * nthreads + (tid or 0)
   position = position + 1
   return string.format(id_format, lo + (offset + k * stride) % span)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
      '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
      summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
      e.status, e.timeout, latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency.max, latency.mean))
end
