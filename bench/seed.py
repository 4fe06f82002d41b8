"""Bulk data for the console at scale, generated inside PostgreSQL (INSERT … SELECT over
generate_series: no row passes through Python), so a million messages take seconds to a minute.

`python -m bench.seed --from 0 --to 10000` adds sessions 0..9999 (and their users, ~10 messages
each, audit events, callbacks and their attempts) to the benchmark's tenants, creating those
(20 tenants × 2 integrations, through the ORM so secrets are encrypted) on first use. Deterministic:
session g's shape depends on g only. Prints one JSON line: rows added and seconds taken.
"""
import argparse
import json
import os
import sys
import time

TENANTS = 20
INTEGRATIONS_PER_TENANT = 2
DAYS = 120
LONG_SESSION_MESSAGES = 500


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def ensure_tenants() -> None:
    from bridge.models import Integration, Tenant

    if Tenant.objects.filter(slug__startswith="agency-client-").exists():
        return
    for t in range(TENANTS):
        tenant = Tenant.objects.create(name=f"Agency client {t:02d}", slug=f"agency-client-{t:02d}")
        for i in range(INTEGRATIONS_PER_TENANT):
            Integration.objects.create(
                tenant=tenant, name=f"LiveChat {i}", client_id=f"client-{t}-{i}", organization_id=f"org-{t}-{i}",
                group_id=i, webhook_secret=f"secret-{t}-{i}", agent_token="YWdlbnQ6cGF0",
                callback_url="https://bot.example.com/callbacks", callback_secret="whsec_" + "A" * 32,
            )


# Integration number k (0..39) → id, in a temp table the statements below join on.
_INTEGRATIONS = """
CREATE TEMP TABLE IF NOT EXISTS bench_integ AS
SELECT (row_number() OVER (ORDER BY t.slug, i.name) - 1)::int AS k, i.id
FROM bridge_integration i JOIN bridge_tenant t ON t.id = i.tenant_id
WHERE t.slug LIKE 'agency-client-%%';
"""

# Session g belongs to user g/2; both to integration (g/2) %% n.
_USERS = """
INSERT INTO bridge_enduser (integration_id, external_id, name, email, picture_url, livechat_customer_id,
    customer_token, customer_token_expires_at, customer_cookies, created_at, updated_at)
SELECT bi.id, 'user-' || u, 'User ' || u, 'user' || u || '@example.com', '', md5('cust' || u)::uuid::text,
    '', NULL, '', now() - interval '130 days', now()
FROM generate_series(%(from)s / 2, (%(to)s - 1) / 2) AS u
JOIN bench_integ bi ON bi.k = u %% %(n)s
ON CONFLICT DO NOTHING;
"""

_SESSIONS = """
INSERT INTO bridge_hitlsession (id, integration_id, end_user_id, conversation_id, title, description, metadata,
    chat_id, thread_id, status, agent_id, agent_name, agent_avatar, created_at, assigned_at,
    first_agent_reply_at, closed_at, closed_by, close_reason, last_error, transcript_purged_at)
SELECT md5('session' || g)::uuid, bi.id, eu.id, 'conv-' || g,
    CASE WHEN g %% 3 = 0 THEN 'Refund for order ' || g ELSE '' END, '', '{"channel": "web"}'::jsonb,
    upper(substr(md5('chat' || g), 1, 10)), upper(substr(md5('thread' || g), 1, 10)),
    CASE WHEN g %% 50 = 0 THEN 'assigned' WHEN g %% 50 = 1 THEN 'waiting' WHEN g %% 100 = 2 THEN 'failed'
         ELSE 'closed' END,
    CASE WHEN g %% 50 = 1 OR g %% 100 = 2 THEN '' ELSE 'agent' || (g %% 30) || '@example.com' END,
    CASE WHEN g %% 50 = 1 OR g %% 100 = 2 THEN '' ELSE 'Agent ' || (g %% 30) END, '',
    c.created_at,
    CASE WHEN g %% 50 = 1 OR g %% 100 = 2 THEN NULL ELSE c.created_at + (20 + g %% 120) * interval '1 second' END,
    CASE WHEN g %% 5 = 0 OR g %% 50 = 1 OR g %% 100 = 2 THEN NULL
         ELSE c.created_at + (40 + g %% 300) * interval '1 second' END,
    CASE WHEN g %% 50 IN (0, 1) THEN NULL ELSE c.created_at + interval '20 minutes' END,
    CASE WHEN g %% 50 IN (0, 1) OR g %% 100 = 2 THEN '' ELSE 'agent' || (g %% 30) || '@example.com' END,
    '', '', NULL
FROM generate_series(%(from)s, %(to)s - 1) AS g
CROSS JOIN LATERAL (SELECT now() - ((g::bigint * 7919) %% (%(days)s * 86400)) * interval '1 second' AS created_at) c
JOIN bench_integ bi ON bi.k = (g / 2) %% %(n)s
JOIN bridge_enduser eu ON eu.integration_id = bi.id AND eu.external_id = 'user-' || (g / 2);
"""

