import time, jwt, pydantic
from emit import emit, ver
v = ver('PyJWT')
exp = jwt.encode({'sub': '42', 'exp': int(time.time()) - 60}, 's3cret-s3cret-s3cret-s3cret-s3cret', algorithm='HS256')
good = jwt.encode({'sub': '42', 'aud': 'api'}, 's3cret-s3cret-s3cret-s3cret-s3cret', algorithm='HS256')
for how, f in [('expired token', lambda: jwt.decode(exp, 's3cret-s3cret-s3cret-s3cret-s3cret', algorithms=['HS256'])),
               ('wrong key', lambda: jwt.decode(good, 'other-other-other-other-other-other', algorithms=['HS256'], audience='api')),
               ('garbage token', lambda: jwt.decode('not-a-jwt', 's3cret-s3cret-s3cret-s3cret-s3cret', algorithms=['HS256'])),
               ('wrong audience', lambda: jwt.decode(good, 's3cret-s3cret-s3cret-s3cret-s3cret', algorithms=['HS256'], audience='other'))]:
    try: f()
    except Exception as e: emit('PyJWT', v, 'auth', str(e), f'jwt.decode {how}; {type(e).__name__}')
# pydantic v2
from pydantic import BaseModel, EmailStr
class M(BaseModel):
    x: int
    y: str = 'a'
    model_config = {'extra': 'forbid'}
pv = ver('pydantic')
for how, data in [('missing x', {}), ('x="abc"', {'x': 'abc'}), ('x=1.5', {'x': 1.5}), ('y=3 (int for str)', {'x': 1, 'y': 3}), ('extra field z', {'x': 1, 'z': 1})]:
    try: M.model_validate(data)
    except pydantic.ValidationError as e:
        emit('pydantic', pv, 'transform', e.errors()[0]['msg'], f"BaseModel.model_validate {how}; errors()[0].msg type={e.errors()[0]['type']}")
try: M.model_validate_json('{"x":1,}')
except pydantic.ValidationError as e: emit('pydantic', pv, 'transform', e.errors()[0]['msg'], f"model_validate_json('{{\"x\":1,}}'); errors()[0].msg type={e.errors()[0]['type']}")
try: M.model_validate({})
except pydantic.ValidationError as e: emit('pydantic', pv, 'transform', str(e).splitlines()[0], 'str(ValidationError) first line, missing x')
