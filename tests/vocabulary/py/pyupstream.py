# requests/urllib3, httpx, grpcio: every target on 127.0.0.1 (closed port = refused; silent listener = timeout)
import socket, threading, time
from emit import emit, ver
import requests, httpx, grpc
def closed_port():
    s = socket.socket(); s.bind(('127.0.0.1', 0)); p = s.getsockname()[1]; s.close(); return p
cp = closed_port()
sil = socket.socket(); sil.bind(('127.0.0.1', 0)); sil.listen(16); sp = sil.getsockname()[1]   # accepts (backlog) but never answers
rv, uv = ver('requests'), ver('urllib3')
for how, f in [(f'GET closed port 127.0.0.1:{cp}', lambda: requests.get(f'http://127.0.0.1:{cp}/x')),
               ('GET silent server timeout=0.5', lambda: requests.get(f'http://127.0.0.1:{sp}/x', timeout=0.5)),
               ('GET silent server timeout=(0.5,0.5) via Session with Retry(total=2)', None)]:
    if f is None:
        from requests.adapters import HTTPAdapter; from urllib3.util.retry import Retry
        ss = requests.Session(); ss.mount('http://', HTTPAdapter(max_retries=Retry(total=2, backoff_factor=0)))
        f = lambda: ss.get(f'http://127.0.0.1:{sp}/x', timeout=0.5)
    try: f()
    except Exception as e:
        emit('requests', rv, 'upstream', str(e), f'requests.get {how}; {type(e).__name__}; urllib3 {uv}')
# 503 from server -> raise_for_status
import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self): self.send_response(503); self.end_headers(); self.wfile.write(b'down')
    def log_message(self, *a): pass
hs = http.server.HTTPServer(('127.0.0.1', 0), H); threading.Thread(target=hs.serve_forever, daemon=True).start()
try: requests.get(f'http://127.0.0.1:{hs.server_port}/x').raise_for_status()
except Exception as e: emit('requests', rv, 'upstream', str(e), f'raise_for_status() on a 503 answer; {type(e).__name__}')
# urllib3 directly
import urllib3
try: urllib3.PoolManager(retries=False).request('GET', f'http://127.0.0.1:{cp}/x')
except Exception as e: emit('urllib3', uv, 'upstream', str(e), f'PoolManager(retries=False) GET closed port; {type(e).__name__}')
# httpx
xv = ver('httpx')
for how, f in [('GET closed port', lambda: httpx.get(f'http://127.0.0.1:{cp}/x')),
               ('GET silent server timeout=0.5', lambda: httpx.get(f'http://127.0.0.1:{sp}/x', timeout=0.5)),
               ('GET silent server Timeout(5, read=0.5), after connect', lambda: httpx.get(f'http://127.0.0.1:{sp}/x', timeout=httpx.Timeout(5, read=0.5)))]:
    try: f()
    except Exception as e: emit('httpx', xv, 'upstream', str(e), f'httpx.get {how}; {type(e).__name__}')
import asyncio
async def ah():
    async with httpx.AsyncClient() as c: await c.get(f'http://127.0.0.1:{cp}/x')
try: asyncio.run(ah())
except Exception as e: emit('httpx', xv, 'upstream', str(e), f'AsyncClient.get closed port; {type(e).__name__}')
try: httpx.get(f'http://127.0.0.1:{hs.server_port}/x').raise_for_status()
except Exception as e: emit('httpx', xv, 'upstream', str(e).splitlines()[0], f'raise_for_status() on a 503 answer, first line of str(exc); {type(e).__name__}')
# grpcio
gv = ver('grpcio')
ch = grpc.insecure_channel(f'127.0.0.1:{cp}')
try: ch.unary_unary('/pkg.Svc/M')(b'', timeout=2)
except grpc.RpcError as e: emit('grpcio', gv, 'upstream', e.details(), f'unary call to closed port; code={e.code()} .details()')
from concurrent import futures
srv = grpc.server(futures.ThreadPoolExecutor(2))
def slow(req, ctx): time.sleep(2); return b''
srv.add_generic_rpc_handlers([grpc.method_handlers_generic_handler('pkg.Svc', {'Slow': grpc.unary_unary_rpc_method_handler(slow)})])
port = srv.add_insecure_port('127.0.0.1:0'); srv.start()
ch = grpc.insecure_channel(f'127.0.0.1:{port}')
for how, m, t in [('deadline 0.3s, handler sleeps 2s', '/pkg.Svc/Slow', 0.3), ('unregistered method', '/pkg.Svc/Missing', 2)]:
    try: ch.unary_unary(m)(b'', timeout=t)
    except grpc.RpcError as e: emit('grpcio', gv, 'routing' if 'unregistered' in how else 'upstream', e.details(), f'unary call {how}; code={e.code()} .details()')
srv.stop(0)
# A dependency answering something that is not JSON: Python's json, as httpx's and requests' .json() raise it
import json, sys
pv = '.'.join(map(str, sys.version_info[:3]))
for body in ['<html><body>502 Bad Gateway</body></html>', '']:
    try: json.loads(body)
    except Exception as e: emit('Python json', pv, 'transform', str(e), f'json.loads({body[:6]!r}...) ; {type(e).__module__}.{type(e).__name__}')
try: httpx.Response(200, content=b'<html>oops</html>').json()
except Exception as e: emit('httpx', xv, 'transform', str(e), f'Response.json() on an HTML 200; {type(e).__module__}.{type(e).__name__}')
# A dependency refusing the service's credential or limiting it: raise_for_status() on its 401 / 429 (first line)
for code, label in ((401, 'auth'), (429, 'quota')):
    try: httpx.Response(code, request=httpx.Request('GET', 'http://127.0.0.1:8081/balances/1')).raise_for_status()
    except Exception as e: emit('httpx', xv, label, str(e).splitlines()[0], f'Response.raise_for_status() on a {code}; HTTPStatusError (second line: For more information check: <MDN URL>)')
