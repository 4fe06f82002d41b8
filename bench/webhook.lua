-- wrk script for `make bench`: LiveChat incoming_event webhooks, every one a distinct event.
-- bench/run.py writes the session list and secret into `chats`/`secret`/`org` (see render_lua);
-- `wrk ... -s this.lua URL -- PREFIX` makes event ids PREFIX<thread>_<n>, unique per invocation.
local threads = {}
local n = 0
local prefix = "x"

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1] or prefix
end

function request()
  n = n + 1
  local chat = chats[(n % #chats) + 1]
  local eid = string.format("%s%d_%d", prefix, tid, n)
  local body = string.format(
    '{"webhook_id":"wh_%s","secret_key":"%s","action":"incoming_event","organization_id":"%s",' ..
    '"payload":{"chat_id":"%s","thread_id":"%s","event":{"id":"%s","created_at":"2025-08-11T09:41:03.877000Z",' ..
    '"visibility":"all","type":"message","text":"Hello, this is the agent. Message %d, how can I help?",' ..
    '"author_id":"agent@example.com","properties":{}}},"additional_data":{}}',
    eid, secret, org, chat[1], chat[2], eid, n)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"errors_status":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
