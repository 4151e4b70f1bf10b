"""Lua scripts for wrk: one request shape per endpoint, plus a shared reporter.

Every script counts responses whose status differs from the expected one (wrk itself only counts
statuses >= 400) and prints one machine-readable `BENCH ...` line from `done()`.
"""

from __future__ import annotations

import json

_REPORTER = r"""
local threads = {}
local thread_count = 0

function setup(thread)
  thread_count = thread_count + 1
  thread:set("thread_id", thread_count)
  table.insert(threads, thread)
end

unexpected = 0
function response(status, headers, body)
  if status ~= EXPECTED_STATUS then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local unexpected_total = 0
  for _, thread in ipairs(threads) do
    unexpected_total = unexpected_total + thread:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d socket_errors=%d status_errors=%d unexpected=%d "
    .. "p50_us=%d p95_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    unexpected_total, latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


def _lua_string(value: str) -> str:
    """A Lua string literal (JSON string escapes are valid Lua for the ASCII we pass)."""
    return json.dumps(value, ensure_ascii=True)


def _with_reporter(expected_status: int, body: str) -> str:
    return f"EXPECTED_STATUS = {expected_status}\n{_REPORTER}\n{body}"


def get_script(expected_status: int = 200, cookie: str | None = None) -> str:
    """GET the URL given to wrk, optionally with a session cookie."""
    headers = f'wrk.headers["Cookie"] = {_lua_string(cookie)}\n' if cookie else ""
    return _with_reporter(expected_status, headers)


def rotating_get_script(paths: list[str], cookie: str) -> str:
    """GET each of `paths` in turn (each thread starts at a different one), with a cookie."""
    items = ", ".join(_lua_string(p) for p in paths)
    body = f"""
local paths = {{{items}}}
local counter = 0
wrk.headers["Cookie"] = {_lua_string(cookie)}

function init(args)
  counter = (thread_id or 1) * 7
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
"""
    return _with_reporter(200, body)


def login_script(cookie: str, csrf_token: str, password: str, agents: int) -> str:
    """POST /login as agent00001..agentNNNNN in a scattered order, reusing one cookie + CSRF token.

    Flask's signed-cookie session holds the CSRF secret, so the same anonymous cookie and token
    pair stays valid for every request.
    """
    body = f"""
local prefix = "csrf_token=" .. {_lua_string(csrf_token)} .. "&password=" .. {_lua_string(password)}
local counter = 0
wrk.method = "POST"
wrk.headers["Cookie"] = {_lua_string(cookie)}
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

function init(args)
  counter = (thread_id or 1) * 1000003
end

function request()
  counter = counter + 1
  local agent = (counter * 7919) % {agents} + 1
  return wrk.format(nil, "/login", nil, prefix .. string.format("&username=agent%05d", agent))
end
"""
    return _with_reporter(302, body)


def post_json_script(expected_status: int, cookie: str, csrf_token: str, body: str) -> str:
    """POST `body` as JSON to the URL given to wrk, with a session cookie and its CSRF token."""
    script = f"""
wrk.method = "POST"
wrk.body = {_lua_string(body)}
wrk.headers["Cookie"] = {_lua_string(cookie)}
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-CSRFToken"] = {_lua_string(csrf_token)}
"""
    return _with_reporter(expected_status, script)
