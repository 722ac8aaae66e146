"""The dependency of the accounts service: "ledger", a small plain http.server
service. It is not instrumented and its own log is not part of the export
(a third-party or legacy dependency). What it answers depends on the account id:

  GET /balances/{id}
    1000-7999  200 application/json                      (normal)
    8000-8199  first call of a request (X-Request-Id) gets its connection
               closed without an answer; the retry is answered normally
    8200-8399  200 text/html maintenance page              (garbage: not JSON)
    8400-8599  503, http.server's own send_error() page     (5xx)
    8600-8799  accepts and never answers within the client's timeout (hang)
    8800-8999  429 Too Many Requests, Retry-After: 30 (the ledger's own rate
               limit for these accounts is spent: a reconciliation job drains it)
  GET /exports/{id}   answers after 2 s (a slow report; the gateway gives up at 1 s)
  GET /limits/{id}    the ledger's newer API: wants `Authorization: Bearer <JWT>`
               (HS256, audience "ledger"), verified with PyJWT, and answers as a
               FastAPI app guarded by HTTPBearer would: a missing credential is
               401 {"detail":"Not authenticated"}, a rejected one 401
               {"detail":"<str(PyJWT's exception)>"} with
               `WWW-Authenticate: Bearer error="invalid_token"`. Then:
    1000-8999  200 {"account", "credit_limit" (int), "currency", "overdraft"}
    9000-9199  200, the record of the ledger's new mapping (a deploy): even ids
               carry "credit_limit": "unlimited", odd ids renamed it "creditLimit"
"""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

MAINTENANCE_PAGE = (b"<!DOCTYPE html>\n<html><head><title>Ledger</title></head>"
                    b"<body><h1>Scheduled maintenance</h1><p>Back soon.</p></body></html>\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that gave up (timeout) before the answer is not an error here.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class Ledger:
    def __init__(self, port, jwt_key):
        self.port = port
        self.jwt_key = jwt_key
        self.seen = set()
        self.lock = threading.Lock()
        self.server = _Server(("127.0.0.1", port), self.handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def first_call(self, key):
        with self.lock:
            first = key not in self.seen
            self.seen.add(key)
        return first

    def handler_class(self):
        ledger = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def answer(self, status, body, ctype="application/json", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                m = re.fullmatch(r"/(balances|exports|limits)/(\d+)", self.path.split("?")[0])
                if not m:
                    self.send_error(404)
                    return
                kind, account = m.group(1), int(m.group(2))
                if kind == "exports":
                    time.sleep(2.0)
                    self.answer(200, json.dumps({"account": account, "rows": 120}).encode())
                    return
                if kind == "limits":
                    self.limits(account)
                    return
                if 8000 <= account < 8200 and ledger.first_call(self.headers.get("X-Request-Id", "")):
                    # Drop the connection without a response (a worker restarting under us).
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if 8200 <= account < 8400:
                    self.answer(200, MAINTENANCE_PAGE, "text/html")
                    return
                if 8400 <= account < 8600:
                    self.send_error(503)
                    return
                if 8600 <= account < 8800:
                    time.sleep(5.0)
                    self.close_connection = True
                    return
                if 8800 <= account < 9000:
                    self.answer(429, b'{"detail":"Too Many Requests"}', headers=[("Retry-After", "30")])
                    return
                self.answer(200, json.dumps({"account": account, "balance": "%d.%02d" % (account * 7 % 5000, account % 100),
                                             "currency": "EUR"}).encode())

            def limits(self, account):
                scheme, _, credentials = self.headers.get("Authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not credentials:
                    self.answer(401, b'{"detail":"Not authenticated"}', headers=[("WWW-Authenticate", "Bearer")])
                    return
                try:
                    jwt.decode(credentials, ledger.jwt_key, algorithms=["HS256"], audience="ledger")
                except jwt.InvalidTokenError as exc:
                    self.answer(401, json.dumps({"detail": str(exc)}, separators=(",", ":")).encode(),
                                headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')])
                    return
                limit = account * 13 % 50 * 100 + 100
                if 9000 <= account < 9200:
                    key = "credit_limit" if account % 2 == 0 else "creditLimit"
                    record = {"account": account, key: "unlimited" if account % 2 == 0 else limit,
                              "currency": "EUR", "overdraft": False}
                else:
                    record = {"account": account, "credit_limit": limit, "currency": "EUR",
                              "overdraft": account % 3 == 0}
                self.answer(200, json.dumps(record).encode())

        return Handler
