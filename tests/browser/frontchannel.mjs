// OIDC Front-Channel Logout as a browser does it: headless Chromium (playwright-core) shows a
// page of the OP's origin that embeds profilegate's /.profilegate/frontchannel-logout in an
// iframe, as an OP's logout page does. Run by tests/frontchannel_logout.rs:
//
//   node tests/browser/frontchannel.mjs '<config json>'
//
// Config: { "proxy": "http://127.0.0.1:P", "app_url": "http://127.0.0.1:P/app",
//           "issuer": "http://localhost:O", "login": "carol",
//           "artifacts": "target/test-artifacts/browser" }
//
// Steps:
//   01 sign in at the OP through the proxy
//   02 learn the OP's session id: sign out at the proxy, read the ID token the redirect to the
//      OP's end-session endpoint carries (id_token_hint), without ending the OP session
//   03 sign in again (the same OP session, so the same sid); the app answers 200
//   04 the OP's page (served as the OP's origin by the test) frames the front-channel URL with
//      iss and sid: the frame loads profilegate's page; the app now answers 302 to the OP
//   05 a page of another origin frames the same URL: Chromium blocks the frame
//
// Prints one JSON line on stdout: {"before":200,"framed_text":"Signed out.","after":302,
// "after_location":"...","foreign_frame_blocked":true,"screenshots":[...]}. A failed check
// exits 1 with "step NN: why".

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TOTAL_TIMEOUT_MS = 90_000;
class StepFailure extends Error {}
let currentStep = 'start';
const screenshots = [];

function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}
function step(name) {
  currentStep = name;
  process.stderr.write(`frontchannel: step ${name}\n`);
}
async function shot(page, cfg, file) {
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const target = path.resolve(cfg.artifacts, `frontchannel-${file}`);
  await page.screenshot({ path: target, fullPage: true });
  screenshots.push(target);
}

/// Completes whatever the OP shows (login form, consent form) until the browser is back on
/// the proxy.
async function signInAtOp(page, cfg) {
  const proxy = new URL(cfg.proxy).origin;
  for (let i = 0; i < 4 && new URL(page.url()).origin !== proxy; i += 1) {
    if (await page.locator('input[name="login"]').count() > 0) {
      await page.locator('input[name="login"]').fill(cfg.login);
      await page.locator('input[name="password"]').fill('any');
    }
    await Promise.all([page.waitForLoadState('load'), page.locator('button[type="submit"]').first().click()]);
    await page.waitForURL((u) => u.origin === proxy || u.pathname.startsWith('/interaction/'), { timeout: 15_000 });
  }
  check(new URL(page.url()).origin === proxy, `the sign-in did not come back to the proxy: ${page.url()}`);
}

/// What the app answers this browser's cookies (no redirect followed): status and Location.
async function appAnswer(context, cfg) {
  const resp = await context.request.get(cfg.app_url, {
    maxRedirects: 0,
    headers: { accept: 'text/html' },
  });
  return { status: resp.status(), location: resp.headers().location ?? null };
}

/// The page `pageUrl` (fulfilled by the test as that origin) framing `frameUrl`; returns the
/// frame's URL and text once everything loaded.
async function framed(page, pageUrl) {
  await page.goto(pageUrl, { waitUntil: 'load' });
  const frame = page.frames().find((f) => f !== page.mainFrame());
  check(frame !== undefined, 'the page has no frame');
  let text = null;
  try {
    text = (await frame.locator('body').textContent({ timeout: 3_000 }))?.trim() ?? null;
  } catch {
    text = null;
  }
  return { url: frame.url(), text };
}

