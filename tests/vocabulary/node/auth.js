const { emit, ver } = require('./emit');
(async () => {
  // jsonwebtoken
  const jwt = require('jsonwebtoken'); const v = ver('jsonwebtoken');
  const expired = jwt.sign({ sub: '42', exp: Math.floor(Date.now()/1000) - 60 }, 's3cret');
  const good = jwt.sign({ sub: '42', aud: 'api' }, 's3cret');
  const tries = [
    ['expired token', () => jwt.verify(expired, 's3cret')],
    ['wrong secret', () => jwt.verify(good, 'other')],
    ['garbage token', () => jwt.verify('not-a-jwt', 's3cret')],
    ['empty token', () => jwt.verify('', 's3cret')],
    ['wrong audience', () => jwt.verify(good, 's3cret', { audience: 'other' })],
    ['token cut in two parts', () => jwt.verify(good.split('.').slice(0,2).join('.') + '.', 's3cret')],
    ['not-before in future', () => jwt.verify(jwt.sign({ nbf: Math.floor(Date.now()/1000)+3600 }, 's3cret'), 's3cret')],
  ];
  for (const [how, f] of tries) { try { f(); } catch (e) { emit('jsonwebtoken', v, 'auth', e.message, `jwt.verify ${how}; ${e.name}`); } }
  // jose
  const jose = require('jose'); const jv = ver('jose');
  const key = new TextEncoder().encode('a-string-secret-at-least-256-bits-long');
  const other = new TextEncoder().encode('another-secret-at-least-256-bits-long!');
  const exp = await new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(Date.now()/1000) - 60).sign(key);
  const ok = await new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setAudience('api').sign(key);
  for (const [how, f] of [
    ['expired token', () => jose.jwtVerify(exp, key)],
    ['wrong key', () => jose.jwtVerify(ok, other)],
    ['garbage token', () => jose.jwtVerify('not-a-jwt', key)],
    ['wrong audience', () => jose.jwtVerify(ok, key, { audience: 'other' })],
  ]) { try { await f(); } catch (e) { emit('jose', jv, 'auth', e.message, `jwtVerify ${how}; ${e.name} code=${e.code}`); } }
  // @hapi/jwt through a real hapi server
  const Hapi = require('@hapi/hapi'); const hj = require('@hapi/jwt'); const hv = ver('@hapi/jwt');
  const server = Hapi.server();
  await server.register(hj);
  server.auth.strategy('jwt', 'jwt', { keys: 'some_shared_secret', verify: { aud: false, iss: false, sub: false, exp: true, maxAgeSec: 0 }, validate: () => ({ isValid: true }) });
  server.route({ method: 'GET', path: '/x', options: { auth: 'jwt' }, handler: () => 'ok' });
  const tokE = hj.token.generate({ exp: Math.floor(Date.now()/1000) - 60 }, 'some_shared_secret');
  const tokG = hj.token.generate({ }, 'some_shared_secret');
  const tokB = hj.token.generate({ }, 'other_secret');
  for (const [how, hdr] of [['expired token', 'Bearer ' + tokE], ['wrong secret', 'Bearer ' + tokB], ['garbage token', 'Bearer abc.def'], ['no Authorization header', undefined]]) {
    const res = await server.inject({ url: '/x', headers: hdr ? { authorization: hdr } : {} });
    emit('@hapi/jwt', hv, 'auth', JSON.parse(res.payload).message, `hapi ${ver('@hapi/hapi')} server.inject ${how}; HTTP ${res.statusCode} JSON .message; www-authenticate=${res.headers['www-authenticate']}`);
  }
})();
