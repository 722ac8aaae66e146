#!/usr/bin/env python3
"""Writes N JSON gateway access-log lines of one format for scripts/bench, each line shaped
exactly like the `[[sample]]` lines of that format's definition in parsers/FORMAT.toml (the
same keys in the same order, the same value types), with varying ids, paths, durations and
statuses (about 90 % 2xx, the rest 401/404/429/502/504 with the indicators that gateway writes
for them), and timestamps advancing 1 ms a line from 2026-11-24T10:00:00Z.

Formats: envoy_json kong_json aws_apigw_json traefik_json caddy_json nginx_json

Departures from the samples, all keys the definition reads and the product documents:
  traefik_json  adds `request_X-Request-Id` (headers kept with fields.headers.names.X-Request-Id=keep);
  caddy_json    adds `resp_headers.X-Request-Id` (`header X-Request-Id {http.request.uuid}`), and logs
                statuses >= 400 at level "error" as Caddy does.
Without them these gateways log no request id and every line would be an id-less request.
aws_apigw_json and nginx_json keep their samples' second-precision times (`requestTime`,
`$time_iso8601`), so a thousand consecutive lines share a timestamp.

Deterministic (seeded per format). Writes ~1 M lines in a few seconds.

usage: gen_gateway_json.py FORMAT N OUT
"""
import base64
import calendar
import random
import sys
import time

T0_MS = calendar.timegm((2026, 11, 24, 10, 0, 0, 0, 0, 0)) * 1000
PATHS = ["/v1/orders", "/v1/orders/%d", "/v1/payments", "/v1/search?q=x", "/admin/stats", "/v2/orders"]
ROUTES = {"/v1/orders": "orders", "/v1/payments": "payments", "/v1/search": "search", "/admin/stats": "admin",
          "/v2/orders": "orders-v2"}
METHODS = ["GET", "GET", "GET", "POST", "PUT", "DELETE"]
AGENTS = ["curl/8.5.0", "okhttp/4.12.0", "python-requests/2.32.3", "Go-http-client/1.1"]


class Line:
    """What every format varies: drawn once per line from the format's own generator."""

    __slots__ = ("i", "ms", "status", "ok", "method", "path", "route", "dur", "udur", "size", "hexid",
                 "ip", "agent", "upstream")

    def __init__(self, rng, i):
        self.i = i
        self.ms = T0_MS + i
        r = rng.random()
        if r < 0.90:
            self.status = rng.choice((200, 200, 200, 201, 204))
        elif r < 0.93:
            self.status = 502
        elif r < 0.95:
            self.status = 401
        elif r < 0.97:
            self.status = 404
        elif r < 0.98:
            self.status = 429
        else:
            self.status = 504
        self.ok = self.status < 400
        self.method = rng.choice(METHODS)
        path = rng.choice(PATHS)
        self.route = ROUTES[path.split("?")[0].replace("/%d", "")]
        self.path = path % rng.randint(1, 99999) if "%d" in path else path
        # Total and upstream durations in ms (float); 504 is a 30 s upstream timeout.
        self.dur = rng.random() * 300 if self.status != 504 else 30000 + rng.random() * 5
        self.udur = self.dur * 0.9
        self.size = rng.randint(0, 20000) if self.ok else rng.randint(20, 200)
        self.hexid = "%032x" % rng.getrandbits(128)
        self.ip = "10.%d.%d.%d" % (rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))
        self.agent = rng.choice(AGENTS)
        self.upstream = "10.0.3.%d" % rng.randint(2, 20)

    @property
    def uuid(self):
        h = self.hexid
        return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], "89ab"[int(h[16], 16) & 3], h[17:20], h[20:])


_sec_cache = {}


