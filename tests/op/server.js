// profilegate test OpenID Provider: a real, OpenID Certified provider (npm oidc-provider 9)
// for profilegate's integration tests and the quickstart demo. Development use only.
//
// Usage:
//   (cd tests/op && npm ci)                       # once
//   node tests/op/server.js '<config json>'       # or: TEST_OP_CONFIG='<json>' node tests/op/server.js
//
// Config (JSON; every key optional except "clients"):
//   {
//     "host": "localhost",          // issuer host and listen address ("localhost" = 127.0.0.1 and ::1)
//     "listen_address": "0.0.0.0",  // listen here instead (the issuer keeps "host"): a container
//                                   // whose published port must reach it (examples/compose)
//     "port": 0,                    // 0 = pick a free port
//     "clients": [{ "client_id": "profilegate", "client_secret": "s3cret",
//                   "redirect_uris": ["http://127.0.0.1:8080/.profilegate/callback"],
//                   "post_logout_redirect_uris": ["http://127.0.0.1:8080/"] }],
//                                   // any other oidc-provider client metadata is passed through
//     "claims": { "alice": { "company": "Acme", "locale": "en-GB" } },   // extra claims per login
//     "extra_scope_claims": { "profile": ["company"] },  // claim names added to a scope (new scopes too)
//     "pkce_required": true,        // require PKCE (S256) for every client, confidential ones too
//     "skip_consent": false,        // true = reuse/auto-create the grant, so no consent page
//     "access_token_ttl": 3600, "id_token_ttl": 3600, "session_ttl": 1209600,  // seconds
//     "signing_key_file": "/path/key.pem",  // PEM RSA private key the OP signs with (RS256);
//                                   // without it a 2048-bit key is generated (asynchronously)
//     "rotation_key_file": "/path/key2.pem",  // PEM RSA private key for the first key rotation
//                                   // (test_controls); later rotations generate one
//     "test_controls": false,       // true = the POST /__test/* endpoints below
//     "jwt_userinfo": false,        // true = signed userinfo (features.jwtUserinfo): a client
//                                   // registered with userinfo_signed_response_alg: "RS256"
//                                   // gets an application/jwt answer
//     "refresh_tokens": false,      // true = clients may use the refresh_token grant and get a
//                                   // refresh token at every code exchange, offline_access or
//                                   // not (as OPs that issue one by default); see the refresh
//                                   // test controls below
//     "backchannel_logout": false,  // true = OpenID Connect Back-Channel Logout 1.0
//                                   // (features.backchannelLogout): a client registered with
//                                   // "backchannel_logout_uri" (and
//                                   // "backchannel_logout_session_required": true, so its ID
//                                   // and logout tokens carry sid) gets a logout token POSTed
//                                   // there when the user signs out at /session/end. Loopback
//                                   // URIs are allowed (oidc-provider's SSRF guard refuses
//                                   // them); each post is logged to stderr (test-op: backchannel)
//     "sid_in_id_token": false      // true = ID tokens carry the OP's session id (`sid`), as an
//                                   // RP of front-channel logout needs: oidc-provider 9 has no
//                                   // front-channel feature (v8 dropped the draft) and adds `sid`
//                                   // only for a client registered for back-channel logout
//                                   // with sessions, so this turns backchannel_logout on and
//                                   // every client without its own backchannel_logout_uri gets
//                                   // one (its first redirect URI's origin +
//                                   // /.profilegate/backchannel-logout)
//   }
//
// Clients authenticate at the token endpoint with client_secret_basic (the default),
// client_secret_post or private_key_jwt (give the client "jwks": {"keys": [<public JWK>]} and
// no secret); the OP accepts only the method the client is registered with (oidc-provider
// alone takes basic and post for each other; this file refuses that with invalid_client).
//
// Keys: Node 20's crypto.generateKeyPairSync('rsa') can deadlock (the main thread blocks on a
// mutex in the RSA KeyGenJob destructor during garbage collection), so this file never calls it.
// profilegate's test harness makes its key files once per run (tests/support/op_keys.rs) and
// passes them; without one the key is generated with the asynchronous crypto.generateKeyPair
// before the ready line (the demo, a developer by hand).
//
// Test controls ("test_controls": true; not for the demo):
//   POST /__test/rotate-signing-key   -> {"kid":"<new kid>"}
//     From then on ID tokens (and signed userinfo) are signed with a new RSA key with a new
//     random kid, listed first in the JWKS; every earlier key is still listed after it. The
//     provider is rebuilt with the same issuer, clients and cookie keys, and sessions, grants,
//     tokens and interactions live in one in-memory adapter shared by every instance, so they
//     survive the swap (a sign-in started before a rotation completes after it).
//     The tests call it through TestOp::rotate_signing_key (tests/support/mod.rs).
//   POST /__test/set-claims  {"login":"alice","claims":{"name":"Alice Two","groups":["staff"]}}
//     -> {"ok":true}: merges into the login's claims (config.claims) from then on: the next
//     userinfo answer and ID token (a refresh's too) carry them; a null value removes a claim.
//   POST /__test/refresh-grants  -> {"count":N}: how many refresh_token grant requests the
//     token endpoint has received (answered or refused).
//   POST /__test/revoke-grants  {"login":"alice"}  -> {"revoked":N}: destroys every grant of
//     the login (as an administrator disabling the user would): its refresh tokens are then
//     refused with invalid_grant.
//
// When ready it prints exactly one line to stdout:
//   {"issuer":"http://localhost:NNNNN","port":NNNNN}
// Everything else (oidc-provider's notices and warnings, request errors) goes to stderr.
// It exits on SIGTERM/SIGINT and, when stdin is a pipe or socket, when stdin closes (so a test
// that spawns it with a piped stdin never leaves it orphaned).
//
// Accounts: any login name with any password (oidc-provider's dev interactions). The sign-in
// is two HTML steps: a login form (hidden prompt=login, fields login and password) and then a
// consent form (hidden prompt=consent), each POSTed to /interaction/<uid>; all redirects are 303.
// Claims for login L: sub=L, email=L@example.com, email_verified=true, preferred_username=L,
// name=L capitalised, plus config.claims[L]. Scope claims are released by userinfo (the ID token
// of the code flow carries only sub and the protocol claims).

