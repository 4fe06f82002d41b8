"""`manage.py livechat_sandbox` as a real process: it prints the agent page URL and serves it."""
import os
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_line(process, timeout=20.0) -> str:
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.kill()
        raise AssertionError(f"the command printed nothing; stderr: {process.stderr.read()[-2000:]}")
    return line


def test_command_prints_agent_page_url_and_serves(tmp_path):
    port = free_port()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="hitl_project.settings_test", PYTHONUNBUFFERED="1",
               DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "livechat_sandbox", "--port", str(port), "--group", "0", "--group", "7"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = read_line(process)
        match = re.fullmatch(r"LiveChat sandbox on (http://127\.0\.0\.1:\d+) — agent page: (\S+)\n", first)
        assert match, first
        base, page = match.groups()
        assert base == f"http://127.0.0.1:{port}" and page == f"{base}/agent/"

        # The demo organization works with the demo credentials.
        token = requests.post(f"{base}/v2/customer/token", timeout=5, json={
            "grant_type": "cookie", "client_id": "demo-client", "organization_id": "demo-org",
            "redirect_uri": "http://127.0.0.1:8000/", "response_type": "token"}).json()["access_token"]
        chat = requests.post(f"{base}/v3.6/customer/action/start_chat?organization_id=demo-org", timeout=5,
                             headers={"Authorization": f"Bearer {token}"},
                             json={"chat": {"access": {"group_ids": [7]},
                                            "thread": {"events": [{"type": "message", "text": "hi"}]}}}).json()
        listing = requests.get(page, timeout=5)
        assert listing.status_code == 200 and "chats" in listing.text and chat["chat_id"] in listing.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stderr.read()
