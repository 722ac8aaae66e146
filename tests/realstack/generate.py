#!/usr/bin/env python3
"""Produce a real incident: a real nginx (Debian package) as the API gateway in
front of two services instrumented with the real OpenTelemetry SDK, every
failure mode configured for real, a seeded mix of requests, and the cause we
injected for each request written to a truth file that tracejoin never reads.

usage: generate.py OUT_DIR TRUTH_CSV [--seed N] [--requests N] [--fixtures DIR]
                   [--gateway nginx|haproxy|apache|caddy] [--profile NAME] [--retry-in-trace]

--profile picks how the gateway is configured (default: the formats below);
the profiles, each as its vendor documents it, are described with example
lines in PROFILES.md: nginx `ingress` (ingress-nginx upstreaminfo + error.log),
haproxy `capture` (stock httplog, id in the capture block), apache `unique_id`
(mod_unique_id + error.log), caddy `uuid` (JSON log, {http.request.uuid}).
--retry-in-trace: some clients keep one trace id over several requests (a retried
call, a batch job); the truth then has three more columns at the end:
trace_id, attempt, retry_of (columns 0-5 are unchanged).

OUT_DIR receives what an on-call engineer would export:
  gateway/access.log      nginx, combined + key=value fields
  orders/orders.log       JSON lines
  payments/payments.log   logfmt lines
  otel/traces.jsonl       OTLP/JSON spans, one export batch per line
  otel/logs.jsonl         OTLP/JSON log records (payments), one batch per line
--fixtures DIR also keeps the same traffic in other nginx formats
(ingress-nginx upstreaminfo, escape=json) and nginx's error.log.
"""

import argparse
import base64
import csv
import hashlib
import http.client
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import backend  # noqa: E402
from stack import NGINX_HTTP_COMMON, dead_port, free_port, wait_port  # noqa: E402,F401