import crypto from 'node:crypto';
import http from 'node:http';
import fs from 'node:fs';

// oidc-provider writes notices with console.info; stdout is reserved for the ready line.
const toStderr = (...args) => console.error(...args);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

function fail(message) {
  process.stderr.write(`test-op: ${message}\n`);
  process.exit(2);
}

function loadConfig() {
  const raw = process.argv[2] ?? process.env.TEST_OP_CONFIG;
  if (raw === undefined || raw.trim() === '') {
    fail('usage: node server.js \'<config json>\' (or set TEST_OP_CONFIG); see the header of server.js');
  }
  let cfg;
  try {
    cfg = JSON.parse(raw);
  } catch (err) {
    fail(`config is not valid JSON: ${err.message}`);
  }
  if (cfg === null || typeof cfg !== 'object' || Array.isArray(cfg)) fail('config must be a JSON object');
  if (!Array.isArray(cfg.clients) || cfg.clients.length === 0) fail('config.clients must be a non-empty array');
  return cfg;
}

const cfg = loadConfig();
const host = cfg.host ?? 'localhost';
const listenAddress = cfg.listen_address ?? null;
const wantedPort = Number(cfg.port ?? 0);
const extraClaimsByLogin = cfg.claims ?? {};
const extraScopeClaims = cfg.extra_scope_claims ?? {};

