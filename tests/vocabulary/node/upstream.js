// upstream: every target is on 127.0.0.1 (port 1 = refused; a local server that never answers = timeout)
const { emit, ver } = require('./emit');
const net = require('net'); const http = require('http');
const silent = () => new Promise(r => { const socks = []; const s = net.createServer(c => socks.push(c)); s.listen(0, '127.0.0.1', () => r([s, socks])); });
const resetter = () => new Promise(r => { const s = net.createServer(c => { c.on('data', () => c.destroy()); }); s.listen(0, '127.0.0.1', () => r(s)); });
(async () => {
  const node = process.version.slice(1), und = process.versions.undici;
  const [sil, socks] = await silent(); const silPort = sil.address().port;
  const rst = await resetter(); const rstPort = rst.address().port;
  const closed = await new Promise(r => { const s = net.createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
  const f = async (how, url, opt) => { try { await fetch(url, opt); } catch (e) {
      emit('Node.js fetch', node, 'upstream', e.message, `global fetch ${how}; ${e.name}; bundled undici ${und}`, `node@${node}`);
      if (e.cause) emit('Node.js fetch', node, 'upstream', e.cause.message, `global fetch ${how}; err.cause ${e.cause.name} code=${e.cause.code}; bundled undici ${und}`, `node@${node}`);
  } };
  await f('to 127.0.0.1:1 (port 1 is on the fetch bad-ports list)', 'http://127.0.0.1:1/');
  await f('to a closed port on 127.0.0.1 (refused)', `http://127.0.0.1:${closed}/`);
  await f('AbortSignal.timeout(200) against silent server', `http://127.0.0.1:${silPort}/`, { signal: AbortSignal.timeout(200) });
  { const ac = new AbortController(); setTimeout(() => ac.abort(), 200); await f('AbortController.abort() against silent server', `http://127.0.0.1:${silPort}/`, { signal: ac.signal }); }
  await f('server destroys socket on request', `http://127.0.0.1:${rstPort}/`);
  // undici package with headersTimeout
  { const undici = require('undici'); const uv = ver('undici');
    for (const [how, url, opt] of [['request to 127.0.0.1:1', 'http://127.0.0.1:1/', {}], ['request headersTimeout:200 silent server', `http://127.0.0.1:${silPort}/`, { headersTimeout: 200 }]]) {
      try { await undici.request(url, opt); } catch (e) { emit('undici', uv, 'upstream', e.message, `undici.${how}; ${e.name} code=${e.code}`); } } }
  // axios
  { const axios = require('axios'); const v = ver('axios');
    for (const [how, url, opt] of [['GET 127.0.0.1:1', 'http://127.0.0.1:1/', {}], ['timeout:1000 silent server', `http://127.0.0.1:${silPort}/`, { timeout: 1000 }], ['server destroys socket', `http://127.0.0.1:${rstPort}/`, {}]]) {
      try { await axios.get(url, opt); } catch (e) { emit('axios', v, 'upstream', e.message, `axios.get ${how}; ${e.name} code=${e.code}`); } }
    // HTTP error status from upstream
    const s = http.createServer((q, r) => { r.statusCode = 503; r.end('down'); }); await new Promise(r => s.listen(0, '127.0.0.1', r));
    try { await axios.get(`http://127.0.0.1:${s.address().port}/`); } catch (e) { emit('axios', v, 'upstream', e.message, `axios.get against server answering 503; ${e.name} code=${e.code}`); }
    s.close(); }
  // node-postgres
  { const pg = require('pg'); const v = ver('pg');
    const tries = [
      ['Client.connect to 127.0.0.1:1', async () => { const c = new pg.Client({ host: '127.0.0.1', port: 1 }); await c.connect(); }],
      ['Client connectionTimeoutMillis:200 against silent server', async () => { const c = new pg.Client({ host: '127.0.0.1', port: silPort, connectionTimeoutMillis: 200 }); await c.connect(); }],
      ['Pool connectionTimeoutMillis:200 against silent server', async () => { const p = new pg.Pool({ host: '127.0.0.1', port: silPort, connectionTimeoutMillis: 200 }); await p.query('select 1'); }],
      ['Pool max:1 connectionTimeoutMillis:200, 2nd concurrent query waits for a slot', async () => { const p = new pg.Pool({ host: '127.0.0.1', port: silPort, max: 1, connectionTimeoutMillis: 200 }); const a = p.query('select 1').catch(() => {}); await p.query('select 1'); }],
      ['Client.connect to a server that closes socket', async () => { const c = new pg.Client({ host: '127.0.0.1', port: rstPort }); await c.connect(); }],
    ];
    for (const [how, fn] of tries) { try { await fn(); } catch (e) { emit('pg (node-postgres)', v, 'upstream', e.message, `${how}; ${e.name} code=${e.code}`); } } }
  // grpc-js
  { const grpc = require('@grpc/grpc-js'); const v = ver('@grpc/grpc-js');
    const call = (port, deadlineMs) => new Promise(res => { const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      c.makeUnaryRequest('/pkg.Svc/Method', x => x, x => x, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err) => { c.close(); res(err); }); });
    let e = await call(1, 2000); emit('@grpc/grpc-js', v, 'upstream', e.message, `unary call to 127.0.0.1:1; code=${e.code} details="${e.details}"`);
    emit('@grpc/grpc-js', v, 'upstream', e.details, `unary call to 127.0.0.1:1; err.details (status ${grpc.status[e.code]})`);
    const srv = new grpc.Server(); srv.register('/pkg.Svc/Slow', (call, cb) => {}, x => x, x => x, 'unary');
    const port = await new Promise(r => srv.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => r(p)));
    const slow = await new Promise(res => { const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      c.makeUnaryRequest('/pkg.Svc/Slow', x => x, x => x, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 300 }, (err) => { c.close(); res(err); }); });
    emit('@grpc/grpc-js', v, 'upstream', slow.message, `unary call, server never answers, deadline 300ms; code=${slow.code}`);
    const un = await new Promise(res => { const c = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
      c.makeUnaryRequest('/pkg.Svc/Missing', x => x, x => x, Buffer.alloc(0), new grpc.Metadata(), {}, (err) => { c.close(); res(err); }); });
    emit('@grpc/grpc-js', v, 'routing', un.message, `unary call to unregistered method on a real grpc-js server; code=${un.code}`);
    srv.forceShutdown(); }
  sil.close(); socks.forEach(s => s.destroy()); rst.close();
  process.exit(0);
})();
