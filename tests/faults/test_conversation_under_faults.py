"""Proof under faults: a 200-message conversation in both directions through real processes while
LiveChat, the bot, the worker, the web process and the scheduler fail.

Processes (tests/plugins/stack.py, all on 127.0.0.1): a PostgreSQL database of its own
(hitl_faults_<pid>, created, migrated and dropped here), Redis as the broker, gunicorn serving
the production settings module (DEBUG off), a Celery worker and beat, the LiveChat sandbox; the
bot's callback endpoint is a thread of this process. The bot speaks the public API only; the
agent types through the sandbox's agent route; LiveChat sends every webhook 3 times.

Timeline, in seconds after the conversation starts (the bot sends a message and the agent a
reply every ~0.25 s; the bot's last 50 wait for the crash phase):
   3  LiveChat's send_event fails: 4 x 503 service_unavailable, 4 x 429 too_many_requests, then
      one call takes 15 s: the console gives up after its 10 s timeout, LiveChat stores the
      event all the same
   8  the bot's callback endpoint goes down (connection refused) for 20 s (a minute in the
      brief; shortened to keep the suite short)
  28  the endpoint is back but answers 500 for 15 s, then 200
 ~42  (once the slow call has landed) LiveChat expires the customer's token
 ~45  crash phase: the bot's endpoint answers slowly (1 s) and one more send_event takes 15 s;
      as soon as a message and a callback are in flight the worker gets SIGKILL (its rows stay
      claimed for the 2-minute lease); restarted 3 s later
 ~55  gunicorn restarted (SIGTERM, start again; the bot retries its requests meanwhile), then
      celery beat (the scheduler)
Retry schedules are compressed for the run (LIVECHAT_/CALLBACK_RETRY_SCHEDULE: 1,1,2,2,3,3, then
5 s steps for ~3 minutes), long enough to outlast every outage, including the 2-minute claim
lease a killed worker leaves on the row it held.

Then: every user message is in the LiveChat chat exactly once and in order; every agent message
is stored once and reached the bot (acknowledged) at least once, under one stable webhook-id,
in the session's callback order; nothing is pending, failed or dead-lettered.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import Counter

import pytest
import requests

from tests.plugins.stack import SANDBOX_ORG, CallbackReceiver, Stack

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(600)]

N = 200
PACE = 0.25  # seconds between two messages of one side
AGENT = SANDBOX_ORG["agent_ids"][0]
RETRY_SCHEDULE = ",".join(["1", "1", "2", "2", "3", "3"] + ["5"] * 36)  # ~3 min 10 s of retries
DRAIN_TIMEOUT = 300.0
HTTP_TIMEOUT = 30


@pytest.fixture(scope="module")
def stack():
    env = {"LIVECHAT_RETRY_SCHEDULE": RETRY_SCHEDULE, "CALLBACK_RETRY_SCHEDULE": RETRY_SCHEDULE}
    with Stack("faults", env=env) as stack:
        stack.create_database()
        stack.start_sandbox()
        stack.start_web(workers=3)
        stack.start_worker(concurrency=4)
        stack.start_beat()
        yield stack


@pytest.fixture
def receiver():
    receiver = CallbackReceiver().start()
    yield receiver
    receiver.stop()


class Bot:
    """The bot's side of the public API: retries what failed in transit (connection refused while
    gunicorn restarts, 5xx, 429), as a careful bot does; the message `external_id` makes a retry
    harmless."""

    def __init__(self, base_url: str, api_key: str):
        self.api = base_url + "/api/v1"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {api_key}"
        self.retries = 0

    def post(self, path: str, body: dict, *, key: str | None = None, within: float = 90.0) -> dict:
        deadline = time.monotonic() + within
        while True:
            try:
                response = self.http.post(self.api + path, json=body, timeout=HTTP_TIMEOUT,
                                          headers={"Idempotency-Key": key} if key else {})
                if response.status_code < 300:
                    return response.json()
                in_progress = response.status_code == 409 and (
                    response.json().get("error", {}).get("details", {}).get("in_progress"))
                if response.status_code < 500 and response.status_code != 429 and not in_progress:
                    raise AssertionError(f"POST {path}: HTTP {response.status_code} {response.text[:300]}")
                problem = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                problem = type(exc).__name__
            self.retries += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"POST {path} still failing after {within:.0f} s: {problem}")
            time.sleep(0.5)


def in_thread(target, *args) -> tuple[threading.Thread, list]:
    errors: list = []

    def run():
        try:
            target(*args)
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def signed_correctly(hit, secret: str) -> bool:
    """Standard Webhooks signature check without the freshness window (hits are checked after
    the run, minutes after they arrived)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{hit.webhook_id}.{hit.headers.get('webhook-timestamp')}.".encode() + hit.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return expected in hit.headers.get("webhook-signature", "").split()