// The oidc-provider module is loaded after console is redirected.
const { default: Provider } = await import('oidc-provider');
// Its in-memory adapter, made once: oidc-provider 9 gives every Provider instance a store of its
// own by default, and a key rotation (below) replaces the instance but must keep sessions,
// interactions, grants and tokens. (The lockfile pins the version this internal path is from.)
const { createMemoryAdapter } = await import('oidc-provider/lib/adapters/memory_adapter.js');
const sharedAdapter = createMemoryAdapter();

// ---------------------------------------------------------------- signing keys

// An RSA signing key as a private JWK with a fresh random kid: read from `file` (PEM), or
// generated asynchronously when there is none (never generateKeyPairSync; see the header).
// Rejects with a message naming `what` and the file.
async function rsaSigningKey(file, what) {
  let privateKey;
  if (file !== undefined && file !== null) {
    let pem;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new Error(`${what}: cannot read ${file}: ${err.message}`);
    }
    try {
      privateKey = crypto.createPrivateKey(pem);
    } catch (err) {
      throw new Error(`${what}: ${file} is not a PEM private key: ${err.message}`);
    }
    if (privateKey.asymmetricKeyType !== 'rsa') {
      throw new Error(`${what}: ${file} holds a ${privateKey.asymmetricKeyType} key; an RSA key is needed (RS256)`);
    }
  } else {
    process.stderr.write(`test-op: no ${what} given: generating a 2048-bit RSA key (asynchronously)\n`);
    privateKey = await new Promise((resolve, reject) => {
      crypto.generateKeyPair('rsa', { modulusLength: 2048 }, (err, _publicKey, key) => (err ? reject(err) : resolve(key)));
    }).catch((err) => {
      throw new Error(`${what}: RSA key generation failed: ${err.message}`);
    });
  }
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    alg: 'RS256',
    use: 'sig',
  };
}

// Newest first: oidc-provider signs with the first key of the algorithm and lists them all.
const signingKeys = [await rsaSigningKey(cfg.signing_key_file, 'signing_key_file').catch((err) => fail(err.message))];

// ---------------------------------------------------------------- listening

function listen(server, port, address) {
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    server.once('error', onError);
    server.listen({ port, host: address }, () => {
      server.off('error', onError);
      resolve(server.address().port);
    });
  });
}

// The real handler is attached once the provider exists (it needs the port for its issuer).
let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting\n');
};
const dispatch = (req, res) => handler(req, res);

const servers = [];
let port;
if (listenAddress !== null) {
  const srv = http.createServer(dispatch);
  port = await listen(srv, wantedPort, listenAddress).catch((err) => fail(`listen ${listenAddress}:${wantedPort}: ${err.message}`));
  servers.push(srv);
} else if (host === 'localhost') {
  // "localhost" may resolve to 127.0.0.1 or ::1 depending on the machine and the client:
  // serve both loopback addresses on the same port.
  const v4 = http.createServer(dispatch);
  port = await listen(v4, wantedPort, '127.0.0.1').catch((err) => fail(`listen 127.0.0.1:${wantedPort}: ${err.message}`));
  servers.push(v4);
  const v6 = http.createServer(dispatch);
  try {
    await listen(v6, port, '::1');
    servers.push(v6);
  } catch (err) {
    process.stderr.write(`test-op: not listening on [::1]:${port} (${err.code ?? err.message}); IPv4 only\n`);
  }
} else {
  const srv = http.createServer(dispatch);
  port = await listen(srv, wantedPort, host).catch((err) => fail(`listen ${host}:${wantedPort}: ${err.message}`));
  servers.push(srv);
}

const hostForUrl = host.includes(':') ? `[${host}]` : host;
const issuer = `http://${hostForUrl}:${port}`;

// ---------------------------------------------------------------- provider

function capitalise(s) {
  return s.length ? s[0].toUpperCase() + s.slice(1) : s;
}

function accountClaims(login) {
  return {
    sub: login,
    email: `${login}@example.com`,
    email_verified: true,
    preferred_username: login,
    name: capitalise(login),
    ...(extraClaimsByLogin[login] ?? {}),
  };
}