# 5..15 messages per session (10 on average), inserted in time order across sessions as they
# would arrive; odd ones are the user's (to the agent, sent), even ones the agent's (received).
_MESSAGES = """
INSERT INTO bridge_message (session_id, direction, author, kind, text, url, payload, internal, agent_id,
    livechat_event_id, external_id, delivery_state, attempts, next_attempt_at, last_error, created_at, sent_at)
SELECT s.id,
    CASE WHEN m %% 2 = 1 THEN 'to_agent' ELSE 'to_bot' END,
    CASE WHEN m %% 2 = 1 THEN 'user' ELSE 'agent' END,
    'text',
    CASE WHEN m %% 2 = 1 THEN 'I still have a question about my order ' || m || ', can you check it?'
         ELSE 'Sure, let me look at that for you. One moment please (' || m || ').' END,
    '', CASE WHEN m %% 2 = 1 THEN '{}'::jsonb ELSE jsonb_build_object('agent_name', s.agent_name) END,
    false, CASE WHEN m %% 2 = 1 THEN '' ELSE s.agent_id END,
    s.thread_id || '_' || m,
    CASE WHEN m %% 2 = 1 THEN 'bot-msg-' || m ELSE NULL END,
    CASE WHEN m %% 2 = 1 THEN 'sent' ELSE 'received' END,
    CASE WHEN m %% 2 = 1 THEN 1 ELSE 0 END, NULL, '',
    s.created_at + m * interval '30 seconds',
    CASE WHEN m %% 2 = 1 THEN s.created_at + m * interval '30 seconds' ELSE NULL END
FROM bridge_hitlsession s
JOIN generate_series(%(from)s, %(to)s - 1) AS g ON s.id = md5('session' || g)::uuid
CROSS JOIN LATERAL generate_series(1, 5 + g %% 11) AS m
ORDER BY s.created_at + m * interval '30 seconds';
"""

_EVENTS = """
INSERT INTO bridge_sessionevent (session_id, kind, actor, summary, data, raw, dedupe_key, created_at)
SELECT s.id, e.kind, e.actor, e.summary, e.data, '{}'::jsonb, NULL, e.at
FROM bridge_hitlsession s
JOIN generate_series(%(from)s, %(to)s - 1) AS g ON s.id = md5('session' || g)::uuid
CROSS JOIN LATERAL (VALUES
    ('started', 'bot', 'LiveChat chat ' || s.chat_id || ' started', jsonb_build_object('chat_id', s.chat_id), s.created_at, true),
    ('assigned', s.agent_id, 'assigned to ' || s.agent_name,
        jsonb_build_object('agent', jsonb_build_object('id', s.agent_id, 'name', s.agent_name)), s.assigned_at,
        s.assigned_at IS NOT NULL),
    ('transferred', s.agent_id, 'transferred to group 1', '{"to": {"group_ids": [1], "agent_ids": []}}'::jsonb,
        s.created_at + interval '5 minutes', g %% 10 = 0),
    ('closed', s.closed_by, 'closed by ' || s.closed_by, jsonb_build_object('closed_by', s.closed_by), s.closed_at,
        s.closed_at IS NOT NULL)
) AS e(kind, actor, summary, data, at, present)
WHERE e.present
ORDER BY e.at;
"""