def utc(ms, fmt):
    """strftime of the second of `ms`, cached (consecutive lines share seconds)."""
    key = (ms // 1000, fmt)
    s = _sec_cache.get(key)
    if s is None:
        if len(_sec_cache) > 4096:
            _sec_cache.clear()
        s = _sec_cache[key] = time.strftime(fmt, time.gmtime(ms // 1000))
    return s


def iso_ms(ms):
    return "%s.%03dZ" % (utc(ms, "%Y-%m-%dT%H:%M:%S"), ms % 1000)


# ---- envoy_json: sample 1, Envoy Gateway's default JSON format, every value a string ----------------
ENVOY_FAIL = {  # status -> (response_flags, response_code_details, upstream contacted)
    401: ("-", "jwt_authn_access_denied{Jwt_is_missing}", False),
    404: ("NR", "route_not_found", False),
    429: ("RL", "request_rate_limited", False),
    502: ("UC", "upstream_reset_before_response_started{connection_termination}", True),
    504: ("UT", "response_timeout", True),
}


def envoy(l, rng):
    if l.ok:
        flags, details, upstream = "-", "via_upstream", True
    else:
        flags, details, upstream = ENVOY_FAIL[l.status]
    host = "%s:8080" % l.upstream if upstream else "-"
    ust = "%d" % l.udur if upstream and l.status != 504 and l.status != 502 else "-"
    return ('{"start_time":"%s","method":"%s","x-envoy-origin-path":"%s","protocol":"HTTP/1.1",'
            '"response_code":"%d","response_flags":"%s","response_code_details":"%s",'
            '"connection_termination_details":"-","upstream_transport_failure_reason":"-",'
            '"bytes_received":"%d","bytes_sent":"%d","duration":"%d","x-envoy-upstream-service-time":"%s",'
            '"x-forwarded-for":"%s","user-agent":"%s","x-request-id":"%s",":authority":"api.example.com",'
            '"upstream_host":"%s","upstream_cluster":"%s","upstream_local_address":"%s",'
            '"downstream_local_address":"10.0.0.2:443","downstream_remote_address":"%s:%d",'
            '"requested_server_name":"api.example.com","route_name":"%s-route"}\n') % (
        iso_ms(l.ms), l.method, l.path, l.status, flags, details, 0 if l.method == "GET" else 120, l.size,
        l.dur, ust, l.ip, l.agent, l.uuid, host, l.route, "10.0.0.2:%d" % (40000 + l.i % 20000) if upstream else "-",
        l.ip, 1024 + l.i % 60000, l.route)


# ---- kong_json: sample 1 (upstream answered) and sample 2 (Kong answered itself) -------------------
def kong(l, rng):
    lat_kong = rng.randint(0, 3)
    if l.ok:
        return ('{"response":{"size":%d,"headers":{"x-kong-upstream-latency":"%d","x-kong-proxy-latency":"%d",'
                '"x-kong-request-id":"%s"},"status":%d},"tries":[{"balancer_start":%d,"ip":"%s","balancer_latency":0,'
                '"port":80,"balancer_latency_ns":%d}],"client_ip":"%s","request":{"id":"%s","uri":"%s","size":%d,'
                '"method":"%s","querystring":{},"url":"http://api.example.com%s"},"upstream_uri":"/","started_at":%d,'
                '"source":"upstream","upstream_status":"%d","latencies":{"kong":%d,"proxy":%d,"request":%d,'
                '"receive":%d}}\n') % (
            l.size, l.udur, lat_kong, l.hexid, l.status, l.ms + 1, l.upstream, rng.randint(10000, 90000), l.ip,
            l.hexid, l.path, 120, l.method, l.path, l.ms, l.status, lat_kong, l.udur, l.dur + lat_kong, 0)
    proxy = -1 if l.status in (401, 404, 429) else int(l.udur)
    dur = lat_kong if proxy < 0 else int(l.dur) + lat_kong
    return ('{"response":{"status":%d,"size":%d},"client_ip":"%s","request":{"id":"%s","uri":"%s","method":"%s",'
            '"size":120,"url":"http://api.example.com%s"},"started_at":%d,"source":"kong","upstream_status":"",'
            '"latencies":{"kong":%d,"proxy":%d,"request":%d,"receive":0},"route":{"name":"%s"},'
            '"service":{"name":"%s-svc"}}\n') % (
        l.status, l.size, l.ip, l.hexid, l.path, l.method, l.path, l.ms, lat_kong, proxy, dur, l.route, l.route)


# ---- aws_apigw_json: sample 1, the HTTP API JSON template with error variables ---------------------
AWS_FAIL = {401: "UNAUTHORIZED", 404: "RESOURCE_NOT_FOUND", 429: "THROTTLED", 502: "INTEGRATION_FAILURE",
            504: "INTEGRATION_TIMEOUT"}


def aws(l, rng):
    rid = base64.b64encode(bytes.fromhex(l.hexid[:22])).decode()  # 15 characters and "=", like the sample
    if l.ok:
        ist, ilat, err = "%d" % l.status, "%d" % l.udur, "-"
    else:
        ist, err = "-", AWS_FAIL[l.status]
        ilat = "%d" % l.udur if l.status in (502, 504) else "-"
    path = l.path.split("?")[0]
    key = "%s %s" % (l.method, path.rsplit("/", 1)[0] + "/{id}" if path.count("/") > 2 else path)
    return ('{"requestId":"%s","ip":"%s","requestTime":"%s","httpMethod":"%s","routeKey":"%s","status":"%d",'
            '"protocol":"HTTP/1.1","responseLength":"%d","integrationStatus":"%s","integrationLatency":"%s",'
            '"errorType":"%s"}\n') % (
        rid, l.ip, utc(l.ms, "%d/%b/%Y:%H:%M:%S +0000"), l.method, key, l.status, l.size, ist, ilat, err)


# ---- traefik_json: the sample (Traefik v3), plus request_X-Request-Id ------------------------------
def traefik(l, rng):
    start = "%s.%03d%06dZ" % (utc(l.ms, "%Y-%m-%dT%H:%M:%S"), l.ms % 1000, rng.randint(0, 999999))
    dur_ns = int(l.dur * 1e6)
    if l.ok:
        origin = '"OriginContentSize":%d,"OriginDuration":%d,"OriginStatus":%d,' % (l.size, int(l.udur * 1e6), l.status)
    else:
        origin = '"OriginContentSize":0,"OriginDuration":0,"OriginStatus":0,'
    if l.status == 404:  # no router matched: Traefik answered, no router or service
        router = '"RouterName":"",'
        service = ""
    else:
        router = '"RouterName":"%s@file",' % l.route
        service = '"ServiceAddr":"%s:8080","ServiceName":"%s@file","ServiceURL":"http://%s:8080",' % (
            l.upstream, l.route, l.upstream)
    return ('{"ClientAddr":"%s:%d","ClientHost":"%s","ClientPort":"%d","ClientUsername":"-",'
            '"DownstreamContentSize":%d,"DownstreamStatus":%d,"Duration":%d,%s"Overhead":%d,'
            '"RequestAddr":"api.example.com","RequestContentSize":%d,"RequestCount":%d,"RequestHost":"api.example.com",'
            '"RequestMethod":"%s","RequestPath":"%s","RequestPort":"-","RequestProtocol":"HTTP/1.1","RequestScheme":"http",'
            '"RetryAttempts":0,%s%s"StartLocal":"%s","StartUTC":"%s","entryPointName":"web","level":"info","msg":"",'
            '"request_X-Request-Id":"%s","time":"%sZ"}\n') % (
        l.ip, 1024 + l.i % 60000, l.ip, 1024 + l.i % 60000, l.size, l.status, dur_ns, origin,
        rng.randint(20000, 90000), 0 if l.method == "GET" else 120, l.i + 1, l.method, l.path, router, service,
        start, start, l.uuid, utc(l.ms, "%Y-%m-%dT%H:%M:%S"))


# ---- caddy_json: the docs example, plus resp_headers.X-Request-Id ----------------------------------
def caddy(l, rng):
    return ('{"level":"%s","ts":%d.%03d%04d,"logger":"http.log.access","msg":"handled request","request":'
            '{"remote_ip":"%s","remote_port":"%d","client_ip":"%s","proto":"HTTP/2.0","method":"%s",'
            '"host":"api.example.com","uri":"%s","headers":{"User-Agent":["%s"],"Accept":["*/*"]},'
            '"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"api.example.com"}},'
            '"bytes_read":%d,"user_id":"","duration":%.9f,"size":%d,"status":%d,"resp_headers":{"Server":["Caddy"],'
            '"Content-Type":["application/json"],"X-Request-Id":["%s"]}}\n') % (
        "info" if l.ok else "error", l.ms // 1000, l.ms % 1000, rng.randint(0, 9999), l.ip, 1024 + l.i % 60000,
        l.ip, l.method, l.path, l.agent, 0 if l.method == "GET" else 120, l.dur / 1000, l.size, l.status, l.uuid)


# ---- nginx_json: the real nginx 1.22 sample (log_format gw_json escape=json) -----------------------
def nginx(l, rng):
    end_ms = l.ms + int(l.dur)
    tp = "00-%s-%016x-01" % (l.hexid[::-1], rng.getrandbits(64))
    if l.ok or l.status in (502, 504):
        ua = "%s:8080" % l.upstream
        us = "%d" % l.status
        uct, uht, urt = "0.001", "%.3f" % (l.udur / 1000), "%.3f" % (l.udur / 1000)
        if l.status == 502:
            uht = "-"
    else:
        ua = us = uct = uht = urt = ""
    return ('{"time":"%s+00:00","request_id":"%s","traceparent":"%s","xrid":"","method":"%s","uri":"%s",'
            '"status":%d,"request_time":%.3f,"upstream_addr":"%s","upstream_status":"%s","upstream_connect_time":"%s",'
            '"upstream_header_time":"%s","upstream_response_time":"%s","limit_req":"%s"}\n') % (
        utc(end_ms, "%Y-%m-%dT%H:%M:%S"), l.hexid, tp, l.method, l.path, l.status, l.dur / 1000, ua, us, uct, uht,
        urt, "REJECTED" if l.status == 429 else "PASSED")


FORMATS = {"envoy_json": envoy, "kong_json": kong, "aws_apigw_json": aws, "traefik_json": traefik,
           "caddy_json": caddy, "nginx_json": nginx}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in FORMATS:
        sys.exit(__doc__)
    fmt, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    write = FORMATS[fmt]
    rng = random.Random("tracejoin-bench-" + fmt)
    with open(out, "w", buffering=1 << 20) as f:
        chunk = []
        for i in range(n):
            chunk.append(write(Line(rng, i), rng))
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))


if __name__ == "__main__":
    main()