const claims = {
  openid: ['sub'],
  email: ['email', 'email_verified'],
  profile: ['name', 'preferred_username', 'locale'],
};
for (const [scope, names] of Object.entries(extraScopeClaims)) {
  if (!Array.isArray(names)) fail(`extra_scope_claims.${scope} must be an array of claim names`);
  claims[scope] = [...new Set([...(claims[scope] ?? []), ...names])];
}

// One set for the whole process: a provider rebuilt by a key rotation still opens the cookies
// the previous one set.
const cookieKeys = [crypto.randomBytes(32).toString('base64url'), crypto.randomBytes(32).toString('base64url')];

// A fresh configuration object for every provider instance (oidc-provider keeps and may adjust
// what it is given; a rotation must not see the previous instance's copies).
function configurationFor(keys) {
  const clients = cfg.clients.map((c) => ({
    grant_types: cfg.refresh_tokens === true ? ['authorization_code', 'refresh_token'] : ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...structuredClone(c),
  }));
  if (cfg.sid_in_id_token === true) {
    for (const c of clients) {
      if (c.backchannel_logout_uri === undefined && Array.isArray(c.redirect_uris) && c.redirect_uris.length > 0) {
        c.backchannel_logout_uri = `${new URL(c.redirect_uris[0]).origin}/.profilegate/backchannel-logout`;
      }
      c.backchannel_logout_session_required ??= true;
    }
  }

  const configuration = {
    clients,
    adapter: sharedAdapter,
    jwks: { keys: keys.map((k) => ({ ...k })) },
    cookies: {
      keys: [...cookieKeys],
    },
    claims: structuredClone(claims),
    scopes: ['openid', 'offline_access', ...Object.keys(claims).filter((s) => s !== 'openid')],
    async findAccount(ctx, sub) {
      return {
        accountId: sub,
        async claims() {
          return accountClaims(sub);
        },
      };
    },
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      jwtUserinfo: { enabled: cfg.jwt_userinfo === true },
      backchannelLogout: { enabled: cfg.backchannel_logout === true || cfg.sid_in_id_token === true },
    },
    responseTypes: ['code'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    pkce: {
      required: () => cfg.pkce_required ?? true,
    },
    enabledJWA: {
      idTokenSigningAlgValues: ['RS256'],
    },
    ttl: {
      AccessToken: cfg.access_token_ttl ?? 3600,
      AuthorizationCode: 60,
      IdToken: cfg.id_token_ttl ?? 3600,
      Interaction: 3600,
      Session: cfg.session_ttl ?? 14 * 24 * 3600,
      Grant: cfg.session_ttl ?? 14 * 24 * 3600,
      RefreshToken: 14 * 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
      ctx.body = `<!DOCTYPE html><html><head><meta charset="utf-8"><title>test OP error</title></head><body><h1>test OP error</h1>${
        Object.entries(out).map(([k, v]) => `<p><strong>${esc(k)}</strong>: ${esc(v)}</p>`).join('')}</body></html>`;
    },
  };

  if (cfg.refresh_tokens === true) {
    // A refresh token at every code exchange of a client allowed the grant (the default asks
    // for offline_access, which oidc-provider honours only with prompt=consent).
    configuration.issueRefreshToken = async (ctx, client) => client.grantTypeAllowed('refresh_token');
  }

  if (cfg.backchannel_logout === true) {
    // oidc-provider's outgoing requests refuse special-use addresses (loopback among them)
    // through the dispatcher it passes; the proxy under test listens on 127.0.0.1.
    configuration.fetch = (url, options) => {
      const { dispatcher, ...rest } = options;
      return fetch(url, rest);
    };
  }

  if (cfg.skip_consent) {
    // Grant every requested scope and claim without a consent page.
    configuration.loadExistingGrant = async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      const grant = grantId
        ? await ctx.oidc.provider.Grant.find(grantId)
        : new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      grant.addOIDCClaims([...(ctx.oidc.requestParamClaims ?? [])]);
      await grant.save();
      return grant;
    };
  }

  return configuration;
}

