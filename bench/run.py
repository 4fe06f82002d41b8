"""`make bench`: the HITL console's speed beside its stack's floor, measured in one run.

Starts its own stack (bench/stack.py: a dedicated PostgreSQL database, gunicorn with the
production settings, Redis, a Celery worker, the LiveChat sandbox, a bot receiver), loads it,
and prints one JSON object and a short table. Phases:

1. webhook ingest: wrk (bench/webhook.lua), distinct incoming_event webhooks with a valid secret
   for existing, assigned sessions, on the console's webhook URL and on the bare endpoint
   (bench/views.py: parse the same body, insert one row in one transaction) of the same gunicorn.
   Web tier only: the Celery worker is stopped, so the callbacks the webhooks queue wait in Redis
   (queuing them is part of the cost) and are discarded after the phase.
2. agent → bot: webhooks at a steady rate (open loop); time from sending the webhook to the bot
   receiver getting the signed callback.
3. bot → agent: POST /api/v1/sessions/{id}/messages at a steady rate; time from the POST to the
   sandbox receiving send_event.
4. console at scale: bulk data (bench/seed.py) at 10k then 100k sessions (~100k then ~1M
   messages); each page's server time and query count in-process (bench/console.py), then the
   same pages over HTTP through gunicorn.
Throughout, peak RSS (VmHWM) of every gunicorn worker and Celery process.

Benchmarks are not tests: nothing here asserts a time. See docs/performance.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.load import paced, percentile  # noqa: E402
from bench.stack import PYTHON, ROOT, BenchStack, free_port  # noqa: E402

WEBHOOK_SECRET = "bench-webhook-secret-0123456789"
AGENT = {"id": "agent@example.com", "name": "Bench Agent", "type": "agent"}
GOALS = {"ingest_ratio": 0.6, "ingest_p99_ms": 50, "agent_to_bot_p99_ms": 200, "bot_to_agent_p99_ms": 150,
         "console_ms": 300, "web_worker_rss_mb": 150}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- machine and memory

def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def version_of(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except Exception:
        return "?"


def machine_info() -> dict:
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
    cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
    pkgs = {}
    for name in ("django", "djangorestframework", "gunicorn", "celery", "psycopg", "redis"):
        try:
            from importlib.metadata import version

            pkgs[name] = version(name)
        except Exception:
            pkgs[name] = "?"
    return {
        "nproc": os.cpu_count(), "cpu": cpu[1].strip() if cpu else "?", "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(), "python": platform.python_version(), **pkgs,
        "postgresql": version_of(["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "SHOW server_version"]),
        "redis_server": version_of(["redis-cli", "-h", "127.0.0.1", "INFO", "server"]) and _redis_version(),
        "wrk": version_of(["wrk", "--version"]).split(" [")[0],
        "load_before": loadavg(),
    }


def _redis_version() -> str:
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "INFO", "server"], capture_output=True, text=True).stdout
    match = re.search(r"redis_version:(\S+)", out)
    return match[1] if match else "?"


class MemorySampler(threading.Thread):
    """Peak RSS (VmHWM, kB) of each process under the given roots, polled twice a second (a
    process's own VmHWM is its peak, so polling only needs to see it before it exits)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.roots: dict[str, int] = {}
        self.peaks: dict[str, dict[int, int]] = {}
        self._halt = threading.Event()

    def watch(self, role: str, pid: int) -> None:
        self.roots[role] = pid

    @staticmethod
    def _children() -> dict[int, list[int]]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        return children

    @staticmethod
    def _hwm(pid: int) -> int | None:
        try:
            match = re.search(r"VmHWM:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        except OSError:
            return None
        return int(match[1]) if match else None

    def sample(self) -> None:
        children = self._children()
        for role, root in list(self.roots.items()):
            pids = [(f"{role}-main", root)] + [(f"{role}-child", c) for c in children.get(root, [])]
            for label, pid in pids:
                hwm = self._hwm(pid)
                if hwm:
                    bucket = self.peaks.setdefault(label, {})
                    bucket[pid] = max(bucket.get(pid, 0), hwm)

    def run(self):
        while not self._halt.wait(0.5):
            self.sample()

    def stop(self) -> dict:
        self._halt.set()
        self.sample()
        return {label: round(max(pids.values()) / 1024, 1) for label, pids in self.peaks.items() if pids}


class CpuMeter:
    """CPU time (user + system) that the stack itself spends, between two readings: the process
    trees of gunicorn and of the Celery worker (exited children count through their parent),
    and the PostgreSQL backends serving the benchmark's database. On a shared machine, wall-clock
    figures depend on the neighbours; CPU per request much less so."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, stack):
        self.stack = stack

    @staticmethod
    def _stat(pid: int) -> list[str] | None:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None

    def _tree(self, root: int) -> float:
        children = MemorySampler._children()
        total, todo, first = 0.0, [root], True
        while todo:
            pid = todo.pop()
            fields = self._stat(pid)
            if fields:
                ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if first else 0)
                total += ticks / self.TICK
            first = False
            todo.extend(children.get(pid, []))
        return total

    def read(self) -> dict[str, dict[int, float] | float]:
        reading: dict = {}
        for name in ("web", "worker"):
            service = self.stack.services.get(name)
            if service is not None and service.alive:
                reading[name] = self._tree(service.pid)
        db = self.stack.database.name
        pids = [row[0] for row in self.stack.database.sql(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (db,))]
        backends = {}
        for pid in pids:
            fields = self._stat(pid)
            if fields:
                backends[pid] = (int(fields[11]) + int(fields[12])) / self.TICK
        reading["postgres"] = backends
        return reading

    @staticmethod
    def diff(before: dict, after: dict) -> dict[str, float]:
        out = {}
        for name in ("web", "worker"):
            if name in after:
                out[name] = after[name] - before.get(name, after[name])
        out["postgres"] = sum(t - before["postgres"].get(pid, 0.0) for pid, t in after["postgres"].items())
        return out

    def per(self, before: dict, after: dict, count: int) -> dict[str, float]:
        """CPU milliseconds per unit of work, by process kind, and their total."""
        spent = self.diff(before, after)
        result = {f"{name}_ms": round(seconds * 1000 / max(count, 1), 2) for name, seconds in spent.items()}
        result["total_ms"] = round(sum(spent.values()) * 1000 / max(count, 1), 2)
        return result


# ---------------------------------------------------------------- setup through the product's own API

class Bench:
    def __init__(self, stack: BenchStack, args):
        self.stack, self.args = stack, args
        self.web = stack.web_url
        self.http = requests.Session()
        self.cpu = CpuMeter(stack)

    def create_integration(self, receiver_url: str) -> None:
        sandbox = self.stack.sandbox
        self.integration = self.stack.create_integration(
            callback_url=receiver_url, tenant="bench", name="bench", webhook_secret=WEBHOOK_SECRET, org=sandbox)
        self.api = {"Authorization": f"Bearer {self.integration['api_key']}"}
        self.webhook_url = self.web + f"/webhooks/livechat/{self.integration['integration_id']}/"

    def webhook(self, action: str, payload: dict, webhook_id: str = "") -> dict:
        return {"webhook_id": webhook_id or f"wh_{time.time_ns()}", "secret_key": WEBHOOK_SECRET, "action": action,
                "organization_id": self.stack.sandbox["organization_id"], "payload": payload, "additional_data": {}}

    def open_sessions(self, prefix: str, count: int) -> list[dict]:
        """`count` sessions started through POST /api/v1/sessions (real chats in the sandbox),
        each assigned to the bench agent by a user_added_to_chat webhook."""
        sessions = []
        for i in range(count):
            body = {"conversation_id": f"{prefix}-{i}", "user": {"external_id": f"{prefix}-user-{i}",
                                                                 "name": f"User {i}"}, "title": "Bench handoff"}
            response = self.http.post(self.web + "/api/v1/sessions", json=body, headers=self.api, timeout=30)
            response.raise_for_status()
            session = response.json()
            chat = requests.get(self.stack.sandbox["url"] + f"/_sandbox/chats/{session['livechat_chat_id']}",
                                timeout=10).json()
            thread_id = chat["threads"][-1]["id"]
            joined = self.http.post(self.webhook_url, json=self.webhook("user_added_to_chat", {
                "chat_id": session["livechat_chat_id"], "thread_id": thread_id, "user": AGENT, "user_type": "agent",
                "reason": "manual", "requester_id": AGENT["id"]}), timeout=10)
            joined.raise_for_status()
            sessions.append({"id": session["id"], "chat_id": session["livechat_chat_id"], "thread_id": thread_id})
        return sessions

    def incoming_event(self, session: dict, event_id: str, text: str) -> dict:
        return self.webhook("incoming_event", {
            "chat_id": session["chat_id"], "thread_id": session["thread_id"],
            "event": {"id": event_id, "created_at": "2025-08-11T09:41:03.877000Z", "visibility": "all",
                      "type": "message", "text": text, "author_id": AGENT["id"], "properties": {}}}, f"wh_{event_id}")

    # ---- 1. webhook ingest
    def render_lua(self, sessions: list[dict]) -> Path:
        chats = ",".join(f'{{"{s["chat_id"]}","{s["thread_id"]}"}}' for s in sessions)
        head = (f'chats = {{{chats}}}\nsecret = "{WEBHOOK_SECRET}"\n'
                f'org = "{self.stack.sandbox["organization_id"]}"\n')
        path = self.stack.workdir / "webhook.lua"
        path.write_text(head + (Path(__file__).parent / "webhook.lua").read_text())
        return path

    def wrk(self, url: str, lua: Path, prefix: str, seconds: int) -> dict:
        cmd = ["wrk", "-t2", f"-c{self.args.connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(lua), url,
               "--", prefix]
        before = self.cpu.read()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        after = self.cpu.read()
        line = next(l for l in out.splitlines() if l.startswith("WRKJSON "))
        raw = json.loads(line[len("WRKJSON "):])
        errors = sum(v for k, v in raw.items() if k.startswith("errors_"))
        return {"rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1), "requests": raw["requests"],
                "p50_ms": round(raw["p50_us"] / 1000, 1), "p90_ms": round(raw["p90_us"] / 1000, 1),
                "p99_ms": round(raw["p99_us"] / 1000, 1), "max_ms": round(raw["max_us"] / 1000, 1),
                "errors": errors, "cpu_per_request": self.cpu.per(before, after, raw["requests"])}

    def ingest(self, sessions: list[dict]) -> dict:
        lua = self.render_lua(sessions)
        bare_url = self.web + "/bench/bare/"
        seconds, warm = self.args.seconds, max(3, self.args.seconds // 4)
        log(f"webhook ingest: warm-up {warm} s each, then {seconds} s each at {self.args.connections} connections")
        self.wrk(bare_url, lua, "wb", warm)
        self.wrk(self.webhook_url, lua, "wc", warm)
        result = {"connections": self.args.connections, "seconds": seconds, "sessions": len(sessions)}
        # Interleaved, twice: a neighbour's burst hits both sides alike; the better run of each counts.
        runs = {"bare": [], "console": []}
        for round_ in range(self.args.rounds):
            runs["bare"].append(self.wrk(bare_url, lua, f"b{round_}", seconds))
            runs["console"].append(self.wrk(self.webhook_url, lua, f"c{round_}", seconds))
        for side, side_runs in runs.items():
            best = max(side_runs, key=lambda r: r["rps"])
            result[side] = {**best, "runs_rps": [r["rps"] for r in side_runs]}
        result["ratio"] = round(result["console"]["rps"] / result["bare"]["rps"], 2)
        # What the ratio would be on a machine where the stack had the CPUs to itself.
        result["cpu_cost_ratio"] = round(result["bare"]["cpu_per_request"]["total_ms"]
                                         / max(result["console"]["cpu_per_request"]["total_ms"], 0.01), 2)
        return result

    def apply_backlog(self, cap: float) -> dict:
        """The other half of ingest: the worker applying the receipts the web tier accepted (rows,
        audit, the bot's callbacks sent), at saturation, for at most `cap` seconds. Run right
        after the worker starts, with the tasks ingest queued still in the broker."""
        pending_sql = "SELECT count(*) FROM bridge_webhookreceipt WHERE processed_at IS NULL"
        backlog = self.stack.sql(pending_sql)[0][0]
        before, started = self.cpu.read(), time.monotonic()
        left = backlog
        while left and time.monotonic() - started < cap:
            time.sleep(0.5)
            left = self.stack.sql(pending_sql)[0][0]
        elapsed, applied = time.monotonic() - started, backlog - left
        log(f"worker applied {applied} of {backlog} accepted webhooks in {elapsed:.1f} s")
        return {"backlog": backlog, "applied": applied, "seconds": round(elapsed, 1),
                "per_s": round(applied / elapsed, 1), "cpu_per_webhook": self.cpu.per(before, self.cpu.read(), applied)}

    def settle(self, quiet: float = 0.05, timeout: float = 30.0) -> None:
        """Waits until the worker has finished what it had in hand (under `quiet` CPU seconds per
        second), so the next phase does not share the CPUs with the last one's leftovers."""
        deadline = time.monotonic() + timeout
        before = self.cpu.read().get("worker", 0.0)
        while time.monotonic() < deadline:
            time.sleep(1)
            now = self.cpu.read().get("worker", 0.0)
            if now - before < quiet:
                return
            before = now
        log("the worker did not settle; going on")

    # ---- 2. agent → bot
    def agent_to_bot(self, sessions: list[dict]) -> dict:
        rate, seconds = self.args.rate, self.args.seconds
        record = self.stack.receiver["record"]

        def build(prefix):
            def make(i):
                event_id = f"{prefix}{i}"
                session = sessions[i % len(sessions)]
                return event_id, "POST", self.webhook_url, None, self.incoming_event(session, event_id, f"Reply {i}")
            return make

        log(f"agent → bot: warm-up 5 s, then {seconds} s at {rate}/s")
        paced(rate=rate, duration=5, build=build("a2bw"))
        self._drain("SELECT count(*) FROM bridge_delivery WHERE state IN ('pending', 'delivering')")
        offset = record.stat().st_size
        before = self.cpu.read()
        sent = paced(rate=rate, duration=seconds, build=build("a2b"))
        wanted = {s.key: s for s in sent if s.status == 200}
        arrivals = self._wait_records(record, offset, "event_id", set(wanted))
        cpu = self.cpu.per(before, self.cpu.read(), len(sent))
        latencies = [(arrivals[k]["t"] - wanted[k].started) * 1000 for k in wanted if k in arrivals]
        return {"rate": rate, "seconds": seconds, "sent": len(sent), "accepted": len(wanted),
                "delivered": len(latencies), "signatures_ok": all(arrivals[k]["ok"] for k in arrivals),
                **self._stats(latencies), "webhook_p99_ms": _ms(percentile([s.finished - s.started for s in sent], 99)),
                "cpu_per_message": cpu}

    # ---- 3. bot → agent
    def bot_to_agent(self, sessions: list[dict]) -> dict:
        rate, seconds = self.args.rate, self.args.seconds
        record = self.stack.sandbox["record"]

        def build(prefix):
            def make(i):
                session = sessions[i % len(sessions)]
                text = f"{prefix}-{i}"
                return (text, "POST", self.web + f"/api/v1/sessions/{session['id']}/messages", self.api,
                        {"type": "text", "text": text, "external_id": text})
            return make

        log(f"bot → agent: warm-up 5 s, then {seconds} s at {rate}/s")
        paced(rate=rate, duration=5, build=build("b2aw"))
        self._drain("SELECT count(*) FROM bridge_message WHERE direction = 'to_agent' "
                    "AND delivery_state IN ('pending', 'sending')")
        offset = record.stat().st_size
        before = self.cpu.read()
        sent = paced(rate=rate, duration=seconds, build=build("b2a"))
        wanted = {s.key: s for s in sent if s.status == 202}
        arrivals = self._wait_records(record, offset, "text", set(wanted))
        cpu = self.cpu.per(before, self.cpu.read(), len(sent))
        latencies = [(arrivals[k]["t"] - wanted[k].started) * 1000 for k in wanted if k in arrivals]
        return {"rate": rate, "seconds": seconds, "sent": len(sent), "accepted": len(wanted),
                "delivered": len(latencies), **self._stats(latencies),
                "api_p99_ms": _ms(percentile([s.finished - s.started for s in sent], 99)), "cpu_per_message": cpu}

    def _drain(self, count_sql: str, timeout: float = 120.0) -> None:
        """Waits until the outbox is empty (the sessions' opening callbacks, the warm-up), so
        the measured messages do not queue behind them."""
        deadline = time.monotonic() + timeout
        while self.stack.sql(count_sql)[0][0] and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)

    @staticmethod
    def _wait_records(path: Path, offset: int, field: str, keys: set, timeout: float = 20.0) -> dict:
        deadline, found = time.monotonic() + timeout, {}
        while time.monotonic() < deadline:
            with open(path) as f:
                f.seek(offset)
                for line in f:
                    if line.endswith("\n"):
                        row = json.loads(line)
                        if row.get(field) in keys:
                            found.setdefault(row[field], row)
            if len(found) >= len(keys):
                break
            time.sleep(0.5)
        return found

    @staticmethod
    def _stats(latencies: list[float]) -> dict:
        return {"p50_ms": _r(percentile(latencies, 50)), "p99_ms": _r(percentile(latencies, 99)),
                "max_ms": _r(max(latencies) if latencies else None)}

    # ---- 4. the console at scale
    def seed(self, first: int, last: int) -> dict:
        log(f"seeding sessions {first}..{last - 1}")
        out = subprocess.run([PYTHON, "-m", "bench.seed", "--from", str(first), "--to", str(last)], cwd=ROOT,
                             env=self.stack.env, capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def console(self) -> dict:
        out = subprocess.run([PYTHON, "-m", "bench.console", "--repeat", str(self.args.repeat)], cwd=ROOT,
                             env=self.stack.env_with(AXES_ENABLED="false"), capture_output=True, text=True)
        if out.returncode:
            raise RuntimeError(out.stderr[-3000:])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def console_http(self, pages: dict, cookie: str) -> dict:
        """The same pages through gunicorn (the web worker's memory sees them too)."""
        session = requests.Session()
        session.cookies.set("sessionid", cookie)
        result = {}
        for name, page in pages.items():
            session.get(self.web + page["url"], timeout=60)
            times, status = [], None
            for _ in range(self.args.repeat):
                started = time.perf_counter()
                response = session.get(self.web + page["url"], timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                status = response.status_code
            result[name] = {"status": status, "ms_p50": _r(sorted(times)[len(times) // 2]), "ms_max": _r(max(times))}
        return result


def _r(value):
    return None if value is None else round(value, 1)


def _ms(seconds):
    return None if seconds is None else round(seconds * 1000, 1)


def gunicorn_config() -> dict:
    conf = runpy.run_path(str(ROOT / "hitl_project" / "gunicorn.conf.py"))
    return {k: conf.get(k) for k in ("workers", "worker_class", "threads", "max_requests", "keepalive") if k in conf}


# ---------------------------------------------------------------- report

def goals(result: dict) -> list[dict]:
    g, rows = GOALS, []
    ingest = result.get("webhook_ingest")
    if ingest:
        rows.append({"goal": f"webhook ingest ≥ {g['ingest_ratio']} × bare req/s", "value": ingest["ratio"],
                     "met": ingest["ratio"] >= g["ingest_ratio"]})
        p99 = ingest["console"]["p99_ms"]
        rows.append({"goal": f"webhook p99 < {g['ingest_p99_ms']} ms at {ingest['connections']} connections",
                     "value": p99, "met": p99 < g["ingest_p99_ms"]})
    for key, limit in (("agent_to_bot", "agent_to_bot_p99_ms"), ("bot_to_agent", "bot_to_agent_p99_ms")):
        part = result.get(key)
        if part:
            ok = part["p99_ms"] is not None and part["p99_ms"] < g[limit] and part["delivered"] == part["accepted"]
            rows.append({"goal": f"{key.replace('_to_', ' → ')} p99 < {g[limit]} ms at {part['rate']}/s",
                         "value": part["p99_ms"], "met": ok})
    scale = result.get("console")
    if scale and "100k" in scale:
        big, small = scale["100k"]["pages"], scale.get("10k", {}).get("pages", {})
        for name in ("session_list_filtered", "session_detail", "overview"):
            page = big[name]
            constant = name not in small or small[name]["queries"] == page["queries"]
            rows.append({"goal": f"{name} < {g['console_ms']} ms, constant queries", "value": page["ms_p50"],
                         "queries": page["queries"], "met": page["ms_p50"] < g["console_ms"] and constant})
    memory = result.get("memory_mb", {})
    if "web-child" in memory:
        rows.append({"goal": f"web worker < {g['web_worker_rss_mb']} MB RSS", "value": memory["web-child"],
                     "met": memory["web-child"] < g["web_worker_rss_mb"]})
    return rows


def table(result: dict) -> str:
    lines = []
    m = result["machine"]
    lines.append(f"machine: {m['nproc']} CPU, {m['memory_gib']} GiB, load {m['load_before']} → {m.get('load_after')}")
    ingest = result.get("webhook_ingest")
    if ingest:
        lines.append(f"{'webhook ingest':28} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU ms/req':>11}")
        for side in ("bare", "console"):
            r = ingest[side]
            lines.append(f"  {side:26} {r['rps']:>8} {r['p50_ms']:>8} {r['p99_ms']:>8} {r['errors']:>7}"
                         f" {r['cpu_per_request']['total_ms']:>11}")
        lines.append(f"  ratio console/bare: {ingest['ratio']} (CPU cost ratio {ingest['cpu_cost_ratio']})")
        applied = ingest.get("worker")
        if applied:
            lines.append(f"  then the worker applied {applied['per_s']} webhooks/s ({applied['applied']} of"
                         f" {applied['backlog']} in {applied['seconds']} s; CPU {applied['cpu_per_webhook']['total_ms']}"
                         " ms/webhook incl. the callback)")
    for key in ("agent_to_bot", "bot_to_agent"):
        r = result.get(key)
        if r:
            lines.append(f"{key.replace('_to_', ' → '):28} p50 {r['p50_ms']} ms  p99 {r['p99_ms']} ms  max {r['max_ms']} ms"
                         f"  ({r['delivered']}/{r['accepted']} at {r['rate']}/s; CPU {r['cpu_per_message']['total_ms']} ms/msg)")
    scale = result.get("console")
    if scale:
        sizes = [k for k in ("10k", "100k") if k in scale]
        lines.append(f"{'console page':30}" + "".join(f"{s + ' ms':>10}{'q':>4}" for s in sizes)
                     + (f"{'http ms':>10}" if "http" in scale else ""))
        for name in scale[sizes[-1]]["pages"]:
            row = f"  {name:28}"
            for s in sizes:
                p = scale[s]["pages"].get(name, {})
                row += f"{p.get('ms_p50', ''):>10}{p.get('queries', ''):>4}"
            if "http" in scale:
                row += f"{scale['http'].get(name, {}).get('ms_p50', ''):>10}"
            lines.append(row)
    memory = result.get("memory_mb")
    if memory:
        lines.append("peak RSS MB: " + ", ".join(f"{k} {v}" for k, v in sorted(memory.items())))
    for goal in result.get("goals", []):
        lines.append(f"  [{'met ' if goal['met'] else 'MISS'}] {goal['goal']}: {goal['value']}")
    return "\n".join(lines)


# ---------------------------------------------------------------- main

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="measured seconds per load phase (default 20)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved wrk rounds per side (default 2)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=float, default=50.0, help="messages/s of the latency phases")
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions for the console phase")
    parser.add_argument("--repeat", type=int, default=5, help="timed requests per console page")
    parser.add_argument("--skip", action="append", default=[], choices=["ingest", "latency", "console"])
    parser.add_argument("--worker-concurrency", type=int, help="Celery worker processes (default: the settings)")
    parser.add_argument("--json-out", type=Path, help="also write the JSON object here")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) after a good run")
    args = parser.parse_args(argv)

    if not shutil.which("wrk"):
        subprocess.run(["bash", str(ROOT / "bench" / "install-tools.sh")], check=True)
    workdir = Path(tempfile.mkdtemp(prefix="hitl-bench-"))
    result: dict = {"machine": machine_info(), "config": {"gunicorn": gunicorn_config(), **{
        k: getattr(args, k) for k in ("seconds", "rounds", "connections", "rate", "sessions", "repeat")}}}
    if result["machine"]["load_before"][0] > 0.5 * (os.cpu_count() or 1):
        log(f"the machine is busy (load {result['machine']['load_before']}): figures will be lower")
    sampler = MemorySampler()
    ok = False
    try:
        with BenchStack(workdir) as stack:
            log(f"work directory {workdir}")
            stack.flush_broker()
            stack.create_database()
            stack.start_bench_sandbox()
            receiver_port = free_port()
            bench = Bench(stack, args)
            bench.create_integration(f"http://127.0.0.1:{receiver_port}/callbacks")
            stack.start_receiver([bench.integration["callback_secret"]], port=receiver_port)
            web = stack.start_bench_web()
            sampler.watch("web", web.pid)
            sampler.start()
            n = 64
            log(f"opening {n} + 2×20 sessions through the API")
            ingest_sessions = bench.open_sessions("ingest", n)
            latency_sessions = bench.open_sessions("latency", 20)
            outbound_sessions = bench.open_sessions("outbound", 20)
            worker = stack.start_bench_worker(args.worker_concurrency)
            sampler.watch("celery", worker.pid)
            match = re.search(r"concurrency: (\d+ \(\w+\))", worker.log_since_start())
            result["config"]["celery_worker"] = match[1] if match else "?"
            # The latency phases first, on processes that have served nothing else yet: the
            # ingest phase's tens of thousands of requests recycle gunicorn workers
            # (max_requests) and leave tables autovacuum would be busy with.
            if "latency" not in args.skip:
                result["agent_to_bot"] = bench.agent_to_bot(latency_sessions)
                result["bot_to_agent"] = bench.bot_to_agent(outbound_sessions)
            if "ingest" not in args.skip:
                worker.stop()  # the web tier alone; what the webhooks queue waits for the worker
                result["webhook_ingest"] = bench.ingest(ingest_sessions)
                worker.start()
                sampler.watch("celery", worker.pid)
                result["webhook_ingest"]["worker"] = bench.apply_backlog(cap=max(10.0, args.seconds))
                # What the ingest left is not part of what follows.
                stack.flush_broker()
                stack.sql("UPDATE bridge_webhookreceipt SET processed_at = now(), outcome = 'ignored' "
                          "WHERE processed_at IS NULL")
                stack.sql("UPDATE bridge_delivery SET state = 'delivered', delivered_at = now() "
                          "WHERE session_id IN (SELECT id FROM bridge_hitlsession WHERE conversation_id LIKE 'ingest-%%')")
                bench.settle()
            if "console" not in args.skip:
                scale = result["console"] = {}
                small = max(1, args.sessions // 10)
                scale["seed_10k"] = bench.seed(0, small)
                scale["10k"] = bench.console()
                log(f"console at {small} sessions: " + ", ".join(
                    f"{k} {v['ms_p50']} ms/{v['queries']} q" for k, v in scale["10k"]["pages"].items()))
                scale["seed_100k"] = bench.seed(small, args.sessions)
                scale["100k"] = bench.console()
                scale["http"] = bench.console_http(scale["100k"]["pages"], scale["100k"].pop("cookie"))
                scale["10k"].pop("cookie", None)
                scale["rows"] = stack.counts()
            result["memory_mb"] = sampler.stop()
            result["machine"]["load_after"] = loadavg()
            result["goals"] = goals(result)
            ok = True
    finally:
        if not ok or args.keep:
            log(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(result)
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