def test_a_200_message_conversation_survives_faults(stack, receiver, fault_summary):
    started = time.monotonic()
    sandbox, web, db = stack.services["sandbox"], stack.services["web"], stack.database

    def control(path: str, **body):
        response = requests.post(f"{sandbox.url}/_sandbox/{path}", json=body, timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, f"sandbox {path}: {response.text[:300]}"
        return response.json()

    def livechat_calls(action: str) -> list[dict]:
        """The sandbox's log of the console's calls of one LiveChat method ("token" included)."""
        return requests.get(f"{sandbox.url}/_sandbox/requests", params={"action": action},
                            timeout=HTTP_TIMEOUT).json()

    # ---- set up: an integration whose webhooks LiveChat sends 3 times each
    integration = stack.create_integration(callback_url=receiver.url)
    stack.register_webhooks(integration["integration_id"])
    control("settings", webhook_copies=3, webhook_retry_delays=[1, 2, 4, 8, 15])
    bot = Bot(web.url, integration["api_key"])
    user = bot.post("/users", {"external_id": "u-faults", "name": "Fault Tester"})
    session = bot.post("/sessions", {"conversation_id": "conv-faults", "user_id": user["id"],
                                     "title": "Fault suite"}, key="start-conv-faults")
    session_id, chat_id = session["id"], session["livechat_chat_id"]
    assert chat_id, session

    # ---- the conversation, both ways, while the faults happen
    # The last quarter of the user's messages waits for the crash phase, so one of them is inside
    # LiveChat's slow send_event when the worker is killed.
    crash_phase = threading.Event()

    def user_side():
        for i in range(N):
            if i == N * 3 // 4:
                assert crash_phase.wait(120), "the crash phase never came"
            bot.post(f"/sessions/{session_id}/messages",
                     {"type": "text", "text": f"user-{i:03d}", "external_id": f"u-{i:03d}"})
            time.sleep(PACE)

    def agent_side():
        for i in range(N):
            control(f"chats/{chat_id}/message", agent_id=AGENT, text=f"agent-{i:03d}")
            time.sleep(PACE)

    zero = time.monotonic()
    drivers = [in_thread(user_side), in_thread(agent_side)]
    timeline: list[str] = []

    def note(what: str):
        timeline.append(f"{time.monotonic() - zero:.0f}s {what}")

    def at(seconds: float, what: str):
        time.sleep(max(0.0, zero + seconds - time.monotonic()))
        note(what)

    def wait_for(what: str, predicate, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.1)
        note(f"gave up waiting for {what}")
        return False

    at(3, "send_event faults: 4 x 503, 4 x 429, one 15 s call")
    control("faults", method="send_event", count=4, error_type="service_unavailable", status=503)
    control("faults", method="send_event", count=4, error_type="too_many_requests", status=429)
    control("faults", method="send_event", count=1, delay=15)
    at(8, "bot endpoint down")
    receiver.stop()
    at(28, "bot endpoint back, answering 500 for 15 s")
    receiver.fail(500, seconds=15)
    receiver.start()
    # The slow call stores its event after the console gave up on it; a token expiring before it
    # lands would turn it into a 401 and hide what it tests, so the token expires after it.
    wait_for("the slow send_event", lambda: any(r["duration_ms"] >= 14000 for r in livechat_calls("send_event")), 40)
    note("customer token expired")
    tokens_before = len(livechat_calls("token"))
    assert control("tokens/expire")["expired"] >= 1
    wait_for("a renewed token", lambda: len(livechat_calls("token")) > tokens_before, 20)
    note("slow bot, one more 15 s send_event; waiting for a message and a callback in flight")
    receiver.delay = 1.0
    control("faults", method="send_event", count=1, delay=15)
    crash_phase.set()
    in_flight = (0, 0)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        # A message claimed over a second ago is inside the slow send_event.
        in_flight = db.sql(
            "select (select count(*) from bridge_message where delivery_state = 'sending'"
            "         and next_attempt_at < now() + interval '119 seconds'),"
            " (select count(*) from bridge_delivery where state = 'delivering')")[0]
        if all(in_flight):
            break
        time.sleep(0.05)
    stack.services["worker"].kill()
    note(f"worker SIGKILLed with {in_flight[0]} message(s) and {in_flight[1]} callback(s) in flight")
    receiver.delay = 0.0
    time.sleep(3)
    stack.services["worker"].start()
    note("worker restarted; gunicorn restart")
    web.restart()
    note("gunicorn back; beat restart")
    stack.services["beat"].restart()
    note("beat back")
    for thread, _ in drivers:
        thread.join(timeout=240)
    for thread, errors in drivers:
        assert not thread.is_alive(), "a conversation driver is stuck"
        assert not errors, errors
    note(f"all {N}+{N} messages sent")

    # ---- drain: wait until both ways are complete and no row is waiting any more
    def sandbox_user_texts() -> list[str]:
        chat = requests.get(f"{sandbox.url}/_sandbox/chats/{chat_id}", timeout=HTTP_TIMEOUT).json()
        return [event["text"] for thread in chat["threads"] for event in thread["events"]
                if event.get("type") == "message" and event.get("author_id") != AGENT
                and str(event.get("text", "")).startswith("user-")]

    def acked_agent_texts() -> set[str]:
        return {hit.json["data"]["message"]["text"] for hit in receiver.hits()
                if hit.status < 300 and hit.json["type"] == "agent.message"}

    def unfinished() -> tuple[int, int]:
        return db.sql("select (select count(*) from bridge_message where delivery_state in ('pending', 'sending')),"
                      " (select count(*) from bridge_delivery where state in ('pending', 'delivering'))")[0]

    deadline = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < deadline:
        if len(set(sandbox_user_texts())) >= N and len(acked_agent_texts()) >= N and unfinished() == (0, 0):
            break
        time.sleep(1)
    time.sleep(3)  # late duplicates, if any, would land now
    note("drained")

    # ---- what happened
    expected_user = [f"user-{i:03d}" for i in range(N)]
    expected_agent = [f"agent-{i:03d}" for i in range(N)]
    in_chat = sandbox_user_texts()
    user_dup = len(in_chat) - len(set(in_chat))
    user_lost = len(set(expected_user) - set(in_chat))

    stored = dict(db.sql("select text, count(*) from bridge_message where direction = 'to_bot' group by text"))
    stored_dup = sum(count - 1 for count in stored.values())
    deliveries = db.sql("select event_id, type, state, attempts from bridge_delivery where session_id = %s "
                        "order by id", (session_id,))
    delivery_order = [row[0] for row in deliveries]
    attempts = db.sql("select count(*) from bridge_deliveryattempt")[0][0]
    leftovers = dict(db.sql(
        "select 'messages ' || delivery_state, count(*) from bridge_message "
        " where delivery_state in ('pending', 'sending', 'failed') group by delivery_state "
        "union all select 'callbacks ' || state, count(*) from bridge_delivery "
        " where state in ('pending', 'delivering', 'dead') group by state"))

    hits = receiver.hits()
    badly_signed = [hit.webhook_id for hit in hits if not signed_correctly(hit, integration["callback_secret"])]
    ids_of_text: dict[str, set] = {}
    first_arrival: list[str] = []
    first_ack: list[str] = []
    acked: set[str] = set()
    redeliveries = 0
    for hit in hits:
        payload = hit.json
        assert payload["id"] == hit.webhook_id
        if hit.webhook_id not in first_arrival:
            first_arrival.append(hit.webhook_id)
        if hit.webhook_id in acked:
            redeliveries += 1
        if hit.status < 300 and hit.webhook_id not in acked:
            acked.add(hit.webhook_id)
            first_ack.append(hit.webhook_id)
        if payload["type"] == "agent.message":
            ids_of_text.setdefault(payload["data"]["message"]["text"], set()).add(hit.webhook_id)
    acked_texts = acked_agent_texts()
    dup_ids = sum(1 for ids in ids_of_text.values() if len(ids) > 1)
    agent_lost = len(set(expected_agent) - acked_texts)

    send_calls = Counter(r["status"] for r in livechat_calls("send_event"))
    webhook_tries = requests.get(f"{sandbox.url}/_sandbox/webhook_deliveries", timeout=HTTP_TIMEOUT).json()

    fault_summary(
        f"fault suite: user→agent sent={N} received={len(in_chat)} dup={user_dup} lost={user_lost} "
        f"in_order={in_chat == expected_user}; "
        f"agent→bot sent={N} stored={len(stored)} stored_dup={stored_dup} delivered={len(acked_texts)} "
        f"dup_ids={dup_ids} lost={agent_lost} in_order={first_ack == delivery_order}; "
        f"callbacks={len(deliveries)} attempts={attempts} receiver_hits={len(hits)} redeliveries={redeliveries}; "
        f"livechat send_event calls={sum(send_calls.values())} {dict(sorted(send_calls.items()))}; "
        f"webhook tries={len(webhook_tries)} (3 copies each); bot retries={bot.retries}; "
        f"leftovers={leftovers or 0}; {time.monotonic() - started:.0f}s; logs in {stack.log_dir}"
    )
    fault_summary("fault suite timeline: " + "; ".join(timeline))

    # ---- the guarantees
    assert all(in_flight), "the worker was not killed mid-delivery: the scenario's timing is off"
    assert in_chat == expected_user, "user messages in LiveChat: not exactly once and in order"
    assert sorted(stored) == expected_agent and stored_dup == 0, "agent messages not stored exactly once"
    assert acked_texts == set(expected_agent), f"{agent_lost} agent messages never reached the bot"
    assert dup_ids == 0, "an agent message reached the bot under two different webhook-ids"
    assert first_arrival == delivery_order, "callbacks did not first arrive in the session's order"
    assert first_ack == delivery_order, "callbacks were not acknowledged in the session's order"
    assert not badly_signed, f"callbacks with a bad signature: {badly_signed[:5]}"
    assert not leftovers, f"rows left behind: {leftovers}"
    assert [row[1] for row in deliveries[:2]] == ["session.started", "session.assigned"]
    assert all(row[2] == "delivered" for row in deliveries)
