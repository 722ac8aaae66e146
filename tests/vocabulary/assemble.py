import os
# Merge the per-script TSV rows (out/*.tsv), the copied rows and the near misses into one vocabulary.
import glob, collections
rows = collections.OrderedDict()
DROP_TEXT = ['1 validation error for M', 'jwt signature is required', 'jwt not active', 'unexpected "aud" claim value', "Audience doesn't match",
  'User account is locked', 'IDX10214:', 'IDX10503:', 'jwt must be provided', 'Invalid Compact JWS', 'Invalid token structure', 'Not enough segments',
  'token contains an invalid number of segments', 'token is malformed:', 'Cannot DELETE /j', 'Route DELETE:/j not found',
  'Input should be a valid integer, got a number', 'Input should be a valid string', 'Extra inputs are not permitted', 'json: cannot unmarshal array',
  'json: cannot unmarshal number 1.5', 'unsupported charset', 'Body cannot be empty', 'body/x must be integer', 'must NOT have additional', 'must be equal to one of',
  'Invalid email', '"y" is not allowed', '"email" must be', "Unexpected character ('x'", 'Unexpected end-of-input', 'connect ECONNREFUSED 127.0.0.1:4', 'connect ECONNREFUSED 127.0.0.1:3',
  'No connection established. Last error', 'Max retries exceeded with url: /x (Caused by ReadTimeoutError', "HTTPConnection(host=", "Server error '503"]
EXTRA = ['jwt audience invalid', 'IDX10223: Lifetime', 'signature is invalid', 'No static resource x for request', 'unexpected end of JSON input', 'json: unknown field', "Expected property name or '}'", 'Unexpected token \'"\', ""hello""', 'must be integer', '"x" must be a number', "Unexpected character ('}' (code 125))", 'Cannot deserialize value of type `int`', 'Invalid request payload input', 'Max retries exceeded with url: /x (Caused by ReadTimeoutError', 'bad port', 'Connection terminated unexpectedly', '503 Server Error', 'Invalid token signature', 'rpc error: code = Unimplemented', 'Invalid JSON: trailing comma', 'Request body is too large', 'rpc error: code = DeadlineExceeded', 'socket hang up']
MIDDLE = ['Caused by ReadTimeoutError', 'read: connection reset by peer', 'context deadline exceeded"']
def dropped(lib, text):
    if text.endswith('context deadline exceeded') and text.startswith('Get '): return True
    if any(m in text for m in MIDDLE[:2]): return True
    return any(text.startswith(d) for d in DROP_TEXT + EXTRA) and not text.startswith('14 UNAVAILABLE')
order = ['out/node_auth.tsv', 'out/pyauth_val.tsv', 'out/go.tsv', 'out/node_http.tsv', 'out/pyweb.tsv', 'out/pydjango.tsv',
         'out/node_validate.tsv', 'out/java.tsv', 'out/upstream.tsv', 'out/pyupstream.tsv']
for f in order:
    for line in open(f):
        line = line.rstrip('\n')
        if not line or line.startswith('NOTE'): continue
        lib, ver, label, text, src = line.split('\t')
        if not text.strip() or dropped(lib, text): continue
        k = text
        if k in rows:
            r = rows[k]
            if lib not in r[0].split(' / '): r[0] += ' / ' + lib; r[1] += ' / ' + ver
            elif ver not in r[1]: r[1] += ', ' + ver
            if src not in r[4]: r[4] += '; ' + src
        else:
            rows[k] = [lib, ver, label, text, src]
for line in open('copied.tsv'):
    lib, ver, label, text, src = line.rstrip('\n').split('\t')
    if not dropped(lib, text): rows[text] = [lib, ver, label, text, src]
for line in open('nearmiss.tsv'):
    t = line.rstrip('\n'); rows[t] = ['(near miss)', '-', 'none', t, 'constructed near miss (not library output): benign log line that shares words with failure patterns and must not get a failure label']
order_l = ['auth', 'routing', 'quota', 'transform', 'upstream', 'none']
out = sorted(rows.values(), key=lambda r: order_l.index(r[2]))
for r in out:
    for x in r: assert '\t' not in x and '\n' not in x, r
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'vocabulary.tsv'), 'w') as fh:
    fh.write('library\tversion\tlabel\ttext\tsource\n')
    for r in out: fh.write('\t'.join(r) + '\n')
print(collections.Counter(r[2] for r in out), len(out))
