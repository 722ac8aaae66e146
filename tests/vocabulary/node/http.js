// routing / quota / transform: real servers on 127.0.0.1, real HTTP requests via fetch
const { emit, ver } = require('./emit');
const listen = (app) => new Promise(r => { const s = app.listen(0, '127.0.0.1', () => r(s)); });
const base = (s) => `http://127.0.0.1:${s.address().port}`;
(async () => {
  for (const [pkg, bp] of [['express4', 'express4/node_modules/body-parser'], ['express', 'body-parser']]) {
    const express = require(pkg); const v = ver(pkg); const name = 'express';
    const bpv = ver(bp);
    const app = express();
    app.use(express.json({ limit: '100b' }));
    app.post('/j', (req, res) => res.send('ok'));
    app.use((err, req, res, next) => { res.status(err.status || 500).type('text/plain').send(`${err.type}|${err.message}`); });
    const s = await listen(app); const b = base(s);
    let r = await fetch(b + '/x'); let body = await r.text();
    emit(name, v, 'routing', body.match(/<pre>(.*)<\/pre>/)[1], `GET /x on empty app, HTTP ${r.status} default finalhandler body <pre>..</pre>`);
    r = await fetch(b + '/j', { method: 'DELETE' }); body = await r.text();
    emit(name, v, 'routing', body.match(/<pre>(.*)<\/pre>/)[1], `DELETE /j (only POST routed), HTTP ${r.status} default body`);
    for (const [how, payload] of [['trailing comma {"a":1,}', '{"a":1,}'], ['unquoted key {a:1}', '{a:1}'], ['truncated {"a":', '{"a":'], ['missing value {"a":}', '{"a":}'], ['strict mode: top-level string', '"hello"']]) {
      r = await fetch(b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload }); body = await r.text();
      const [type, msg] = body.split('|');
      emit('body-parser', bpv, 'transform', msg, `via ${pkg === 'express4' ? 'express@' + v : 'express@' + v} express.json(), POST ${how}, HTTP ${r.status} err.type=${type}, Node ${process.version}`);
    }
    r = await fetch(b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(200) }) }); body = await r.text();
    emit('body-parser', bpv, 'transform', body.split('|')[1], `via express@${v} express.json({limit:'100b'}), 200-byte body, HTTP ${r.status} err.type=${body.split('|')[0]}`);
    r = await fetch(b + '/j', { method: 'POST', headers: { 'content-type': 'application/json; charset=latin-9' }, body: '{}' }); body = await r.text();
    emit('body-parser', bpv, 'transform', body.split('|')[1], `via express@${v}, charset=latin-9, HTTP ${r.status} err.type=${body.split('|')[0]}`);
    s.close();
  }
  // express-rate-limit
  { const express = require('express'); const { rateLimit } = require('express-rate-limit');
    const v = require('fs').readFileSync(require.resolve('express-rate-limit').replace(/dist.*$/, 'package.json'), 'utf8').match(/"version": "([^"]+)"/)[1];
    const app = express(); app.use(rateLimit({ windowMs: 60000, limit: 1 })); app.get('/x', (q, s) => s.send('ok'));
    const s = await listen(app); const b = base(s); await fetch(b + '/x'); const r = await fetch(b + '/x');
    emit('express-rate-limit', v, 'quota', await r.text(), `default options limit:1, second GET, HTTP ${r.status} body; ratelimit-policy=${r.headers.get('ratelimit-policy')}`); s.close(); }
  // fastify
  { const fastify = require('fastify')({ logger: false }); const v = ver('fastify');
    fastify.post('/v', { schema: { body: { type: 'object', required: ['x'], properties: { x: { type: 'integer' } } } } }, async () => 'ok');
    fastify.post('/j', async () => 'ok');
    await fastify.listen({ port: 0, host: '127.0.0.1' }); const b = `http://127.0.0.1:${fastify.server.address().port}`;
    const tries = [
      ['routing', 'GET /x unknown route', b + '/x', {}],
      ['routing', 'DELETE /j (only POST routed)', b + '/j', { method: 'DELETE' }],
      ['transform', 'POST {"a":1,} bad JSON', b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1,}' }],
      ['transform', 'POST <a/> with content-type text/xml', b + '/j', { method: 'POST', headers: { 'content-type': 'text/xml' }, body: '<a/>' }],
      ['transform', 'POST empty body with application/json', b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '' }],
      ['transform', 'schema: missing required x', b + '/v', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }],
      ['transform', 'schema: x is a string', b + '/v', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"x":"abc"}' }],
      ['transform', 'body over 1 MiB default bodyLimit', b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ a: 'x'.repeat(1100000) }) }],
    ];
    for (const [label, how, url, opt] of tries) { const r = await fetch(url, opt); const j = await r.json();
      emit('fastify', v, label, j.message, `${how}; HTTP ${r.status} JSON .message code=${j.code} error=${j.error}`); }
    await fastify.close(); }
  // hapi routing + hapi-rate-limit
  { const Hapi = require('@hapi/hapi'); const v = ver('@hapi/hapi');
    const server = Hapi.server({ port: 0, host: '127.0.0.1' });
    await server.register({ plugin: require('hapi-rate-limit'), options: { userLimit: 1, pathLimit: false, userPathLimit: false, userCache: { expiresIn: 60000 } } });
    server.route({ method: 'POST', path: '/j', handler: () => 'ok' });
    server.route({ method: 'GET', path: '/r', handler: () => 'ok' });
    server.route({ method: 'POST', path: '/v', options: { validate: { payload: require('joi').object({ x: require('joi').number().required() }) } }, handler: () => 'ok' });
    await server.start(); const b = server.info.uri;
    let r = await fetch(b + '/x'); let j = await r.json(); emit('@hapi/hapi', v, 'routing', j.message, `GET /x unknown route; HTTP ${r.status} JSON ${JSON.stringify(j)}`);
    r = await fetch(b + '/j', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1,}' }); j = await r.json(); emit('@hapi/hapi', v, 'transform', j.message, `POST bad JSON {"a":1,}; HTTP ${r.status} JSON ${JSON.stringify(j)}`);
    r = await fetch(b + '/j', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<a/>' }); j = await r.json(); emit('@hapi/hapi', v, 'transform', j.message, `POST application/xml; HTTP ${r.status} JSON ${JSON.stringify(j)}`);
    r = await fetch(b + '/v', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }); j = await r.json(); emit('@hapi/hapi', v, 'transform', j.message, `route validate.payload joi, POST {}; HTTP ${r.status} JSON ${JSON.stringify(j)}`);
    await fetch(b + '/r'); r = await fetch(b + '/r'); j = await r.json();
    emit('hapi-rate-limit', ver('hapi-rate-limit'), 'quota', j.message, `userLimit:1, second GET; HTTP ${r.status} JSON ${JSON.stringify(j)}`);
    await server.stop(); }
})();
