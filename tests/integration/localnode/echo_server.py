"""A tiny HTTP server that runs inside test pods (shipped to them in a ConfigMap).

GET / answers with the pod's name; GET /ready is the readiness probe, which
POST /unready turns off; GET /metrics exposes a counter for Prometheus. On
SIGTERM it keeps serving for a short drain period before exiting, as a
well-behaved server does during a rolling update.
"""

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"ready": True, "requests": 0}


class Handler(BaseHTTPRequestHandler):
    def _send(self, code: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/ready":
            self._send(200 if state["ready"] else 503, "{}")
        elif self.path == "/metrics":
            self._send(200, f"echo_requests_total {state['requests']}\n", "text/plain")
        else:
            state["requests"] += 1
            self._send(200, json.dumps({"pod": os.environ.get("POD_NAME", ""), "uid": os.getuid()}))

    def do_POST(self) -> None:
        state["ready"] = False
        self._send(200, "{}")

    def log_message(self, *args: object) -> None:
        pass


server = ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Handler)


def drain(*_: object) -> None:
    threading.Timer(3.0, server.shutdown).start()


signal.signal(signal.SIGTERM, drain)
print("serving", flush=True)
server.serve_forever()
print("drained", flush=True)
