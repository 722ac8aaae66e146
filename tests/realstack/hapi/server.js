'use strict';
// "catalog": a hapi service written the way hapi services usually are. Every
// failure comes from a library (hapi, Boom, @hapi/jwt, joi, hapi-rate-limit,
// Node's fetch, JSON.parse) in its own words; the code below only logs the
// library's error object and picks a status.
//
// env: PORT, JWT_SECRET, PRICING_URL, PRICING_TOKEN, INVENTORY_URL, DEP_TIMEOUT_MS
const { sdk } = require('./tracing');
const Hapi = require('@hapi/hapi');
const Boom = require('@hapi/boom');
const Jwt = require('@hapi/jwt');
const Joi = require('joi');

const PORT = Number(process.env.PORT || 3000);
const SECRET = process.env.JWT_SECRET || 'catalog-dev-secret';
const PRICING_URL = process.env.PRICING_URL || 'http://127.0.0.1:3001';
const PRICING_TOKEN = process.env.PRICING_TOKEN || 'catalog-dev-pricing-token';
const INVENTORY_URL = process.env.INVENTORY_URL || 'http://127.0.0.1:3002';
const DEP_TIMEOUT_MS = Number(process.env.DEP_TIMEOUT_MS || 500);

const PRODUCTS = [
  { id: 1001, name: 'kettle' }, { id: 1002, name: 'toaster' }, { id: 1003, name: 'blender' },
];

// A dependency call: a timeout on every call, one retry on a network error or
// timeout (not on an HTTP status), a warning for the failed attempt.
async function callDependency(request, name, url, headers = {}) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fetch(url, { headers, signal: AbortSignal.timeout(DEP_TIMEOUT_MS) });
    } catch (err) {
      if (attempt < 2) {
        request.logger.warn({ err, dependency: name, attempt }, `${name} request failed, retrying`);
        continue;
      }
      request.logger.error({ err, dependency: name, attempt }, `${name} request failed`);
      throw err.name === 'TimeoutError' ? Boom.gatewayTimeout() : Boom.badGateway();
    }
  }
}

async function start() {
  const server = Hapi.server({
    port: PORT,
    host: '127.0.0.1',
    // Answer a validation failure with joi's own message (hapi's default hides it).
    routes: { validate: { failAction: (request, h, err) => { throw err; } } },
  });

  await server.register({
    plugin: require('hapi-pino'),
    options: {
      name: 'catalog',
      // the error behind a 4xx (Boom's / the library's message) on the "request completed" line
      log4xxResponseErrors: true,
    },
  });
  await server.register(Jwt);
  await server.register({
    plugin: require('hapi-rate-limit'),
    // Only the routes that ask for it are limited. Behind the gateway every
    // client has the gateway's address, so the per-IP defaults are off.
    options: { enabled: false, authLimit: false, userLimit: false, pathLimit: false },
  });

  server.auth.strategy('jwt', 'jwt', {
    keys: SECRET,
    verify: { aud: 'urn:audience:catalog', iss: 'urn:issuer:auth', sub: false, nbf: true, exp: true, maxAgeSec: 14400, timeSkewSec: 15 },
    validate: (artifacts) => ({ isValid: true, credentials: { id: artifacts.decoded.payload.sub } }),
  });
  server.auth.default('jwt');

  server.route({
    method: 'GET', path: '/v1/products',
    handler: () => PRODUCTS,
  });

  server.route({
    method: 'POST', path: '/v1/products',
    options: {
      payload: { maxBytes: 2048 },
      validate: {
        payload: Joi.object({
          name: Joi.string().min(2).max(64).required(),
          price: Joi.number().positive().precision(2).required(),
          tags: Joi.array().items(Joi.string()).max(8),
        }),
      },
    },
    handler: (request, h) => {
      const product = { id: 1000 + PRODUCTS.length + 1, ...request.payload };
      request.logger.info({ product: product.id }, 'product created');
      return h.response(product).code(201);
    },
  });

  // A price: pricing is called with catalog's own credential and the caller's
  // tenant (pricing meters its API per tenant). The answer is checked against
  // the documented response shape (hapi's response validation, default
  // failAction 'error': a 500, with joi's error logged by hapi).
  server.route({
    method: 'GET', path: '/v1/products/{id}',
    options: {
      validate: { params: Joi.object({ id: Joi.number().integer().min(1) }) },
      response: {
        schema: Joi.object({
          id: Joi.number().integer().required(),
          price: Joi.number().positive().required(),
          currency: Joi.string().length(3).required(),
        }),
      },
    },
    handler: async (request) => {
      const res = await callDependency(request, 'pricing', `${PRICING_URL}/prices/${request.params.id}`, {
        authorization: `Bearer ${PRICING_TOKEN}`,
        'x-tenant-id': request.auth.credentials.id,
      });
      if (!res.ok) {
        request.logger.error({ dependency: 'pricing', status: res.status, statusText: res.statusText }, 'pricing request failed');
        // pricing throttling us: "try again later"; anything else: a bad gateway
        throw res.status === 429 ? Boom.serverUnavailable() : Boom.badGateway();
      }
      const price = await res.json();
      return { id: request.params.id, price: price.amount, currency: price.currency };
    },
  });

  server.route({
    method: 'GET', path: '/v1/products/{id}/stock',
    options: { validate: { params: Joi.object({ id: Joi.number().integer().min(1) }) } },
    handler: async (request) => {
      const res = await callDependency(request, 'inventory', `${INVENTORY_URL}/stock/${request.params.id}`);
      return res.json();
    },
  });

  server.route({
    method: 'GET', path: '/v1/search',
    options: {
      validate: { query: Joi.object({ q: Joi.string().required() }) },
      plugins: { 'hapi-rate-limit': { enabled: true, userPathLimit: 5, userPathCache: { expiresIn: 60000 } } },
    },
    handler: (request) => PRODUCTS.filter((p) => p.name.includes(request.query.q)),
  });

  // A signed download link: the link's token is checked here, with @hapi/jwt's
  // token API. Nothing catches what verify() throws.
  server.route({
    method: 'GET', path: '/v1/exports/{id}',
    options: { auth: false },
    handler: (request) => {
      const artifacts = Jwt.token.decode(request.query.token || '');
      Jwt.token.verify(artifacts, SECRET);
      return { id: request.params.id, rows: 42 };
    },
  });

  await server.start();

  const stop = async () => {
    try {
      await server.stop({ timeout: 2000 });
    } finally {
      await sdk.shutdown().catch(() => {});
      process.exit(0);
    }
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

start().catch((err) => {
  console.error(err);
  process.exit(1);
});
