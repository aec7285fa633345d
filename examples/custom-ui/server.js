// A custom profile form for profilegate's custom UI mode (`[profiling] ui = "redirect"`).
// No dependencies: Node.js 20+ only.
//
//   node examples/custom-ui/server.js <port> <profilegate public_url>
//   e.g. node examples/custom-ui/server.js 4000 http://127.0.0.1:8080
//
// profilegate sends the user to  http://127.0.0.1:<port>/?token=<signed token>.  This app
//   1. verifies the token with profilegate's public keys (<public_url>/.profilegate/jwks.json):
//      ES256 signature, issuer, audience (this app's origin), expiry;
//   2. renders a form for the questions the token lists (with the errors and values of a
//      previous, refused attempt, when there was one);
//   3. posts the answers, the token and its state to the token's continue_url. profilegate
//      checks everything again, stores the answers and sends the user on to the application.
// Prints {"port":N} on stdout once listening (port 0 picks a free one). Exits on SIGTERM/SIGINT,
// and when stdin closes if stdin is a pipe.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

const port = Number(process.argv[2] ?? 4000);
const profilegate = (process.argv[3] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');

const esc = (v) => String(v ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
const b64url = (s) => Buffer.from(s, 'base64url');

let keys = null;
async function publicKey(kid) {
  if (!keys || !keys.has(kid)) {
    const res = await fetch(`${profilegate}/.profilegate/jwks.json`);
    if (!res.ok) throw new Error(`jwks.json answered ${res.status}`);
    const jwks = await res.json();
    keys = new Map(jwks.keys.map((k) => [k.kid, crypto.createPublicKey({ key: k, format: 'jwk' })]));
  }
  const key = keys.get(kid);
  if (!key) throw new Error('unknown key id');
  return key;
}

async function verify(token, audience) {
  const [h, p, s] = String(token).split('.');
  if (!h || !p || !s) throw new Error('malformed token');
  const header = JSON.parse(b64url(h));
  if (header.alg !== 'ES256') throw new Error('unexpected algorithm');
  const ok = crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: await publicKey(header.kid), dsaEncoding: 'ieee-p1363' }, b64url(s));
  if (!ok) throw new Error('bad signature');
  const claims = JSON.parse(b64url(p));
  if (claims.typ !== 'profilegate/questions') throw new Error('not a questions token');
  if (claims.iss !== profilegate) throw new Error('wrong issuer');
  if (claims.aud !== audience) throw new Error('wrong audience');
  if (!(claims.exp > Date.now() / 1000)) throw new Error('expired');
  return claims;
}

function field(q, values, error) {
  const v = values ?? [];
  const first = esc(v[0] ?? '');
  const req = q.required ? ' required' : '';
  const err = error ? `<p class="error" id="${esc(q.id)}-error" role="alert">${esc(error)}</p>` : '';
  const described = error ? ` aria-invalid="true" aria-describedby="${esc(q.id)}-error"` : '';
  const help = q.help ? `<p class="help">${esc(q.help)}</p>` : '';
  const inputTypes = { text: 'text', email: 'email', url: 'url', tel: 'tel', number: 'number', integer: 'number', date: 'date' };
  let control;
  if (q.type === 'textarea') {
    control = `<textarea id="${esc(q.id)}" name="${esc(q.id)}"${req}${described}>${first}</textarea>`;
  } else if (q.type === 'select') {
    control = `<select id="${esc(q.id)}" name="${esc(q.id)}"${req}${described}><option value="">Choose…</option>${(q.options ?? [])
      .map((o) => `<option${v.includes(o) ? ' selected' : ''}>${esc(o)}</option>`).join('')}</select>`;
  } else if (q.type === 'multiselect') {
    control = (q.options ?? []).map((o) => `<label><input type="checkbox" name="${esc(q.id)}" value="${esc(o)}"${v.includes(o) ? ' checked' : ''}> ${esc(o)}</label>`).join('');
  } else if (q.type === 'boolean') {
    control = ['true', 'false'].map((b) => `<label><input type="radio" name="${esc(q.id)}" value="${b}"${v.includes(b) ? ' checked' : ''}> ${b === 'true' ? 'Yes' : 'No'}</label>`).join('');
  } else if (q.type === 'consent') {
    control = `<label><input type="checkbox" name="${esc(q.id)}" value="true"${v.includes('true') ? ' checked' : ''}${req}> I agree</label>`;
  } else {
    const step = q.type === 'integer' ? ' step="1"' : q.type === 'number' ? ' step="any"' : '';
    control = `<input id="${esc(q.id)}" name="${esc(q.id)}" type="${inputTypes[q.type] ?? 'text'}" value="${first}"${step}${req}${described}>`;
  }
  const skip = q.required ? '' : `<label class="skip"><input type="checkbox" name="skip" value="${esc(q.id)}"> Skip this question for now</label>`;
  return `<fieldset><legend>${esc(q.label)}</legend>${help}${err}${control}${skip}</fieldset>`;
}

function page(claims) {
  const fields = claims.questions.map((q) => field(q, claims.values?.[q.id], claims.errors?.[q.id])).join('\n');
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tell us about you</title>
<style>body{font:16px/1.5 system-ui,sans-serif;background:#101820;color:#f2f2f2;display:flex;justify-content:center;padding:3rem 1rem}
main{max-width:32rem;width:100%}h1{font-weight:300}fieldset{border:1px solid #3a4450;border-radius:10px;margin:0 0 1rem;padding:1rem}
legend{font-weight:600;padding:0 .4rem}input[type=text],input[type=email],input[type=url],input[type=tel],input[type=number],input[type=date],select,textarea{width:100%;padding:.5rem;border-radius:6px;border:1px solid #5a6470;background:#1b2530;color:inherit}
.error{color:#ff8a80}.skip{display:block;margin-top:.5rem;color:#9aa4ae;font-size:.9rem}button{background:#f2aa4c;color:#101820;border:0;border-radius:8px;padding:.6rem 1.4rem;font-weight:700}</style></head>
<body><main><h1>A few details, ${esc(claims.sub)}</h1>
<form method="post" action="${esc(claims.continue_url)}">
<input type="hidden" name="token" value="${esc(claims.__token)}"><input type="hidden" name="state" value="${esc(claims.state)}">
${fields}
<button type="submit">Save and continue</button></form></main></body></html>`;
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, `http://${req.headers.host}`);
  if (req.method !== 'GET' || url.pathname !== '/') {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    return;
  }
  const token = url.searchParams.get('token');
  try {
    const claims = await verify(token, `http://${req.headers.host}`);
    claims.__token = token;
    const body = page(claims);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(body);
  } catch (e) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end(`This link is not valid: ${e.message}\n`);
  }
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('end', () => process.exit(0));
    process.stdin.resume();
  }
} catch { /* no stdin */ }
