"""Run the sandbox from a shell: shared by `manage.py livechat_sandbox` and `python -m bridge.livechat.sandbox`."""
from __future__ import annotations

import argparse
from typing import Callable

from .server import SandboxServer

DEMO = {"organization_id": "demo-org", "client_id": "demo-client", "account_id": "demo@example.com",
        "pat": "demo-pat", "groups": [0, 5]}
DEMO_AGENTS = [
    {"id": "smith@example.com", "name": "John Smith", "avatar": "https://cdn.livechat-files.com/api/file/avatar.png"},
    {"id": "jane@example.com", "name": "Jane Doe"},
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--organization-id", default=DEMO["organization_id"])
    parser.add_argument("--client-id", default=DEMO["client_id"])
    parser.add_argument("--account-id", default=DEMO["account_id"])
    parser.add_argument("--pat", default=DEMO["pat"])
    parser.add_argument("--group", type=int, action="append", dest="groups",
                        help="a group id of the organization (repeat; default 0 and 5)")
    parser.add_argument("--webhook-url", action="append", dest="webhook_urls", default=[],
                        help="send every webhook there too, without registration (repeat)")
    parser.add_argument("--webhook-secret", default="", help="secret_key of --webhook-url deliveries")
    parser.add_argument("--webhook-timeout", type=float, default=10.0)
    parser.add_argument("--token-ttl", type=int, default=28800, help="customer token lifetime in seconds")


def run(options: dict, write: Callable[[str], None]) -> None:
    """Start the sandbox with one organization, print where it is, serve until Ctrl-C."""
    server = SandboxServer(options["host"], options["port"], webhook_timeout=options["webhook_timeout"],
                           webhook_urls=options["webhook_urls"], webhook_secret=options["webhook_secret"],
                           token_ttl=options["token_ttl"])
    agent_token = server.add_organization(
        options["organization_id"], options["client_id"], options["account_id"], options["pat"],
        group_ids=options["groups"] or DEMO["groups"], agents=DEMO_AGENTS,
    )
    write(f"LiveChat sandbox on {server.url} — agent page: {server.url}/agent/")
    write(f"  organization_id={options['organization_id']} client_id={options['client_id']} "
          f"groups={','.join(str(g) for g in options['groups'] or DEMO['groups'])}")
    write(f"  agent token (Base64 account:PAT): {agent_token}")
    write(f"  LIVECHAT_API_URL={server.url} LIVECHAT_ACCOUNTS_URL={server.url}")
    for url in options["webhook_urls"]:
        write(f"  sending all webhooks to {url}")
    server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bridge.livechat.sandbox", description="LiveChat sandbox")
    add_arguments(parser)
    run(vars(parser.parse_args(argv)), lambda line: print(line, flush=True))
