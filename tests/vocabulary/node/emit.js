// emit(library, version, label, text, how) -> one TSV row on stdout
const path = require('path');
function ver(pkg) {
  const fs = require('fs');
  let dir = path.dirname(require.resolve(pkg));
  while (!fs.existsSync(path.join(dir, 'package.json')) || JSON.parse(fs.readFileSync(path.join(dir, 'package.json'))).name !== require(path.join(dir,'package.json')).name || !JSON.parse(fs.readFileSync(path.join(dir, 'package.json'))).version) dir = path.dirname(dir);
  return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'))).version;
}
function clean(s) { s = String(s); if (/[\t\n]/.test(s)) process.stderr.write('NOTE multi-line/tab text: ' + JSON.stringify(s) + '\n'); return s.replace(/\t/g, ' ').replace(/\n/g, ' '); }
function emit(library, version, label, text, how, ranAs) {
  console.log([library, version, label, clean(text), `ran ${ranAs || library + '@' + version} (${how})`].join('\t'));
}
module.exports = { emit, ver };