// Grant ids by account, for /__test/revoke-grants.
const grantsByAccount = new Map();

let currentProvider;
function buildProvider(keys) {
  const provider = new Provider(issuer, configurationFor(keys));
  currentProvider = provider;
  provider.on('grant.saved', (grant) => {
    if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Set());
    grantsByAccount.get(grant.accountId).add(grant.jti);
  });
  provider.on('server_error', (ctx, err) => {
    process.stderr.write(`test-op: server_error on ${ctx.method} ${ctx.path}: ${err.stack ?? err}\n`);
  });
  for (const ev of ['authorization.error', 'grant.error', 'userinfo.error', 'end_session.error', 'introspection.error']) {
    provider.on(ev, (ctx, err) => {
      const detail = [err.error_description, err.error_detail].filter(Boolean).join('; ');
      process.stderr.write(`test-op: ${ev}: ${err.message}${detail ? ` (${detail})` : ''}\n`);
    });
  }
  provider.on('backchannel.success', (ctx, client, accountId, sid) => {
    process.stderr.write(`test-op: backchannel: logout token for ${accountId} (sid ${sid}) accepted by ${client.backchannelLogoutUri}\n`);
  });
  provider.on('backchannel.error', (ctx, err, client, accountId, sid) => {
    process.stderr.write(`test-op: backchannel.error: ${client.backchannelLogoutUri} for ${accountId} (sid ${sid}): ${err.message}\n`);
  });
  return provider;
}

let providerHandler;
try {
  providerHandler = buildProvider(signingKeys).callback();
} catch (err) {
  fail(`bad provider configuration: ${err.message}`);
}

// ---------------------------------------------------------------- test controls

let rotationKeyFile = cfg.rotation_key_file;

async function rotateSigningKey() {
  const key = await rsaSigningKey(rotationKeyFile, 'rotation_key_file');
  rotationKeyFile = undefined; // that file's key is in use now; a later rotation makes a new one
  const next = buildProvider([key, ...signingKeys]).callback();
  signingKeys.unshift(key);
  providerHandler = next;
  process.stderr.write(`test-op: signing key rotated: now ${key.kid}, then ${signingKeys.slice(1).map((k) => k.kid).join(', ')}\n`);
  return key.kid;
}

// How many refresh_token grant requests the token endpoint received.
let refreshGrants = 0;

function readJson(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text.trim() === '' ? {} : JSON.parse(text));
      } catch (err) {
        reject(new Error(`body is not JSON: ${err.message}`));
      }
    });
  });
}

async function revokeGrants(login) {
  let revoked = 0;
  for (const id of grantsByAccount.get(login) ?? []) {
    const grant = await currentProvider.Grant.find(id);
    if (grant) {
      await grant.destroy();
      revoked += 1;
    }
  }
  grantsByAccount.delete(login);
  process.stderr.write(`test-op: ${revoked} grant(s) of ${login} revoked\n`);
  return revoked;
}

function refreshControl(path, req, answer) {
  if (path === '/__test/refresh-grants') {
    req.resume();
    return answer(200, { count: refreshGrants });
  }
  return readJson(req).then(async (body) => {
    if (typeof body.login !== 'string' || body.login === '') return answer(400, { error: 'login required' });
    if (path === '/__test/revoke-grants') return answer(200, { revoked: await revokeGrants(body.login) });
    if (body.claims === null || typeof body.claims !== 'object') return answer(400, { error: 'claims object required' });
    const merged = { ...(extraClaimsByLogin[body.login] ?? {}) };
    for (const [name, value] of Object.entries(body.claims)) {
      if (value === null) delete merged[name];
      else merged[name] = value;
    }
    extraClaimsByLogin[body.login] = merged;
    return answer(200, { ok: true });
  }).catch((err) => answer(400, { error: String(err.message ?? err) }));
}

