"""What every real-stack driver shares (generate.py, fastapi/run.py,
hapi/run.py), standard library only: nginx's common http-level lines and the
ports helpers."""

import signal
import socket
import subprocess
import time

# The http-level lines every real-stack nginx shares: temp paths inside the
# run's prefix, and the access-log format tracejoin's nginx_combined_kv reads
# (tests/realstack/fastapi and tests/realstack/hapi use it too).
NGINX_HTTP_COMMON = r"""
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  access_log off;

  log_format tracejoin '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                       '"$http_referer" "$http_user_agent" rid=$request_id rt=$request_time '
                       'uct="$upstream_connect_time" urt="$upstream_response_time" us="$upstream_status" '
                       'ua="$upstream_addr" xrid=$http_x_request_id tp=$http_traceparent lrs=$limit_req_status '
                       'consumer=$http_x_consumer_id host=$host msec=$msec';
"""

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_HELD = []


def dead_port():
    """A port nothing listens on for the whole run (connections are refused):
    kept bound, never listening, so that no other process - a service of a
    generator running beside this one - can take it and answer in its place."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def wait_port(port, timeout=10, proc=None):
    """Waits for a listener without connecting to it: a probe connection would
    be logged by the gateway as a request of its own. With `proc`, fails as
    soon as that process exits."""
    want = ":%04X" % port
    end = time.time() + timeout
    while time.time() < end:
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            with open(table) as f:
                for row in f.read().splitlines()[1:]:
                    cols = row.split()
                    if cols[1].endswith(want) and cols[3] == "0A":  # 0A = LISTEN
                        return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[0]} exited with {proc.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port}")


def stop(proc, timeout=10):
    """SIGTERM (so an OTel SDK flushes), then SIGKILL if it does not exit."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
