"""The bot's callback receiver for the benchmark, in its own process:
`python -m bench.receiver --record FILE --secret whsec_…`.

Verifies each callback's Standard Webhooks signature, answers 200 and records
{"t": time.time() on arrival, "type", "event_id": the LiveChat event id of an agent.message, "ok": signature valid}.
Prints {"url"} on stdout once it listens.
"""
import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--record", required=True)
    parser.add_argument("--secret", action="append", default=[], help="whsec_… (repeat for several integrations)")
    args = parser.parse_args(argv)
    verifiers = [Webhook(secret) for secret in args.secret]
    out = open(args.record, "a", buffering=1)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            arrived = time.time()
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            ok = False
            for verifier in verifiers:
                try:
                    verifier.verify(body, headers)
                    ok = True
                    break
                except Exception:
                    continue
            payload = json.loads(body)
            message = (payload.get("data") or {}).get("message") or {}
            with lock:
                out.write(json.dumps({"t": arrived, "type": payload.get("type"),
                                      "event_id": message.get("livechat_event_id"), "ok": ok}) + "\n")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"url": f"http://127.0.0.1:{server.server_address[1]}/callbacks"}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