function testControl(req, res) {
  const answer = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(`${JSON.stringify(body)}\n`);
  };
  const path = req.url.split('?')[0];
  if (['/__test/set-claims', '/__test/refresh-grants', '/__test/revoke-grants'].includes(path)) {
    if (req.method !== 'POST') return answer(405, { error: 'POST only' });
    return refreshControl(path, req, answer);
  }
  if (path !== '/__test/rotate-signing-key') return answer(404, { error: 'no such test control' });
  if (req.method !== 'POST') return answer(405, { error: 'POST only' });
  req.resume(); // any body is ignored
  return rotateSigningKey().then(
    (kid) => answer(200, { kid }),
    (err) => answer(500, { error: String(err.message ?? err) }),
  );
}

// ---------------------------------------------------------------- token endpoint strictness

// oidc-provider takes client_secret_basic and client_secret_post for each other; real OPs do
// not always (some only read one of them), so the test OP holds a client to the method it is
// registered with. The body is read here and handed on parsed-ready as req.body, which
// oidc-provider reads when the stream is already consumed.
const registeredAuthMethod = new Map(cfg.clients.map((c) => [c.client_id, c.token_endpoint_auth_method ?? 'client_secret_basic']));
const BODY_LIMIT = 56 * 1024; // oidc-provider's own limit

function basicClientId(req) {
  const [scheme, value] = (req.headers.authorization ?? '').split(' ');
  if (scheme?.toLowerCase() !== 'basic' || !value) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i === -1) return undefined;
  try {
    return decodeURIComponent(decoded.slice(0, i).replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

function strictTokenRequest(req, res) {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= BODY_LIMIT) chunks.push(chunk);
  });
  req.on('error', () => res.destroy());
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (size <= BODY_LIMIT && (req.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')) {
      const params = new URLSearchParams(body);
      if (params.get('grant_type') === 'refresh_token') refreshGrants += 1;
      const basicId = basicClientId(req);
      const used = basicId !== undefined ? 'client_secret_basic' : params.has('client_secret') ? 'client_secret_post' : undefined;
      const clientId = basicId ?? params.get('client_id');
      const registered = registeredAuthMethod.get(clientId);
      if (used !== undefined && (registered === 'client_secret_basic' || registered === 'client_secret_post') && used !== registered) {
        const description = `client ${clientId} is registered for ${registered}, not ${used} (test OP)`;
        process.stderr.write(`test-op: token: ${description}\n`);
        res.writeHead(401, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(`${JSON.stringify({ error: 'invalid_client', error_description: description })}\n`);
        return;
      }
    }
    req.body = body;
    providerHandler(req, res);
  });
}

const serve = (req, res) => {
  if (req.method === 'POST' && req.url.split('?')[0] === '/token') return strictTokenRequest(req, res);
  return providerHandler(req, res);
};

handler = cfg.test_controls === true
  ? (req, res) => (req.url.startsWith('/__test/') ? testControl(req, res) : serve(req, res))
  : serve;

process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);

// ---------------------------------------------------------------- lifetime

let stopping = false;
function stop(reason) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`test-op: stopping (${reason})\n`);
  for (const s of servers) {
    s.close();
    s.closeAllConnections?.();
  }
  // Do not wait for keep-alive sockets.
  setTimeout(() => process.exit(0), 200).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

// Watch stdin only when it is a pipe or a socket (a parent that can die). A /dev/null or a
// terminal stdin (e.g. a background job in a shell script) would otherwise end at once.
let stdinKind;
try {
  const st = fs.fstatSync(0);
  stdinKind = st.isFIFO() ? 'pipe' : st.isSocket() ? 'socket' : 'other';
} catch {
  stdinKind = 'closed';
}
if (stdinKind === 'pipe' || stdinKind === 'socket') {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('close', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}