async function run(browser, cfg) {
  const proxy = new URL(cfg.proxy).origin;
  const op = new URL(cfg.issuer).origin;
  const context = await browser.newContext({ viewport: { width: 760, height: 620 }, locale: 'en-US' });
  context.setDefaultTimeout(15_000);
  let frameUrl = null;
  const embedding = (src) => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>OP logout</title></head>`
    + `<body><h1>Signing you out of every app</h1><iframe src="${src}" width="600" height="120"></iframe></body></html>`;
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.origin === op && url.pathname === '/__test-op-logout-page') {
      return route.fulfill({ status: 200, contentType: 'text/html', body: embedding(frameUrl) });
    }
    if (url.hostname === 'other-site.test') {
      return route.fulfill({ status: 200, contentType: 'text/html', body: embedding(frameUrl) });
    }
    if (['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return route.continue();
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();
  // Why a frame did not load, for the failure message.
  page.on('requestfailed', (r) => process.stderr.write(`frontchannel: ${r.url()} failed: ${r.failure()?.errorText}\n`));
  page.on('console', (m) => process.stderr.write(`frontchannel: console: ${m.text()}\n`));

  step('01 sign in');
  await page.goto(cfg.app_url);
  check(new URL(page.url()).origin === op, `expected the OP's login page, got ${page.url()}`);
  await signInAtOp(page, cfg);

  step('02 learn the OP sid');
  const endSession = page.waitForRequest((r) => r.url().startsWith(`${op}/session/end`));
  await page.goto(`${proxy}/.profilegate/logout`);
  const hint = new URL((await endSession).url()).searchParams.get('id_token_hint');
  check(hint, 'the logout sent no id_token_hint');
  const claims = JSON.parse(Buffer.from(hint.split('.')[1], 'base64url').toString('utf8'));
  check(typeof claims.sid === 'string' && claims.sid.length > 0, `no sid in the ID token: ${JSON.stringify(claims)}`);
  frameUrl = `${proxy}/.profilegate/frontchannel-logout?iss=${encodeURIComponent(cfg.issuer)}&sid=${encodeURIComponent(claims.sid)}`;

  step('03 sign in again');
  await page.goto(cfg.app_url);
  await signInAtOp(page, cfg);
  const before = await appAnswer(context, cfg);
  check(before.status === 200, `signed in, the app answered ${before.status}`);

  step('04 the OP page frames the logout');
  const ours = await framed(page, `${op}/__test-op-logout-page`);
  await shot(page, cfg, '04-op-page.png');
  check(ours.url.startsWith(`${proxy}/.profilegate/frontchannel-logout`), `the frame is at ${ours.url}`);
  const after = await appAnswer(context, cfg);

  step('05 another site frames it');
  const foreign = await framed(page, 'http://other-site.test/logout');
  await shot(page, cfg, '05-other-site.png');
  const foreignBlocked = foreign.text !== 'Signed out.' && foreign.url.startsWith('chrome-error:');

  await context.close();
  return {
    before: before.status,
    framed_text: ours.text,
    after: after.status,
    after_location: after.location,
    foreign_frame_blocked: foreignBlocked,
    foreign_frame: foreign.url,
    screenshots,
  };
}

async function main() {
  const cfg = { login: 'carol', ...JSON.parse(process.argv[2] ?? '{}') };
  const executablePath = process.env.TEST_CHROMIUM || '/usr/bin/chromium';
  check(fs.existsSync(executablePath), `Chromium is not installed at ${executablePath}`);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    // The OP's page is fulfilled by the test, so Chromium counts it as public, not loopback,
    // and Local Network Access would block its frame to the proxy on 127.0.0.1 (a real OP and
    // RP are both public or both local): that check is off here, frame-ancestors is not.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-features=LocalNetworkAccessChecks'],
    timeout: 30_000,
  });
  try {
    process.stdout.write(`${JSON.stringify(await run(browser, cfg))}\n`);
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write(`frontchannel: step ${currentStep}: timed out after ${TOTAL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  const why = err instanceof StepFailure ? err.message : (err?.stack ?? String(err));
  process.stderr.write(`frontchannel: step ${currentStep}: ${why}\n`);
  process.exit(1);
}