# started, assigned, one agent.message, closed: mostly delivered; every 200th dead, every 500th
# retrying. Each has one attempt row.
_DELIVERIES = """
INSERT INTO bridge_delivery (event_id, integration_id, session_id, type, payload, state, attempts, next_attempt_at,
    claimed_until, last_status, last_response, last_error, created_at, delivered_at)
SELECT 'evt_' || substr(md5('d' || g || '-' || d.n), 1, 24), s.integration_id, s.id, d.type,
    jsonb_build_object('type', d.type, 'data', jsonb_build_object('session_id', s.id, 'conversation_id', s.conversation_id)),
    CASE WHEN g %% 200 = 0 AND d.n = 4 THEN 'dead' WHEN g %% 500 = 3 AND d.n = 4 THEN 'pending' ELSE 'delivered' END,
    CASE WHEN g %% 200 = 0 AND d.n = 4 THEN 8 WHEN g %% 500 = 3 AND d.n = 4 THEN 2 ELSE 1 END,
    CASE WHEN g %% 500 = 3 AND d.n = 4 THEN now() + interval '1 hour' ELSE d.at END,
    NULL, CASE WHEN g %% 200 = 0 AND d.n = 4 THEN 500 ELSE 200 END, 'ok', '', d.at,
    CASE WHEN (g %% 200 = 0 OR g %% 500 = 3) AND d.n = 4 THEN NULL ELSE d.at END
FROM bridge_hitlsession s
JOIN generate_series(%(from)s, %(to)s - 1) AS g ON s.id = md5('session' || g)::uuid
CROSS JOIN LATERAL (VALUES
    (1, 'session.started', s.created_at, true),
    (2, 'session.assigned', s.assigned_at, s.assigned_at IS NOT NULL),
    (3, 'agent.message', s.first_agent_reply_at, s.first_agent_reply_at IS NOT NULL),
    (4, 'session.closed', s.closed_at, s.closed_at IS NOT NULL)
) AS d(n, type, at, present)
WHERE d.present
ORDER BY d.at;
"""

_ATTEMPTS = """
INSERT INTO bridge_deliveryattempt (delivery_id, number, status_code, duration_ms, response_body, error, created_at)
SELECT d.id, 1, d.last_status, 12, 'ok', '', d.created_at
FROM bridge_delivery d
WHERE d.id > %(after)s;
"""

# One long conversation (500 messages) for the transcript page's worst case.
_LONG = """
INSERT INTO bridge_message (session_id, direction, author, kind, text, url, payload, internal, agent_id,
    livechat_event_id, external_id, delivery_state, attempts, next_attempt_at, last_error, created_at, sent_at)
SELECT s.id, 'to_bot', 'agent', 'text', 'A long conversation, line ' || m, '', '{}'::jsonb, false, s.agent_id,
    'long_' || m, NULL, 'received', 0, NULL, '', s.created_at + m * interval '1 second', NULL
FROM bridge_hitlsession s, generate_series(1, %(long)s) AS m
WHERE s.id = md5('session' || %(g)s)::uuid;
"""


def seed(first: int, last: int) -> dict:
    from django.db import connection, transaction

    ensure_tenants()
    params = {"from": first, "to": last, "n": TENANTS * INTEGRATIONS_PER_TENANT, "days": DAYS,
              "long": LONG_SESSION_MESSAGES}
    counts, started = {}, time.monotonic()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_INTEGRATIONS)
        cursor.execute("SELECT coalesce(max(id), 0) FROM bridge_delivery")
        params["after"] = cursor.fetchone()[0]
        for name, sql in (("end_users", _USERS), ("sessions", _SESSIONS), ("messages", _MESSAGES),
                          ("events", _EVENTS), ("deliveries", _DELIVERIES), ("attempts", _ATTEMPTS)):
            t = time.monotonic()
            cursor.execute(sql, params)
            counts[name] = cursor.rowcount
            counts[f"{name}_s"] = round(time.monotonic() - t, 1)
        if first == 0:
            cursor.execute(_LONG, {**params, "g": 3})  # a closed, assigned session
            counts["messages"] += cursor.rowcount
    with connection.cursor() as cursor:
        # What autovacuum does to a table that grew this much: statistics for the planner and
        # the visibility map that lets index-only scans skip the heap.
        t = time.monotonic()
        cursor.execute("VACUUM ANALYZE")
        counts["vacuum_analyze_s"] = round(time.monotonic() - t, 1)
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--from", dest="first", type=int, required=True)
    parser.add_argument("--to", dest="last", type=int, required=True)
    args = parser.parse_args(argv)
    setup_django()
    print(json.dumps(seed(args.first, args.last)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
