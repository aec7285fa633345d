#!/usr/bin/env node
// profilegate demo upstream: a tiny, dependency-free app that greets the signed-in user and shows
// the identity headers profilegate sent it (x-forwarded-* and x-profile-*).
//
// Usage: node examples/demo/upstream.js [PORT]     (PORT 0 or missing = a free port)
// Listens on 127.0.0.1 and prints one line to stdout once listening: {"port":N}
// Exits on SIGTERM/SIGINT and, when stdin is a pipe or socket, when stdin closes.
'use strict';

const http = require('node:http');
const fs = require('node:fs');

const wanted = Number(process.argv[2] ?? 0);
if (!Number.isInteger(wanted) || wanted < 0 || wanted > 65535) {
  process.stderr.write(`upstream: bad port ${JSON.stringify(process.argv[2])}\n`);
  process.exit(2);
}

function esc(value) {
  return String(value).replace(/[&<>"']/g, (ch) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
  })[ch]);
}

function page(req) {
  const h = req.headers;
  const user = h['x-forwarded-preferred-username'] || h['x-forwarded-user'] || 'stranger';
  const rows = [];
  // rawHeaders keeps repeated headers and the order they arrived in.
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i];
    const lower = name.toLowerCase();
    if (lower.startsWith('x-forwarded-') || lower.startsWith('x-profile-')) {
      rows.push(`<tr><th>${esc(lower)}</th><td>${esc(req.rawHeaders[i + 1])}</td></tr>`);
    }
  }
  const table = rows.length
    ? `<table><thead><tr><th>Header</th><th>Value</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
    : '<p class="none">No <code>x-forwarded-*</code> or <code>x-profile-*</code> headers reached this app.</p>';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>profilegate demo</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; background: #f4f5f7; color: #1d2330; }
  main { max-width: 46rem; margin: 3rem auto; background: #fff; padding: 2rem 2.5rem; border-radius: 10px;
         box-shadow: 0 1px 3px rgba(0,0,0,.12); }
  h1 { margin-top: 0; font-weight: 600; }
  p.sub { color: #5b6472; margin-top: -.5rem; }
  table { border-collapse: collapse; width: 100%; margin: 1.5rem 0; font-size: .95rem; }
  th, td { text-align: left; padding: .45rem .6rem; border-bottom: 1px solid #e3e6ea; vertical-align: top; }
  thead th { background: #f0f2f5; font-weight: 600; }
  tbody th { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-weight: 500; white-space: nowrap; }
  td { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
  .none { color: #8a5a00; background: #fff6e0; padding: .75rem 1rem; border-radius: 6px; }
  a.button { display: inline-block; background: #2f6feb; color: #fff; text-decoration: none; padding: .55rem 1.1rem;
             border-radius: 6px; font-weight: 500; }
  a.button:hover { background: #1f5ad0; }
</style>
</head>
<body>
<main>
<h1>Hello, ${esc(user)}</h1>
<p class="sub">This page is served by the demo upstream app, behind profilegate. You asked for <code>${esc(req.method)} ${esc(req.url)}</code>.</p>
<h2>Identity headers received</h2>
${table}
<p><a class="button" href="/.profilegate/logout">Sign out</a></p>
</main>
</body>
</html>
`;
}

const server = http.createServer((req, res) => {
  const body = Buffer.from(page(req), 'utf8');
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
  req.resume(); // drain any request body
});

server.on('error', (err) => {
  process.stderr.write(`upstream: ${err.message}\n`);
  process.exit(2);
});

server.listen(wanted, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port })}\n`);
});

let stopping = false;
function stop(reason) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`upstream: stopping (${reason})\n`);
  server.close();
  server.closeAllConnections?.();
  setTimeout(() => process.exit(0), 200).unref();
}
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

// Watch stdin only when it is a pipe or socket: /dev/null or a terminal would end at once.
let kind = 'other';
try {
  const st = fs.fstatSync(0);
  if (st.isFIFO()) kind = 'pipe';
  else if (st.isSocket()) kind = 'socket';
} catch {
  kind = 'closed';
}
if (kind === 'pipe' || kind === 'socket') {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('close', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}
