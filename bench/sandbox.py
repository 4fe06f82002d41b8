"""The LiveChat sandbox for the benchmark, in its own process, noting when each customer
`send_event` arrives (what the agent would see): `python -m bench.sandbox --record FILE`.

Prints one JSON line on stdout once it listens: {"url", "organization_id", "client_id", "agent_token"}.
Each recorded line is {"t": time.time() on arrival, "text": the event's text}.
"""
import argparse
import json
import sys
import threading
import time

from bridge.livechat.sandbox import SandboxServer

ORG = {"organization_id": "bench-org", "client_id": "bench-client", "account_id": "bench@example.com",
       "pat": "bench-pat"}
AGENTS = [{"id": "agent@example.com", "name": "Bench Agent", "avatar": "https://cdn.example.com/a.png"}]


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", required=True)
    args = parser.parse_args(argv)
    server = SandboxServer("127.0.0.1", args.port, webhook_timeout=5.0, webhook_retry_delays=())
    token = server.add_organization(ORG["organization_id"], ORG["client_id"], ORG["account_id"], ORG["pat"],
                                    group_ids=[0], agents=AGENTS)
    out = open(args.record, "a", buffering=1)
    lock = threading.Lock()
    state = server.state
    send_event = state._customer_send_event

    def recording_send_event(customer, body):
        arrived = time.time()
        result = send_event(customer, body)
        with lock:
            out.write(json.dumps({"t": arrived, "text": (body.get("event") or {}).get("text")}) + "\n")
        return result

    state._customer_send_event = recording_send_event  # customer_action finds it by name
    print(json.dumps({"url": server.url, "agent_token": token, **ORG}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
