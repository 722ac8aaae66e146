const { emit, ver } = require('./emit');
// ajv
{ const Ajv = require('ajv'); const v = ver('ajv'); const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile({ type: 'object', required: ['x'], additionalProperties: false, properties: { x: { type: 'integer' }, e: { type: 'string', format: undefined, enum: ['a', 'b'] } } });
  for (const [how, data] of [['missing x', {}], ['x is a string', { x: 'abc' }], ['extra property y', { x: 1, y: 2 }], ['enum', { x: 1, e: 'z' }]]) {
    validate(data); for (const err of validate.errors) emit('ajv', v, 'transform', err.message, `compile+validate ${how}; errors[].message (instancePath=${err.instancePath || '""'}); ajv.errorsText()="${ajv.errorsText(validate.errors)}"`);
  } }
// zod 4 and zod 3
for (const pkg of ['zod', 'zod3']) { const { z } = require(pkg); const v = ver(pkg);
  const S = z.object({ x: z.number(), email: z.string().email() });
  for (const [how, data] of [['missing x', { email: 'a@b.co' }], ['x is a string', { x: 'abc', email: 'a@b.co' }], ['bad email', { x: 1, email: 'nope' }]]) {
    const r = S.safeParse(data); emit('zod', v, 'transform', r.error.issues[0].message, `${pkg === 'zod3' ? 'npm zod@3 ' : ''}safeParse ${how}; issues[0].message code=${r.error.issues[0].code}`);
  } }
// joi
{ const Joi = require('joi'); const v = ver('joi');
  const S = Joi.object({ x: Joi.number().required(), email: Joi.string().email() });
  for (const [how, data] of [['missing x', {}], ['x is a string', { x: 'abc' }], ['extra property y', { x: 1, y: 2 }], ['bad email', { x: 1, email: 'nope' }]]) {
    const r = S.validate(data); emit('joi', v, 'transform', r.error.message, `schema.validate ${how}; error.message (${r.error.name})`);
  } }
// joi's own templates as a hapi route's response or payload validation reports them (joi 18)
{
  const Joi = require('joi');
  const s = Joi.object({ name: Joi.string().min(2).required(), price: Joi.number().positive().required(), currency: Joi.string().valid('EUR', 'USD').required() });
  for (const v of [{ name: 'ab', price: 'x', currency: 'EUR' }, { name: 'a', price: 1, currency: 'EUR' }, { name: 'ab', price: 1, currency: 'GBP' }, { name: 'ab', price: 1, currency: 'EUR', extra: 1 }]) {
    console.log(['joi', require('joi/package.json').version, 'transform', s.validate(v).error.message, 'Joi.object().validate()'].join('\t'));
  }
}