NGINX_CONF = r"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {error_log} info;
events {{ worker_connections 256; }}
http {{
""" + NGINX_HTTP_COMMON + r"""  # ingress-nginx's default format; its two upstream-name variables are ingress's own, mapped here.
  map $uri $proxy_upstream_name {{
    default "-";
    ~^/v1/payments "default-payments-80";
    ~^/v1/inventory "default-inventory-80";
    ~^/ "default-orders-80";
  }}
  map $uri $proxy_alternative_upstream_name {{ default ""; }}
  map $request_id $req_id {{ default $request_id; }}
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" '
    '$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time '
    '[$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr '
    '$upstream_response_length $upstream_response_time $upstream_status $req_id';
  log_format gw_json escape=json '{{"time":"$time_iso8601","request_id":"$request_id","traceparent":"$http_traceparent",'
    '"xrid":"$http_x_request_id","method":"$request_method","uri":"$request_uri","status":$status,'
    '"request_time":$request_time,"upstream_addr":"$upstream_addr","upstream_status":"$upstream_status",'
    '"upstream_connect_time":"$upstream_connect_time","upstream_header_time":"$upstream_header_time",'
    '"upstream_response_time":"$upstream_response_time","limit_req":"$limit_req_status"}}';

  limit_req_zone $http_x_consumer_id zone=perconsumer:1m rate=30r/m;
  limit_req_zone $http_x_consumer_id zone=exports:1m rate=20r/m;

  upstream orders {{ server 127.0.0.1:{orders_port}; keepalive 8; }}
  upstream payments {{ server 127.0.0.1:{payments_port}; keepalive 8; }}
  upstream inventory {{ server 127.0.0.1:{dead_port}; }}

  server {{
    listen 127.0.0.1:{port};
    server_name api.example.test;
    root {prefix}/html;
    access_log {out}/gateway/access.log tracejoin;
    {extra_logs}
    add_header X-Request-Id $request_id always;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-Id $request_id;
    client_max_body_size 1m;

    location /v1/orders {{ proxy_pass http://orders; }}
    location = /v1/orders/import {{ client_max_body_size 1k; proxy_pass http://orders; }}
    location /v1/payments {{ proxy_pass http://payments; }}
    location /v1/search {{ limit_req zone=perconsumer burst=3 nodelay; limit_req_status 429; proxy_pass http://orders; }}
    location /v1/export {{ limit_req zone=exports burst=2 nodelay; proxy_pass http://orders; }}
    location /v1/inventory {{ proxy_pass http://inventory; }}
    location /v1/slow {{ proxy_read_timeout 1s; proxy_pass http://orders/slow; }}
    location /v1/reports {{ auth_request /_auth; proxy_pass http://orders; }}
    location = /_auth {{
      internal;
      proxy_pass http://orders/auth/check;
      proxy_pass_request_body off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Content-Length "";
      proxy_set_header X-Request-Id $request_id;
    }}
    location /admin/ {{ auth_basic "admin"; auth_basic_user_file {prefix}/htpasswd; proxy_pass http://orders; }}
    location /internal/ {{ allow 10.0.0.0/8; deny all; proxy_pass http://orders; }}
  }}
}}
"""

HAPROXY_CONF = r"""
global
  log stdout format raw local0
  maxconn 256
userlist ops
  user ops insecure-password s3cret
defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe_api
  bind 127.0.0.1:{port}
  # The client's X-Request-Id is the request id (logged as %ID, passed upstream as it came).
  unique-id-format %[req.hdr(X-Request-Id)]
  # Computed before any rule answers locally, so %ID is logged for those too.
  http-request set-var(txn.rid) unique-id
  log-format "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{{+Q}}r %ID"
  option http-buffer-request
  stick-table type string len 32 size 1k expire 60s store http_req_rate(60s)
  acl known path_beg /v1/orders /v1/payments /v1/search /v1/export /v1/inventory /v1/slow /v1/reports /admin/ /internal/
  http-request return status 404 content-type text/plain string "no route" if !known
  http-request auth realm admin if {{ path_beg /admin/ }} !{{ http_auth(ops) }}
  http-request deny deny_status 403 if {{ path_beg /internal/ }} !{{ src 10.0.0.0/8 }}
  http-request deny deny_status 413 if {{ path /v1/orders/import }} {{ req.body_size gt 1024 }}
  http-request track-sc0 req.hdr(X-Consumer-Id) if {{ path_beg /v1/search }} || {{ path_beg /v1/export }}
  http-request deny deny_status 429 if {{ path_beg /v1/search }} {{ sc_http_req_rate(0) gt 4 }}
  http-request deny deny_status 429 if {{ path_beg /v1/export }} {{ sc_http_req_rate(0) gt 3 }}
  use_backend be_payments if {{ path_beg /v1/payments }}
  use_backend be_inventory if {{ path_beg /v1/inventory }}
  use_backend be_slow if {{ path_beg /v1/slow }}
  default_backend be_orders
backend be_orders
  server orders1 127.0.0.1:{orders_port}
backend be_payments
  server payments1 127.0.0.1:{payments_port}
backend be_inventory
  server inventory1 127.0.0.1:{dead_port}
backend be_slow
  timeout server 1s
  http-request set-path /slow
  server orders1 127.0.0.1:{orders_port}
"""

APACHE_CONF = r"""
ServerRoot {prefix}
PidFile {prefix}/apache.pid
Listen 127.0.0.1:{port}
ServerName api.example.test
{user}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule unique_id_module /usr/lib/apache2/modules/mod_unique_id.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
ErrorLog {prefix}/error.log
DocumentRoot {prefix}/html
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{{Referer}}i\" \"%{{User-agent}}i\" %D %{{UNIQUE_ID}}e \"%{{traceparent}}i\"" gateway
CustomLog {out}/gateway/access.log gateway
Header always set X-Request-Id "%{{UNIQUE_ID}}e"
RequestHeader set X-Request-Id "%{{UNIQUE_ID}}e"
ProxyTimeout 10
<Location "/v1/orders">
  ProxyPass "http://127.0.0.1:{orders_port}/v1/orders"
</Location>
# LimitRequestBody does not stop a body that mod_proxy streams: refuse by Content-Length.
RewriteEngine On
RewriteCond expr "%{{HTTP:Content-Length}} -gt 1024"
RewriteRule "^/v1/orders/import$" - [R=413,L]
<Location "/v1/payments">
  ProxyPass "http://127.0.0.1:{payments_port}/v1/payments"
</Location>
<Location "/v1/inventory">
  ProxyPass "http://127.0.0.1:{dead_port}/v1/inventory" retry=0
</Location>
<Location "/v1/slow">
  ProxyPass "http://127.0.0.1:{orders_port}/slow" timeout=1
</Location>
<Location "/admin/">
  AuthType Basic
  AuthName "admin"
  AuthUserFile {prefix}/htpasswd
  Require valid-user
  ProxyPass "http://127.0.0.1:{orders_port}/admin/"
</Location>
<Location "/internal/">
  Require ip 10.0.0.0/8
  ProxyPass "http://127.0.0.1:{orders_port}/internal/"
</Location>
"""

# --profile capture: HAProxy as its users configure it when they only want to see
# the request id: the stock `option httplog` line (no log-format) and the id the
# client sent captured into the {...} block
# [https://docs.haproxy.org/2.6/configuration.html#8.2.3, #8.8]. No
# default_backend: a path no use_backend matches is answered 503 by HAProxy
# itself (fe_api/<NOSRV>); be_inventory's only server fails its health check, so
# that backend has no server (be_inventory/<NOSRV>).
HAPROXY_CAPTURE_CONF = r"""
global
  log stdout format raw local0
  maxconn 256
userlist ops
  user ops insecure-password s3cret
defaults
  mode http
  log global
  option httplog
  timeout connect 1s
  timeout client 10s
  timeout server 10s
frontend fe_api
  bind 127.0.0.1:{port}
  capture request header X-Request-ID len 64
  option http-buffer-request
  stick-table type string len 32 size 1k expire 60s store http_req_rate(60s)
  http-request auth realm admin if {{ path_beg /admin/ }} !{{ http_auth(ops) }}
  http-request deny deny_status 403 if {{ path_beg /internal/ }} !{{ src 10.0.0.0/8 }}
  http-request deny deny_status 413 if {{ path /v1/orders/import }} {{ req.body_size gt 1024 }}
  http-request track-sc0 req.hdr(X-Consumer-Id) if {{ path_beg /v1/search }} || {{ path_beg /v1/export }}
  http-request deny deny_status 429 if {{ path_beg /v1/search }} {{ sc_http_req_rate(0) gt 4 }}
  http-request deny deny_status 429 if {{ path_beg /v1/export }} {{ sc_http_req_rate(0) gt 3 }}
  use_backend be_orders if {{ path_beg /v1/orders /v1/search /v1/export /admin/ /internal/ }}
  use_backend be_payments if {{ path_beg /v1/payments }}
  use_backend be_inventory if {{ path_beg /v1/inventory }}
  use_backend be_slow if {{ path_beg /v1/slow }}
backend be_orders
  server orders1 127.0.0.1:{orders_port}
backend be_payments
  server payments1 127.0.0.1:{payments_port}
backend be_inventory
  server inventory1 127.0.0.1:{dead_port} check inter 200ms fall 1 rise 2
backend be_slow
  timeout server 1s
  http-request set-path /slow
  server orders1 127.0.0.1:{orders_port}
"""

# --profile unique_id: Apache with mod_unique_id, the id logged with %{UNIQUE_ID}e,
# forwarded with RequestHeader and returned with Header
# [https://httpd.apache.org/docs/2.4/mod/mod_unique_id.html,
# https://httpd.apache.org/docs/2.4/mod/mod_headers.html]; the error log in
# Apache's default ErrorLogFormat at the default LogLevel (warn)
# [https://httpd.apache.org/docs/2.4/mod/core.html#errorlog].
APACHE_UNIQUE_ID_CONF = r"""
ServerRoot {prefix}
PidFile {prefix}/apache.pid
Listen 127.0.0.1:{port}
ServerName api.example.test
{user}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authn_file_module /usr/lib/apache2/modules/mod_authn_file.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_host_module /usr/lib/apache2/modules/mod_authz_host.so
LoadModule authz_user_module /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_basic_module /usr/lib/apache2/modules/mod_auth_basic.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule unique_id_module /usr/lib/apache2/modules/mod_unique_id.so
LoadModule headers_module /usr/lib/apache2/modules/mod_headers.so
LoadModule rewrite_module /usr/lib/apache2/modules/mod_rewrite.so
ErrorLog {out}/gateway/error.log
DocumentRoot {prefix}/html
LogFormat "%h %l %u %t \"%r\" %>s %b \"%{{Referer}}i\" \"%{{User-Agent}}i\" %{{UNIQUE_ID}}e %D" unique_id
CustomLog {out}/gateway/access.log unique_id
RequestHeader set X-Request-Id %{{UNIQUE_ID}}e
Header {header_condition}set X-Request-Id %{{UNIQUE_ID}}e
ProxyTimeout 10
<Location "/v1/orders">
  ProxyPass "http://127.0.0.1:{orders_port}/v1/orders"
</Location>
# LimitRequestBody does not stop a body that mod_proxy streams: refuse by Content-Length.
RewriteEngine On
RewriteCond expr "%{{HTTP:Content-Length}} -gt 1024"
RewriteRule "^/v1/orders/import$" - [R=413,L]
<Location "/v1/payments">
  ProxyPass "http://127.0.0.1:{payments_port}/v1/payments"
</Location>
<Location "/v1/inventory">
  ProxyPass "http://127.0.0.1:{dead_port}/v1/inventory" retry=0
</Location>
<Location "/v1/slow">
  ProxyPass "http://127.0.0.1:{orders_port}/slow" timeout=1
</Location>
<Location "/admin/">
  AuthType Basic
  AuthName "admin"
  AuthUserFile {prefix}/htpasswd
  Require valid-user
  ProxyPass "http://127.0.0.1:{orders_port}/admin/"
</Location>
<Location "/internal/">
  Require ip 10.0.0.0/8
  ProxyPass "http://127.0.0.1:{orders_port}/internal/"
</Location>
"""

# --profile ingress: nginx as Kubernetes ingress-nginx renders it
# (rootfs/etc/nginx/template/nginx.tmpl): the default `upstreaminfo` log_format
# [https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/log-format/],
# $req_id = the client's X-Request-ID or else $request_id (the template's map,
# generate-request-id: true), proxy_set_header X-Request-ID $req_id,
# log_subrequest on, error_log at the ConfigMap default level `notice`,
# limit_req_status left at 503 (ConfigMap limit-req-status-code default) and
# rate limits keyed by the client address (annotations limit-rpm, burst = rpm x
# limit-burst-multiplier 5) [https://kubernetes.github.io/ingress-nginx/user-guide/nginx-configuration/configmap/,
# .../annotations/#rate-limiting]. $proxy_upstream_name is set per location
# ("namespace-service-port"); a path no Ingress rule matches goes to
# upstream-default-backend, which without a default-backend service is nginx's
# own `return 404` server (access_log off there). `add_header X-Request-Id
# $req_id always` is ours (ingress: add-headers ConfigMap), so the client learns the id.
NGINX_INGRESS_CONF = r"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {out}/gateway/error.log notice;
events {{ worker_connections 256; }}
http {{
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;
  log_subrequest on;
  uninitialized_variable_warn off;
  limit_req_status 503;
  log_format upstreaminfo '$remote_addr - $remote_user [$time_local] "$request" '
    '$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_length $request_time '
    '[$proxy_upstream_name] [$proxy_alternative_upstream_name] $upstream_addr '
    '$upstream_response_length $upstream_response_time $upstream_status $req_id';
  access_log {out}/gateway/access.log upstreaminfo;
  map $http_x_request_id $req_id {{
    default   $http_x_request_id;
    ""        $request_id;
  }}
  # Ratelimit default/search and default/export: annotations limit-rpm "3" / "2" with
  # limit-burst-multiplier "1" (the default multiplier 5 would not trigger in a short run).
  limit_req_zone $binary_remote_addr zone=default_search_rpm:5m rate=3r/m;
  limit_req_zone $binary_remote_addr zone=default_export_rpm:5m rate=2r/m;

  upstream default-orders-80 {{ server 127.0.0.1:{orders_port}; keepalive 8; }}
  upstream default-payments-80 {{ server 127.0.0.1:{payments_port}; keepalive 8; }}
  upstream default-inventory-80 {{ server 127.0.0.1:{dead_port}; }}
  upstream upstream-default-backend {{ server 127.0.0.1:{default_backend_port}; }}

  server {{
    listen 127.0.0.1:{port};
    server_name api.example.test;
    add_header X-Request-Id $req_id always;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-ID $req_id;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $remote_addr;
    set $proxy_alternative_upstream_name "";

    location / {{ set $proxy_upstream_name "upstream-default-backend"; proxy_pass http://upstream-default-backend; }}
    location /v1/orders {{ set $proxy_upstream_name "default-orders-80"; client_max_body_size 1m; proxy_pass http://default-orders-80; }}
    location /v1/orders/import {{ set $proxy_upstream_name "default-orders-import-80"; client_max_body_size 1k; proxy_pass http://default-orders-80; }}
    location /v1/payments {{ set $proxy_upstream_name "default-payments-80"; proxy_pass http://default-payments-80; }}
    location /v1/search {{ set $proxy_upstream_name "default-search-80"; limit_req zone=default_search_rpm burst=3 nodelay; proxy_pass http://default-orders-80; }}
    location /v1/export {{ set $proxy_upstream_name "default-export-80"; limit_req zone=default_export_rpm burst=2 nodelay; proxy_pass http://default-orders-80; }}
    location /v1/inventory {{ set $proxy_upstream_name "default-inventory-80"; proxy_pass http://default-inventory-80; }}
    location /v1/slow {{ set $proxy_upstream_name "default-slow-80"; rewrite "(?i)/v1/slow" /slow break; proxy_read_timeout 1s; proxy_pass http://default-orders-80; }}
    location = /_external-auth-L3YxL3JlcG9ydHM-Prefix {{
      internal;
      set $proxy_upstream_name "default-reports-80";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-Proto "";
      proxy_set_header X-Request-ID $req_id;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Sent-From "nginx-ingress-controller";
      proxy_pass http://127.0.0.1:{orders_port}/auth/check;
    }}
    location /v1/reports {{
      set $proxy_upstream_name "default-reports-80";
      auth_request /_external-auth-L3YxL3JlcG9ydHM-Prefix;
      proxy_pass http://default-orders-80;
    }}
    location /admin/ {{
      set $proxy_upstream_name "default-admin-80";
      auth_basic "admin";
      auth_basic_user_file {prefix}/htpasswd;
      proxy_set_header Authorization "";
      proxy_pass http://default-orders-80;
    }}
    location /internal/ {{ set $proxy_upstream_name "default-internal-80"; allow 10.0.0.0/8; deny all; proxy_pass http://default-orders-80; }}
  }}

  # backend for when default-backend-service is not configured or it does not have endpoints
  server {{
    listen 127.0.0.1:{default_backend_port} default_server;
    set $proxy_upstream_name "internal";
    access_log off;
    location / {{ return 404; }}
  }}
}}
"""

# --gateway caddy (--profile uuid): Caddy 2.6 with `header` / `request_header`
# setting X-Request-Id to {http.request.uuid}
# [https://caddyserver.com/docs/caddyfile/directives/header,
# .../request_header, https://caddyserver.com/docs/modules/http#docs (placeholders)],
# the JSON access log (`log`), basicauth, forward_auth (Caddy's auth_request),
# request_body max_size, reverse_proxy transport response_header_timeout.
# Directives in a site block are sorted by Caddy's directive order; handle blocks
# come after header/request_header, so every handler below sees the new id.
# The bcrypt hash is of "s3cret" at cost 4 (caddy hash-password uses 14: ~1 s a check).
CADDY_UUID_CONF = r"""{{
  admin off
  auto_https off
  storage file_system {prefix}/data
}}
http://127.0.0.1:{port} {{
  log {{
    output file {out}/gateway/access.log
    format json
  }}
  header X-Request-Id {{http.request.uuid}}
  request_header X-Request-Id {{http.request.uuid}}

  handle /v1/orders/import {{
    request_body {{
      max_size 1KB
    }}
    reverse_proxy 127.0.0.1:{orders_port}
  }}
  handle /v1/orders* {{
    reverse_proxy 127.0.0.1:{orders_port}
  }}
  handle /v1/payments* {{
    reverse_proxy 127.0.0.1:{payments_port}
  }}
  handle /v1/inventory* {{
    reverse_proxy 127.0.0.1:{dead_port}
  }}
  handle /v1/slow {{
    rewrite * /slow
    reverse_proxy 127.0.0.1:{orders_port} {{
      transport http {{
        response_header_timeout 1s
      }}
    }}
  }}
  handle /v1/reports* {{
    forward_auth 127.0.0.1:{orders_port} {{
      uri /auth/check
    }}
    reverse_proxy 127.0.0.1:{orders_port}
  }}
  handle /admin/* {{
    basicauth {{
      ops $2b$04$Jg4RgtW.gbyc.cOzOVm18uAMYZmn2vPMfoXo2MtjwniFrdzJqpVUq
    }}
    reverse_proxy 127.0.0.1:{orders_port}
  }}
  handle /internal/* {{
    @outside not remote_ip 10.0.0.0/8
    respond @outside "Forbidden" 403
    reverse_proxy 127.0.0.1:{orders_port}
  }}
  handle {{
    respond "no route" 404
  }}
}}
"""

PROFILES = {
    "nginx": ("default", "ingress"),
    "haproxy": ("default", "capture"),
    "apache": ("default", "unique_id"),
    "caddy": ("uuid",),
}

# Scenarios that need a gateway feature the others lack here: nginx auth_request
# (HAProxy, Apache), request-rate limiting (Apache has no built-in one).
UNSUPPORTED = {
    "haproxy": {"ok_report", "auth_token_expired", "auth_token_revoked"},
    "apache": {"ok_report", "auth_token_expired", "auth_token_revoked", "quota_gateway_429", "quota_gateway_503"},
    # Caddy's standard build has no rate limiter (caddy-ratelimit is a plugin).
    "caddy": {"quota_gateway_429", "quota_gateway_503"},
}

# name, weight in the incident phase, label when the injected failure happens
SCENARIOS = [
    ("ok_list", 10, None), ("ok_get", 10, None), ("ok_create", 6, None), ("ok_pay", 6, None),
    ("ok_admin", 2, None), ("ok_report", 3, None),
    ("auth_basic_missing", 3, "auth"), ("auth_basic_wrong", 2, "auth"), ("auth_ip_denied", 2, "auth"),
    ("auth_token_expired", 3, "auth"), ("auth_token_revoked", 2, "auth"), ("auth_backend_scope", 3, "auth"),
    ("routing_unmatched", 4, "routing"), ("routing_backend_no_handler", 2, "routing"),
    ("quota_gateway_429", 5, "quota"), ("quota_gateway_503", 3, "quota"), ("quota_backend", 3, "quota"),
    ("transform_too_large", 3, "transform"), ("transform_validation", 4, "transform"),
    ("transform_bad_json", 2, "transform"),
    ("upstream_down", 6, "upstream"), ("upstream_timeout", 2, "upstream"), ("upstream_dependency", 4, "upstream"),
]
HEALTHY = [s for s in SCENARIOS if s[2] is None]


def request_for(name, rng):
    """(method, path, headers, body) for a scenario."""
    oid = rng.randint(1000, 9999)
    consumer = rng.choice(["acme", "globex", "umbrella"])
    h = {"X-Consumer-Id": consumer, "User-Agent": "realstack-client/1.0"}
    basic = lambda pw: "Basic " + base64.b64encode(f"ops:{pw}".encode()).decode()
    if name == "ok_list":
        return "GET", "/v1/orders?limit=20", h, None
    if name == "ok_get":
        return "GET", f"/v1/orders/{oid}", h, None
    if name == "ok_create":
        return "POST", "/v1/orders", h, json.dumps({"amount": rng.randint(1, 500)})
    if name == "ok_pay":
        return "POST", "/v1/payments", h, json.dumps({"card": "4242-4242-4242-4242", "amount": 12})
    if name == "ok_admin":
        return "GET", "/admin/stats", dict(h, Authorization=basic("s3cret")), None
    if name == "ok_report":
        return "GET", "/v1/reports", dict(h, **{"X-Token": "valid"}), None
    if name == "auth_basic_missing":
        return "GET", "/admin/stats", h, None
    if name == "auth_basic_wrong":
        return "GET", "/admin/stats", dict(h, Authorization=basic("guess")), None
    if name == "auth_ip_denied":
        return "GET", "/internal/metrics", h, None
    if name == "auth_token_expired":
        return "GET", "/v1/reports", dict(h, **{"X-Token": "expired"}), None
    if name == "auth_token_revoked":
        return "GET", "/v1/reports", dict(h, **{"X-Token": "revoked"}), None
    if name == "auth_backend_scope":
        return "GET", f"/v1/orders/{oid}", dict(h, **{"X-Scope": "none"}), None
    if name == "routing_unmatched":
        return "GET", rng.choice(["/v2/orders", "/v1/ordrs", "/api/v1/orders", "/v1/customers/42"]), h, None
    if name == "routing_backend_no_handler":
        return "GET", rng.choice(["/v1/orders-archive", "/v1/orders_v2"]), h, None
    if name == "quota_gateway_429":
        return "GET", "/v1/search?q=widgets", dict(h, **{"X-Consumer-Id": "initech"}), None
    if name == "quota_gateway_503":
        return "GET", "/v1/export", dict(h, **{"X-Consumer-Id": "initech"}), None
    if name == "quota_backend":
        return "POST", "/v1/payments", dict(h, **{"X-Consumer-Id": "globex"}), json.dumps({"burst": True, "card": "4242-4242-4242-4242"})
    if name == "transform_too_large":
        return "POST", "/v1/orders/import", h, json.dumps({"rows": ["x" * 64] * 64})
    if name == "transform_validation":
        return "POST", "/v1/orders", h, json.dumps({"amount": -rng.randint(1, 50)})
    if name == "transform_bad_json":
        return "POST", "/v1/orders", h, '{"amount": 12,,}'
    if name == "upstream_down":
        return "GET", f"/v1/inventory/{oid}", h, None
    if name == "upstream_timeout":
        return "GET", "/v1/slow", h, None
    if name == "upstream_dependency":
        return "POST", "/v1/payments", h, json.dumps({"card": "4000-0000-0000-0119", "amount": 99})
    if name == "upstream_flaky":
        # The bank times out on the first charge of an idempotency key; a retry
        # with the same key succeeds (backend.Payments.flaky_first_attempt).
        return "POST", "/v1/payments", dict(h, **{"Idempotency-Key": "idem-%08x" % rng.getrandbits(32)}), \
            json.dumps({"card": "4000-0000-0000-0259", "amount": 40})
    raise ValueError(name)


def send_one(port, method, path, headers, body, traceparent):
    if traceparent:
        headers = dict(headers, traceparent=traceparent)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    resp.read()
    rid = resp.getheader("X-Request-Id", "") or headers.get("X-Request-Id", "")
    conn.close()
    return resp.status, rid


def send(port, job):
    i, name, label, method, path, headers, body, traceparent = job
    status, rid = send_one(port, method, path, headers, body, traceparent)
    return i, name, label, method, path, status, rid


RETRY_STATUSES = (429, 500, 502, 503, 504)


def send_group(port, group):
    """A client keeping one trace over several requests: a retried operation
    (same request, same trace id, a new span id each attempt, retried while it
    fails) or a batch job (different calls, one after the other). Rows:
    (i, k, name, label, method, path, status, rid, trace_id, attempt, retry_of)."""
    i, kind, trace_id, steps = group
    rows = []
    if kind == "retry":
        (name, label, method, path, headers, body), variants = steps[0], steps[1]
        for n, (tp, extra) in enumerate(variants, start=1):
            status, rid = send_one(port, method, path, dict(headers, **extra), body, tp)
            rows.append([i, n - 1, name, label, method, path, status, rid, trace_id, n,
                         rows[-1][7] if rows else ""])
            if status not in RETRY_STATUSES or n == len(variants):
                break
            time.sleep(0.15 * n)  # backoff
        if len(rows) == 1:
            rows[0][9] = ""  # it worked the first time: no retry happened
    else:
        for k, (name, label, method, path, headers, body, tp) in enumerate(steps):
            status, rid = send_one(port, method, path, headers, body, tp)
            rows.append([i, k, name, label, method, path, status, rid, trace_id, "", ""])
            time.sleep(0.02)
    return rows


def expected_label(name, label, status):
    """The injected cause, given whether the failure actually happened."""
    if label is None:
        return "none"
    if name in ("quota_gateway_429", "quota_gateway_503"):
        # nginx answers limit_req with 429 or its default 503; HAProxy here with 429.
        return "quota" if status in (429, 503) else "none"
    if name == "upstream_flaky":
        # Fails on the first attempt only.
        return label if status >= 500 else "none"
    return label


def trace_groups(jobs, rng, pool, gateway, requests):
    """--retry-in-trace: turns some incident-phase requests into a retried
    operation or a batch job, each under one trace id."""
    names = {s[0] for s in pool}
    retryable = [n for n in ("upstream_down", "upstream_flaky", "upstream_flaky", "upstream_dependency", "quota_gateway_429")
                 if n in names or n == "upstream_flaky"]
    by_name = {s[0]: s for s in SCENARIOS}
    out = []
    for job in jobs:
        i = job[0]
        roll = rng.random()
        if i < requests // 5 or roll >= 0.10:
            out.append(job)
            continue
        trace_id = "%032x" % (rng.getrandbits(128) | 1)

        def tp():
            return "00-%s-%016x-01" % (trace_id, rng.getrandbits(64) | 1)

        def rid_header():
            # HAProxy's request id is the one the client sends, a new one per request.
            return {"X-Request-Id": "%032x" % rng.getrandbits(128)} if gateway == "haproxy" else {}

        if roll < 0.06:
            name = rng.choice(retryable)
            label = by_name[name][2] if name in by_name else "upstream"
            method, path, headers, body = request_for(name, rng)
            variants = [(tp(), rid_header()) for _ in range(3)]
            out.append(("group", (i, "retry", trace_id, [(name, label, method, path, headers, body), variants])))
        else:
            first = rng.choice(["ok_list", "ok_get"])
            second = rng.choice(["ok_create", "ok_pay"])
            rest = [s for s in pool if s[0] not in (first, second)]
            third = rng.choices(rest, weights=[s[1] for s in rest])[0][0]
            steps = []
            for name in (first, second, third):
                method, path, headers, body = request_for(name, rng)
                steps.append((name, by_name[name][2], method, path, dict(headers, **rid_header()), body, tp()))
            out.append(("group", (i, "batch", trace_id, steps)))
    return out


def start_gateway(args, prefix, out, port, orders, payments, fixtures):
    """Writes the gateway's configuration and starts it in the foreground."""
    if args.gateway == "nginx" and args.profile == "ingress":
        conf = NGINX_INGRESS_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            prefix=prefix, out=out, port=port, orders_port=orders.port, payments_port=payments.port,
            dead_port=dead_port(), default_backend_port=free_port(),
        )
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        return subprocess.Popen([args.nginx, "-p", prefix, "-c", conf_path])
    if args.gateway == "nginx":
        extra_logs = ""
        error_log = os.path.join(prefix, "error.log")
        if fixtures:
            os.makedirs(fixtures, exist_ok=True)
            extra_logs = (f"access_log {fixtures}/nginx-upstreaminfo.log upstreaminfo;\n"
                          f"    access_log {fixtures}/nginx-json.log gw_json;")
            error_log = os.path.join(fixtures, "nginx-error.log")
        conf = NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "",
            prefix=prefix, out=out, port=port, orders_port=orders.port, payments_port=payments.port,
            dead_port=dead_port(), extra_logs=extra_logs, error_log=error_log,
        )
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        return subprocess.Popen([args.nginx, "-p", prefix, "-c", conf_path])
    if args.gateway == "apache":
        os.chmod(prefix, 0o755)  # the worker user reads htpasswd
        template = APACHE_UNIQUE_ID_CONF if args.profile == "unique_id" else APACHE_CONF
        conf = template.format(prefix=prefix, out=out, port=port, orders_port=orders.port,
                               payments_port=payments.port, dead_port=dead_port(),
                               header_condition=args.apache_header_condition,
                               user="User www-data\nGroup www-data" if os.geteuid() == 0 else "")
        conf_path = os.path.join(prefix, "apache.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        return subprocess.Popen([args.apache, "-f", conf_path, "-DFOREGROUND"])
    if args.gateway == "caddy":
        conf = CADDY_UUID_CONF.format(prefix=prefix, out=out, port=port, orders_port=orders.port,
                                      payments_port=payments.port, dead_port=dead_port())
        conf_path = os.path.join(prefix, "Caddyfile")
        with open(conf_path, "w") as f:
            f.write(conf)
        env = dict(os.environ, HOME=prefix, XDG_DATA_HOME=prefix, XDG_CONFIG_HOME=prefix)
        # Caddy's own (non-access) log goes to stderr; kept out of OUT_DIR.
        runtime_log = open(os.path.join(prefix, "caddy-runtime.log"), "w")
        return subprocess.Popen([args.caddy, "run", "--config", conf_path, "--adapter", "caddyfile"],
                                env=env, stdout=runtime_log, stderr=runtime_log)
    template = HAPROXY_CAPTURE_CONF if args.profile == "capture" else HAPROXY_CONF
    conf = template.format(port=port, orders_port=orders.port, payments_port=payments.port,
                           dead_port=dead_port())
    conf_path = os.path.join(prefix, "haproxy.cfg")
    with open(conf_path, "w") as f:
        f.write(conf)
    # `log stdout`: HAProxy writes its access log to standard output.
    access = open(os.path.join(out, "gateway", "access.log"), "w")
    return subprocess.Popen([args.haproxy, "-db", "-f", conf_path], stdout=access)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--fixtures")
    ap.add_argument("--gateway", choices=["nginx", "haproxy", "apache", "caddy"], default="nginx")
    ap.add_argument("--profile", default="default",
                    help="gateway configuration: nginx default|ingress, haproxy default|capture, "
                         "apache default|unique_id, caddy uuid (see tests/realstack/PROFILES.md)")
    ap.add_argument("--incident", default="",
                    help="comma-separated scenarios that dominate the incident phase (weight x8): an "
                         "incident is usually one cause, e.g. a consumer hitting a rate limit")
    ap.add_argument("--retry-in-trace", action="store_true",
                    help="some clients keep one trace id over several requests (retries, a batch job); "
                         "adds trace_id, attempt, retry_of to the truth")
    ap.add_argument("--apache-header-condition", default="always ", help=argparse.SUPPRESS)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy")
    ap.add_argument("--apache", default=shutil.which("apache2") or "/usr/sbin/apache2")
    ap.add_argument("--caddy", default=shutil.which("caddy") or "/usr/bin/caddy")
    ap.add_argument("--otlp-grpc", metavar="HOST:PORT[,HOST:PORT...]", action="append", default=[],
                    help="also send orders' spans live with the SDK's OTLP/gRPC exporter "
                         "(repeatable; several endpoints, comma-separated, split by trace id)")
    ap.add_argument("--otlp-http", metavar="URL[,URL...]", action="append", default=[],
                    help="also send payments' spans and logs live with the SDK's OTLP/HTTP exporter "
                         "(repeatable; several endpoints, comma-separated, split by trace id)")
    ap.add_argument("--otlp-token", help="bearer token for both exporters")
    ap.add_argument("--ship-gateway", metavar="URL[,URL...]",
                    help="also send the gateway's access log lines as OTLP log records (the Collector's "
                         "filelog receiver), routed by the trace id in their traceparent")
    args = ap.parse_args()
    if args.gateway == "caddy" and args.profile == "default":
        args.profile = "uuid"
    if args.profile not in PROFILES[args.gateway]:
        ap.error(f"--gateway {args.gateway} has profiles {', '.join(PROFILES[args.gateway])}")
    if args.fixtures and (args.gateway != "nginx" or args.profile != "default"):
        ap.error("--fixtures is for --gateway nginx with the default profile")
    rng = random.Random(args.seed)

    out = os.path.abspath(args.out)
    for sub in ("gateway", "orders", "payments", "otel"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    prefix = tempfile.mkdtemp(prefix="tracejoin-realstack-")
    for sub in ("tmp", "html"):
        os.makedirs(os.path.join(prefix, sub))
    sha = base64.b64encode(hashlib.sha1(b"s3cret").digest()).decode()
    with open(os.path.join(prefix, "htpasswd"), "w") as f:
        f.write(f"ops:{{SHA}}{sha}\n")

    spans_out = backend._JsonLinesFile(os.path.join(out, "otel", "traces.jsonl"))
    logs_out = backend._JsonLinesFile(os.path.join(out, "otel", "logs.jsonl"))
    orders = backend.Orders("orders", free_port(), os.path.join(out, "orders", "orders.log"),
                            backend.JsonFormatter(), spans_out,
                            otlp=[("grpc", e, args.otlp_token) for e in args.otlp_grpc])
    payments = backend.Payments("payments", free_port(), os.path.join(out, "payments", "payments.log"),
                                backend.LogfmtFormatter(), spans_out, logs_out,
                                otlp=[("http", e, args.otlp_token) for e in args.otlp_http])
    orders.start()
    payments.start()

    port = free_port()
    fixtures = os.path.abspath(args.fixtures) if args.fixtures else None
    gateway = start_gateway(args, prefix, out, port, orders, payments, fixtures)
    shipper = None
    if args.ship_gateway:
        shipper = backend.GatewayShipper(os.path.join(out, "gateway", "access.log"),
                                         args.ship_gateway, args.otlp_token, args.seed)
        shipper.start()
    try:
        wait_port(port)
        if args.gateway == "haproxy" and args.profile == "capture":
            time.sleep(1.0)  # be_inventory's health check marks its only server DOWN
        jobs = []
        for i in range(args.requests):
            # The first fifth is a healthy baseline; then the incident starts.
            pool = HEALTHY if i < args.requests // 5 else SCENARIOS
            if args.gateway != "nginx":
                pool = [s for s in pool if s[0] not in UNSUPPORTED[args.gateway]]
            boost = set(filter(None, args.incident.split(",")))
            weights = [s[1] * (8 if s[0] in boost else 1) for s in pool]
            name, _, label = rng.choices(pool, weights=weights)[0]
            method, path, headers, body = request_for(name, rng)
            if args.gateway == "haproxy":
                headers = dict(headers, **{"X-Request-Id": "%032x" % rng.getrandbits(128)})
            tp = None
            if rng.random() < 0.7:
                tp = "00-%032x-%016x-01" % (rng.getrandbits(128) | 1, rng.getrandbits(64) | 1)
            if args.gateway in ("nginx", "caddy") and rng.random() < 0.2:
                headers = dict(headers, **{"X-Request-Id": "cli-%08x" % rng.getrandbits(32)})
            jobs.append((i, name, label, method, path, headers, body, tp))
        if args.retry_in_trace:
            pool = [s for s in SCENARIOS if s[0] not in UNSUPPORTED.get(args.gateway, set())]
            jobs = trace_groups(jobs, rng, pool, args.gateway, args.requests)
        rows = []
        with ThreadPoolExecutor(max_workers=4) as ex:
            futures = []
            for job in jobs:
                if job[0] == "group":
                    futures.append(ex.submit(send_group, port, job[1]))
                else:
                    futures.append(ex.submit(send, port, job))
                time.sleep(0.01)
            for fu in futures:
                r = fu.result()
                if isinstance(r, list):
                    rows.extend(r)
                else:
                    i, name, label, method, path, status, rid = r
                    tp = jobs[i][7] if not isinstance(jobs[i][0], str) else None
                    rows.append([i, 0, name, label, method, path, status, rid,
                                 tp.split("-")[1] if tp else "", "", ""])
    finally:
        time.sleep(0.5)
        gateway.terminate()
        gateway.wait(timeout=10)
        if shipper:
            shipper.stop()
        orders.stop()
        payments.stop()
        shutil.rmtree(prefix, ignore_errors=True)

    rows.sort(key=lambda r: (r[0], r[1]))
    with open(args.truth, "w", newline="") as f:
        w = csv.writer(f)
        head = ["request_id", "scenario", "label", "method", "path", "status"]
        if args.retry_in_trace:
            head += ["trace_id", "attempt", "retry_of"]
        w.writerow(head)
        for i, k, name, label, method, path, status, rid, trace_id, attempt, retry_of in rows:
            row = [rid, name, expected_label(name, label, status), method, path, status]
            if args.retry_in_trace:
                row += [trace_id, attempt, retry_of]
            w.writerow(row)
    print(f"{len(rows)} requests -> {out}; truth in {args.truth}", file=sys.stderr)


if __name__ == "__main__":
    main()
