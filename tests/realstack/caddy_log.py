#!/usr/bin/env python3
"""Runs a real Caddy (Debian package) as a gateway and lets it write its JSON
access log: a proxied success, a proxied request to an upstream that is down,
an unmatched path, and a backend 500, each with an X-Request-Id and a
traceparent header. Prints the truth (request id -> label) as CSV.

usage: caddy_log.py LOG_PATH TRUTH_CSV
"""
import http.client
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# Beside this script: the real-stack drivers' shared ports helpers.
from stack import dead_port, free_port


def wait_listen(port, timeout=15):
    want = ":%04X" % port
    end = time.time() + timeout
    while time.time() < end:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):  # Caddy listens on all addresses
            with open(table) as f:
                if any(r.split()[1].endswith(want) and r.split()[3] == "0A" for r in f.read().splitlines()[1:]):
                    return
        time.sleep(0.05)
    raise RuntimeError(f"caddy did not listen on {port}")


class Upstream(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        status = 500 if self.path.startswith("/api/crash") else 200
        body = b'{"ok":true}' if status == 200 else b'{"error":"boom"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    log_path, truth_path = sys.argv[1], sys.argv[2]
    up = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    port, dead = free_port(), dead_port()
    work = tempfile.mkdtemp(prefix="tracejoin-caddy-")
    caddyfile = os.path.join(work, "Caddyfile")
    with open(caddyfile, "w") as f:
        f.write(f"""{{
  admin off
  auto_https off
  storage file_system {work}/data
}}
http://127.0.0.1:{port} {{
  log {{
    output file {os.path.abspath(log_path)}
    format json
  }}
  handle /api/down/* {{
    reverse_proxy 127.0.0.1:{dead}
  }}
  handle /api/* {{
    reverse_proxy 127.0.0.1:{up.server_address[1]}
  }}
  handle {{
    respond "no route" 404
  }}
}}
""")
    env = dict(os.environ, HOME=work, XDG_DATA_HOME=work, XDG_CONFIG_HOME=work)
    caddy = subprocess.Popen([shutil.which("caddy") or "/usr/bin/caddy", "run", "--config", caddyfile,
                              "--adapter", "caddyfile"], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    rows = []
    try:
        wait_listen(port)
        cases = [("/api/orders", "none"), ("/api/down/orders", "upstream"), ("/v2/nowhere", "routing"),
                 ("/api/crash", "upstream")] * 3
        for i, (path, label) in enumerate(cases):
            rid = "%032x" % (0xCADD1000 + i)
            tp = "00-%032x-%016x-01" % (0x7ACE0000 + i, 0x5BA0000 + i)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers={"X-Request-Id": rid, "Traceparent": tp})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            rows.append((rid, label, resp.status))
        time.sleep(0.5)
    finally:
        caddy.terminate()
        caddy.wait(timeout=10)
        up.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    with open(truth_path, "w") as f:
        f.write("request_id,label,status\n")
        for r in rows:
            f.write("%s,%s,%d\n" % r)


if __name__ == "__main__":
    main()
