# FastAPI/Starlette/slowapi via a real uvicorn server on 127.0.0.1, requests via httpx
import threading, time, logging, io, socket
from emit import emit, ver
from fastapi import FastAPI, Depends, Request
from fastapi.security import HTTPBearer, OAuth2PasswordBearer, HTTPBasic, APIKeyHeader
from pydantic import BaseModel
from slowapi import Limiter, _rate_limit_exceeded_handler
from slowapi.util import get_remote_address
from slowapi.errors import RateLimitExceeded
import uvicorn, httpx

logbuf = io.StringIO(); h = logging.StreamHandler(logbuf); h.setFormatter(logging.Formatter('%(name)s|%(levelname)s|%(message)s'))
logging.getLogger('slowapi').addHandler(h); logging.getLogger('slowapi').setLevel(logging.DEBUG)
limiter = Limiter(key_func=get_remote_address)
app = FastAPI(); app.state.limiter = limiter
app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)
class Item(BaseModel):
    x: int
@app.post('/items')
def items(item: Item): return item
@app.get('/bearer')
def b(c=Depends(HTTPBearer())): return 'ok'
@app.get('/oauth2')
def o(c=Depends(OAuth2PasswordBearer(tokenUrl='token'))): return 'ok'
@app.get('/basic')
def ba(c=Depends(HTTPBasic())): return 'ok'
@app.get('/apikey')
def ak(c=Depends(APIKeyHeader(name='X-API-Key'))): return 'ok'
@app.get('/limited')
@limiter.limit('5/minute')
def lim(request: Request): return 'ok'

s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()
server = uvicorn.Server(uvicorn.Config(app, host='127.0.0.1', port=port, log_level='warning'))
threading.Thread(target=server.run, daemon=True).start()
while not server.started: time.sleep(0.05)
B = f'http://127.0.0.1:{port}'
fv, sv = ver('fastapi'), ver('starlette')
def run(label, lib, how, method, path, **kw):
    r = httpx.request(method, B + path, **kw); j = r.json(); d = j.get('detail', j.get('error'))
    msg = d if isinstance(d, str) else d[0]['msg']
    emit(lib, fv if lib == 'FastAPI' else sv, label, msg, f"uvicorn {ver('uvicorn')} + fastapi {fv}, {method} {path} {how}; HTTP {r.status_code} body {r.text[:160]}" + (f"; www-authenticate={r.headers.get('www-authenticate')}" if r.status_code == 401 else ''))
run('routing', 'Starlette', 'unknown path', 'GET', '/x')
run('routing', 'Starlette', 'GET on POST-only route', 'GET', '/items')
run('transform', 'FastAPI', 'body {} (x missing)', 'POST', '/items', json={})
run('transform', 'FastAPI', 'body {"x":"abc"}', 'POST', '/items', json={'x': 'abc'})
run('transform', 'FastAPI', 'malformed JSON {"x":1,}', 'POST', '/items', content=b'{"x":1,}', headers={'content-type': 'application/json'})
run('auth', 'FastAPI', 'HTTPBearer, no Authorization header', 'GET', '/bearer')
run('auth', 'FastAPI', 'HTTPBearer, Authorization: Basic xyz', 'GET', '/bearer', headers={'authorization': 'Basic xyz'})
run('auth', 'FastAPI', 'OAuth2PasswordBearer, no header', 'GET', '/oauth2')
run('auth', 'FastAPI', 'HTTPBasic, no header', 'GET', '/basic')
run('auth', 'FastAPI', 'HTTPBasic, Authorization: Basic !!!', 'GET', '/basic', headers={'authorization': 'Basic !!!'})
run('auth', 'FastAPI', 'APIKeyHeader, no X-API-Key', 'GET', '/apikey')
for i in range(5): httpx.get(B + '/limited')
r = httpx.get(B + '/limited')
emit('slowapi', ver('slowapi'), 'quota', r.json()['error'], f"@limiter.limit('5/minute') + _rate_limit_exceeded_handler, 6th GET; HTTP {r.status_code} body {r.text}; limits {ver('limits')}")
for line in logbuf.getvalue().splitlines():
    name, lvl, msg = line.split('|', 2)
    emit('slowapi', ver('slowapi'), 'quota', msg, f"logger '{name}' {lvl} line written on the 6th GET")
server.should_exit = True; time.sleep(0.3)
