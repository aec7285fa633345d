// profilegate's headless-browser flow: Debian's Chromium, driven by playwright-core (which never
// downloads a browser of its own), signs in at the real test OP and answers the hosted question
// page the way a person would. Run by tests/browser.rs; usable by hand too:
//
//   node tests/browser/flow.mjs '<config json>'
//
// Config (JSON):
//   {
//     "mode": "flow",                 // "flow": the whole journey with checks (below);
//                                     // "theme": sign in, check and photograph the themed page;
//                                     // "hurry": the page for a person in a hurry (below)
//     "start_url": "http://127.0.0.1:P/dashboard",   // a page behind profilegate
//     "login": "alice",               // any user name: the test OP accepts any login and password
//     "question": { "id": "company", "label": "Which company do you work for?",
//                   "too_short": "A", "error": "Enter at least 2 characters.",
//                   "valid": "Acme Corp" },
//     "theme": { "title": "Acme", "primary_color": "rgb(11, 122, 117)", "logo": true,
//                "background": "rgb(15, 23, 42)" },     // mode "theme": what must show
//     "hurry": { "font_family": "\"DejaVu Sans Mono\"", "primary_color": "rgb(124, 58, 237)",
//                "brand": "127.0.0.1", "consent_label": "I accept the terms.",
//                "viewports": [{ "width": 390, "height": 844, "login": "alice" }, ...] },
//                                     // mode "hurry": what must show, one sign-in per viewport
//     "artifacts": "target/test-artifacts/browser",      // screenshots go here
//     "name": "flow",                 // screenshot name prefix
//     "chromium": "/usr/bin/chromium" // optional; default $TEST_CHROMIUM or /usr/bin/chromium
//   }
//
// Steps of mode "flow", each with a screenshot NN-step.png:
//   01 the proxy URL redirects to the OP's login page; fill login + password; submit
//   02 the OP's consent page; submit
//   03 profilegate's question page: label linked to the input, input focused (autofocus), no
//      <script>, a CSP without scripts
//   04 the same page in a context with JavaScript disabled: a padded too-short answer posts
//      and comes back 422 with the error (the page needs no script)
//   05 "A" typed: the browser's own constraint validation (minlength) keeps the form
//   06 "A " (passes minlength, trimmed by the server): 422, error next to the field
//      (aria-describedby, role=alert), the typed value kept, the field focused again
//   07 a valid answer: 303 to the page first asked for; the echo upstream's JSON is shown
//
// Mode "hurry", per viewport (a fresh sign-in as its login), screenshots NAME-WxH-*.png:
//   question: the computed font-family starts with the configured family (not a serif
//      fallback), the Continue button has the primary color, the brand reads the title,
//      "Signed in as <Name>" and a Sign out button show, the card sits near the top on a phone
//      and in the middle on a desktop
//   422: the tab title starts with "Error — ", the focused field keeps the error color on its
//      border and focus ring
//   consent: the next question is its checkbox's text, with no heading and the title once
//   signed-out: Sign out POSTs (with the CSRF token) to the logout route, the session cookie is
//      gone, the OP's logout confirmed lands on profilegate's signed-out page, and the
//      question page then starts a new sign-in
//
// Prints one JSON line on stdout: {"screenshots":[...],"landed":{"url":...,"status":...,
// "body":...}}. Progress goes to stderr. Any failed check exits 1 with "step NN (...): why".

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const VIEWPORT = { width: 760, height: 620 };
const STEP_TIMEOUT_MS = 15_000;
const TOTAL_TIMEOUT_MS = 120_000;

class StepFailure extends Error {}

let currentStep = 'start';
let currentPage = null; // photographed when a step fails
const screenshots = [];
const offLoopback = [];

function log(message) {
  process.stderr.write(`flow: ${message}\n`);
}

function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}

function config() {
  const raw = process.argv[2];
  if (!raw) {
    throw new StepFailure('usage: node flow.mjs \'<config json>\' (see the header of flow.mjs)');
  }
  const cfg = JSON.parse(raw);
  for (const key of ['start_url', 'artifacts', 'question']) {
    check(cfg[key] !== undefined, `config.${key} is missing`);
  }
  return {
    mode: 'flow',
    login: 'alice',
    name: 'flow',
    chromium: process.env.TEST_CHROMIUM || '/usr/bin/chromium',
    ...cfg,
  };
}

async function shot(page, cfg, file) {
  currentPage = page;
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const target = path.resolve(cfg.artifacts, file);
  await page.screenshot({ path: target });
  screenshots.push(target);
  log(`screenshot ${target}`);
  return target;
}

async function newContext(browser, options = {}) {
  const context = await browser.newContext({
    viewport: options.viewport ?? VIEWPORT,
    deviceScaleFactor: 1,
    locale: 'en-US',
    ...options,
  });
  context.on('page', (p) => {
    currentPage = p;
  });
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
  // The test is hermetic: only loopback is reached (the OP's login page imports a web font).
  await context.route('**/*', (route) => {
    const { hostname, protocol } = new URL(route.request().url());
    if (protocol === 'data:' || ['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) {
      return route.continue();
    }
    offLoopback.push(route.request().url());
    return route.abort('blockedbyclient');
  });
  return context;
}

function step(name) {
  currentStep = name;
  log(`step ${name}`);
}

/// Signs in at the OP from `start_url`; returns the response of profilegate's question page.
async function signIn(page, cfg, photograph) {
  step('01 OP login page');
  const proxyOrigin = new URL(cfg.start_url).origin;
  await page.goto(cfg.start_url);
  check(
    new URL(page.url()).origin !== proxyOrigin && page.url().includes('/interaction/'),
    `expected the OP's interaction page, got ${page.url()}`,
  );
  const login = page.locator('input[name="login"]');
  await login.waitFor();
  check(await page.locator('input[name="password"]').count() === 1, 'no password field on the OP page');
  await login.fill(cfg.login);
  await page.locator('input[name="password"]').fill('any-password');
  if (photograph) await shot(page, cfg, `${cfg.name}-01-op-login.png`);
  const loginUrl = page.url();
  await Promise.all([
    page.waitForURL((u) => u.href !== loginUrl),
    page.locator('button[type="submit"]').click(),
  ]);

  step('02 OP consent page');
  await page.waitForLoadState();
  if (new URL(page.url()).origin !== proxyOrigin) {
    const consent = page.locator('input[name="prompt"][value="consent"]');
    check(await consent.count() === 1, `expected the OP's consent form at ${page.url()}`);
    if (photograph) await shot(page, cfg, `${cfg.name}-02-op-consent.png`);
  }

  step('03 question page');
  const landing = page.waitForResponse(
    (r) => r.url().startsWith(`${proxyOrigin}${cfg.prefix ?? '/.profilegate'}/profile`) && r.request().method() === 'GET',
  );
  if (new URL(page.url()).origin !== proxyOrigin) {
    await page.locator('button[type="submit"]').click();
  }
  const response = await landing;
  await page.waitForURL((u) => u.pathname.endsWith('/profile'));
  await page.waitForLoadState();
  check(response.status() === 200, `question page answered ${response.status()}`);
  return response;
}

/// The checks every rendering of the question page must pass.
async function checkQuestionPage(page, response, q) {
  const html = await response.text();
  check(!/<script/i.test(html), 'the question page contains a <script> element');
  const csp = response.headers()['content-security-policy'] ?? '';
  check(/default-src 'none'/.test(csp) && !/script-src/.test(csp), `unexpected Content-Security-Policy: ${csp}`);
  // getByLabel finds the input only when the label is linked to it.
  const input = page.getByLabel(q.label, { exact: true });
  check(await input.count() === 1, `no input labelled ${JSON.stringify(q.label)}`);
  check((await input.getAttribute('name')) === q.id, `the labelled input is not named ${q.id}`);
  const heading = (await page.locator('h1').innerText()).trim();
  check(heading === q.label, `the heading reads ${JSON.stringify(heading)}`);
  return input;
}

async function focusedId(page) {
  return page.evaluate(() => document.activeElement?.id ?? null);
}

async function submitAndWait(page, proxyOrigin, prefix) {
  const posted = page.waitForResponse(
    (r) => r.url() === `${proxyOrigin}${prefix}/profile` && r.request().method() === 'POST',
  );
  await page.getByRole('button', { name: 'Continue' }).click();
  const response = await posted;
  await page.waitForLoadState();
  return response;
}

/// Checks the re-rendered page of a refused answer (status 422).
async function checkRefused(page, response, q, typed) {
  check(response.status() === 422, `a too-short answer got ${response.status()}, expected 422`);
  const input = await checkQuestionPage(page, response, q);
  const error = page.locator(`#q-${q.id}-error`);
  check(await error.count() === 1, 'no error message element');
  const message = (await error.innerText()).trim();
  check(message === q.error, `the error reads ${JSON.stringify(message)}, expected ${JSON.stringify(q.error)}`);
  check((await error.getAttribute('role')) === 'alert', 'the error is not announced (role=alert)');
  const described = (await input.getAttribute('aria-describedby')) ?? '';
  check(described.split(' ').includes(`q-${q.id}-error`), `aria-describedby=${JSON.stringify(described)} omits the error`);
  check((await input.getAttribute('aria-invalid')) === 'true', 'the field is not marked aria-invalid');
  const value = await input.inputValue();
  check(value.trim() === typed.trim(), `the typed value was not kept: ${JSON.stringify(value)}`);
  return input;
}

async function flow(browser, cfg) {
  const q = cfg.question;
  const prefix = cfg.prefix ?? '/.profilegate';
  const proxyOrigin = new URL(cfg.start_url).origin;
  const context = await newContext(browser);
  const page = await context.newPage();

  const response = await signIn(page, cfg, true);
  await checkQuestionPage(page, response, q);
  check((await focusedId(page)) === `q-${q.id}`, `the input is not focused; focus is on ${await focusedId(page)}`);
  // The default font list is real CSS: an HTML-escaped one was dropped, leaving a serif page.
  const font = (await styleOf(page, 'body', ['fontFamily'])).fontFamily;
  check(font.startsWith('system-ui, -apple-system, "Segoe UI"'), `the page's font-family is ${font}, not the default system font list`);
  await shot(page, cfg, `${cfg.name}-03-question.png`);
  const questionUrl = page.url();

  step('04 question page without JavaScript');
  {
    const noJs = await newContext(browser, {
      javaScriptEnabled: false,
      storageState: await context.storageState(),
    });
    const p = await noJs.newPage();
    const r = await p.goto(questionUrl);
    check(r.status() === 200, `without JavaScript the question page answered ${r.status()}`);
    const input = await checkQuestionPage(p, r, q);
    const padded = `${q.too_short} `;
    await input.fill(padded);
    const refused = await submitAndWait(p, proxyOrigin, prefix);
    await checkRefused(p, refused, q, padded);
    await shot(p, cfg, `${cfg.name}-04-no-javascript-422.png`);
    await noJs.close();
  }

  step('05 too short: the browser keeps the form');
  {
    const input = page.getByLabel(q.label, { exact: true });
    let posted = false;
    const onRequest = (req) => {
      if (req.method() === 'POST') posted = true;
    };
    page.on('request', onRequest);
    await input.fill(q.too_short);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForTimeout(300);
    page.off('request', onRequest);
    check(!posted, 'the browser posted an answer shorter than minlength');
    check(page.url() === questionUrl, `the page changed to ${page.url()}`);
    const tooShort = await input.evaluate((el) => el.validity.tooShort);
    check(tooShort, 'the input is not flagged tooShort by the browser');
    await shot(page, cfg, `${cfg.name}-05-browser-validation.png`);
  }

  step('06 too short after trimming: 422 from the server');
  {
    const padded = `${q.too_short} `;
    await page.getByLabel(q.label, { exact: true }).fill(padded);
    const refused = await submitAndWait(page, proxyOrigin, prefix);
    await checkRefused(page, refused, q, padded);
    check((await focusedId(page)) === `q-${q.id}`, 'the field is not focused after a refused answer');
    await shot(page, cfg, `${cfg.name}-06-invalid-422.png`);
  }

  step('07 valid answer: on to the app');
  {
    await page.getByLabel(q.label, { exact: true }).fill(q.valid);
    const posted = await submitAndWait(page, proxyOrigin, prefix);
    check(posted.status() === 303, `a valid answer got ${posted.status()}, expected 303`);
    const target = new URL(cfg.start_url);
    await page.waitForURL((u) => u.origin === target.origin && u.pathname === target.pathname);
    const body = await page.locator('body').innerText();
    check(body.includes(q.valid), `the app page does not show the answer: ${body.slice(0, 400)}`);
    await shot(page, cfg, `${cfg.name}-07-app.png`);
    const landed = { url: page.url(), body };
    await context.close();
    return landed;
  }
}

/// Mode "theme": the themed question page, fresh and after a refused answer.
async function theme(browser, cfg) {
  const q = cfg.question;
  const t = cfg.theme ?? {};
  const prefix = cfg.prefix ?? '/.profilegate';
  const proxyOrigin = new URL(cfg.start_url).origin;
  const context = await newContext(browser);
  const page = await context.newPage();
  const response = await signIn(page, cfg, false);
  await checkQuestionPage(page, response, q);

  step('themed page');
  if (t.title) {
    const brand = (await page.locator('.brand').innerText()).trim();
    check(brand === t.title, `the brand reads ${JSON.stringify(brand)}`);
    check((await page.title()).endsWith(t.title), `the tab title is ${JSON.stringify(await page.title())}`);
  }
  const button = page.getByRole('button', { name: 'Continue' });
  if (t.primary_color) {
    const bg = await button.evaluate((el) => getComputedStyle(el).backgroundColor);
    check(bg === t.primary_color, `the button is ${bg}, expected ${t.primary_color}`);
  }
  if (t.background) {
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(bg === t.background, `the page background is ${bg}, expected ${t.background}`);
  }
  if (t.font_family) {
    const font = (await styleOf(page, 'body', ['fontFamily'])).fontFamily;
    check(font.startsWith(t.font_family), `the page's font-family is ${font}, expected ${t.font_family}`);
  }
  if (t.logo) {
    const img = page.locator('.brand img');
    check(await img.count() === 1, 'no logo image');
    const loaded = await img.evaluate((el) => el.complete && el.naturalWidth > 0);
    check(loaded, `the logo ${await img.getAttribute('src')} did not load`);
  }
  await shot(page, cfg, `${cfg.name}.png`);

  step('themed page, refused answer');
  const padded = `${q.too_short} `;
  await page.getByLabel(q.label, { exact: true }).fill(padded);
  const refused = await submitAndWait(page, proxyOrigin, prefix);
  await checkRefused(page, refused, q, padded);
  await shot(page, cfg, `${cfg.name}-422.png`);
  await context.close();
  return { url: page.url() };
}

/// Computed styles of the first element matching `selector`.
async function styleOf(page, selector, props) {
  return page.locator(selector).first().evaluate(
    (el, names) => Object.fromEntries(names.map((n) => [n, getComputedStyle(el)[n]])),
    props,
  );
}

/// The card's place: near the top on a phone, vertically centred on a desktop.
async function checkCardPlace(page, viewport) {
  const box = await page.locator('main').evaluate((el) => {
    const r = el.getBoundingClientRect();
    return { top: r.top, height: r.height };
  });
  if (viewport.width <= 480) {
    check(box.top <= 16, `on a ${viewport.width}px phone the card starts ${box.top}px down, not at the top`);
  } else {
    const centred = (viewport.height - box.height) / 2;
    check(Math.abs(box.top - centred) <= 2, `on a ${viewport.width}px screen the card is at ${box.top}px, not centred (${centred}px)`);
  }
}

/// The signed-in line: "Signed in as <name>" and a Sign out button in a POST form with a token.
async function checkAccount(page, name, prefix) {
  const account = (await page.locator('.account').innerText()).replace(/\s+/g, ' ').trim();
  check(account.startsWith(`Signed in as ${name}`), `the account line reads ${JSON.stringify(account)}`);
  const button = page.getByRole('button', { name: 'Sign out' });
  check(await button.count() === 1, 'no Sign out button');
  const form = await button.evaluate((el) => ({
    method: el.form?.method,
    action: el.form ? new URL(el.form.action).pathname : null,
    token: el.form?.elements.csrf_token?.value ?? '',
  }));
  check(form.method === 'post' && form.action === `${prefix}/logout`, `the Sign out form is ${JSON.stringify(form)}`);
  check(form.token.length >= 16, 'the Sign out form carries no CSRF token');
}

/// Mode "hurry": the question page for a person in a hurry, at each configured viewport.
async function hurry(browser, cfg) {
  const q = cfg.question;
  const h = cfg.hurry;
  const prefix = cfg.prefix ?? '/.profilegate';
  const proxyOrigin = new URL(cfg.start_url).origin;
  const pages = [];
  for (const vp of h.viewports) {
    const viewport = { width: vp.width, height: vp.height };
    const tag = `${cfg.name}-${vp.width}x${vp.height}`;
    const name = vp.login.charAt(0).toUpperCase() + vp.login.slice(1);
    const context = await newContext(browser, { viewport });
    const page = await context.newPage();
    const response = await signIn(page, { ...cfg, login: vp.login }, false);
    await checkQuestionPage(page, response, q);

    step(`${tag} question page`);
    const font = (await styleOf(page, 'body', ['fontFamily'])).fontFamily;
    check(font.startsWith(h.font_family), `the page's font-family is ${font}, expected it to start with ${h.font_family}`);
    for (const sel of ['h1', 'button.button', `#q-${q.id}`, '.account']) {
      const f = (await styleOf(page, sel, ['fontFamily'])).fontFamily;
      check(f.startsWith(h.font_family), `${sel} has font-family ${f}`);
    }
    const bg = (await styleOf(page, 'button.button', ['backgroundColor'])).backgroundColor;
    check(bg === h.primary_color, `the Continue button is ${bg}, expected ${h.primary_color}`);
    const brand = (await page.locator('.brand').innerText()).trim();
    check(brand === h.brand, `the brand reads ${JSON.stringify(brand)}, expected ${JSON.stringify(h.brand)}`);
    const title = await page.title();
    check(title === `${q.label} · ${h.brand}`, `the tab title is ${JSON.stringify(title)}`);
    await checkAccount(page, name, prefix);
    await checkCardPlace(page, viewport);
    await shot(page, cfg, `${tag}-question.png`);

    step(`${tag} refused answer`);
    const padded = `${q.too_short} `;
    await page.getByLabel(q.label, { exact: true }).fill(padded);
    const refused = await submitAndWait(page, proxyOrigin, prefix);
    const input = await checkRefused(page, refused, q, padded);
    const errorTitle = await page.title();
    check(errorTitle === `Error — ${q.label} · ${h.brand}`, `after a 422 the tab title is ${JSON.stringify(errorTitle)}`);
    check((await focusedId(page)) === `q-${q.id}`, 'the field is not focused after a refused answer');
    const errorColor = (await styleOf(page, `#q-${q.id}-error`, ['color'])).color;
    const field = await input.evaluate((el) => {
      const s = getComputedStyle(el);
      return { border: s.borderTopColor, outline: s.outlineColor, outlineStyle: s.outlineStyle, focused: el.matches(':focus') };
    });
    check(field.focused, 'the refused field does not match :focus');
    check(field.border === errorColor, `the focused refused field's border is ${field.border}, expected the error color ${errorColor}`);
    check(field.outlineStyle !== 'none' && field.outline === errorColor, `the focused refused field's focus ring is ${field.outlineStyle} ${field.outline}, expected the error color ${errorColor}`);
    await checkAccount(page, name, prefix);
    await checkCardPlace(page, viewport);
    await shot(page, cfg, `${tag}-422.png`);

    step(`${tag} consent question`);
    await page.getByLabel(q.label, { exact: true }).fill(q.valid);
    const answered = await submitAndWait(page, proxyOrigin, prefix);
    check(answered.status() === 303, `a valid answer got ${answered.status()}, expected 303`);
    await page.waitForURL((u) => u.pathname === `${prefix}/profile`);
    await page.waitForLoadState();
    const consent = page.getByLabel(h.consent_label, { exact: true });
    check(await consent.count() === 1, `no checkbox labelled ${JSON.stringify(h.consent_label)}`);
    check((await consent.getAttribute('type')) === 'checkbox', 'the consent input is not a checkbox');
    check(await page.locator('h1').count() === 0, 'a consent question shows a heading');
    const body = await page.locator('main').innerText();
    const times = body.split(h.brand).length - 1;
    check(times === 1, `the title shows ${times} times on the consent page`);
    await checkAccount(page, name, prefix);
    await checkCardPlace(page, viewport);
    await shot(page, cfg, `${tag}-consent.png`);

    step(`${tag} sign out`);
    const logoutPost = page.waitForRequest((r) => r.url() === `${proxyOrigin}${prefix}/logout` && r.method() === 'POST');
    const opUrl = new URL(cfg.op_issuer);
    await Promise.all([
      page.waitForURL((u) => u.origin === opUrl.origin),
      page.getByRole('button', { name: 'Sign out' }).click(),
    ]);
    const posted = await logoutPost;
    check(/(^|&)csrf_token=[^&]{16,}/.test(posted.postData() ?? ''), 'the sign-out POST carried no CSRF token');
    const cookies = await context.cookies(proxyOrigin);
    check(!cookies.some((c) => c.name === 'profilegate_session'), 'the session cookie survived sign-out');
    await Promise.all([
      page.waitForURL((u) => u.origin === proxyOrigin && u.pathname === `${prefix}/signed-out`),
      page.getByRole('button', { name: 'Yes, sign me out' }).click(),
    ]);
    check((await page.locator('h1').innerText()).trim() === 'Signed out', 'not the signed-out page');
    check(await page.locator('.account').count() === 0, 'the signed-out page shows a signed-in line');
    await shot(page, cfg, `${tag}-signed-out.png`);
    await page.goto(cfg.start_url);
    check(new URL(page.url()).origin !== proxyOrigin, `after sign-out ${cfg.start_url} did not start a sign-in: ${page.url()}`);
    pages.push(tag);
    await context.close();
  }
  return { viewports: pages };
}

/// A screenshot of the page a step failed on, when there is one.
async function photographFailure(cfg) {
  if (!currentPage || currentPage.isClosed()) return;
  const target = path.resolve(cfg.artifacts, `${cfg.name}-failed.png`);
  try {
    fs.mkdirSync(cfg.artifacts, { recursive: true });
    await currentPage.screenshot({ path: target, timeout: 5_000 });
    log(`the page at failure (${currentPage.url()}): ${target}`);
  } catch (err) {
    log(`no screenshot of the failure: ${err.message}`);
  }
}

async function main() {
  const cfg = config();
  check(fs.existsSync(cfg.chromium), `Chromium is not installed at ${cfg.chromium}: run ./tests/run.sh (it installs Debian's chromium) or apt-get install chromium`);
  fs.rmSync(path.resolve(cfg.artifacts, `${cfg.name}-failed.png`), { force: true });
  step('launch Chromium');
  const browser = await chromium.launch({
    executablePath: cfg.chromium,
    headless: true,
    args: LAUNCH_ARGS,
    timeout: 30_000,
  });
  try {
    log(`Chromium ${browser.version()}`);
    browser.on('disconnected', () => log('Chromium disconnected'));
    const modes = { flow, theme, hurry };
    check(modes[cfg.mode] !== undefined, `unknown mode ${cfg.mode}`);
    const landed = await modes[cfg.mode](browser, cfg);
    if (offLoopback.length) log(`blocked requests off loopback: ${offLoopback.join(', ')}`);
    process.stdout.write(`${JSON.stringify({ screenshots, landed, blocked: offLoopback })}\n`);
  } catch (err) {
    await photographFailure(cfg);
    throw err;
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write(`flow: step ${currentStep}: timed out after ${TOTAL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  const why = err instanceof StepFailure ? err.message : (err?.stack ?? String(err));
  process.stderr.write(`flow: step ${currentStep}: ${why}\n`);
  process.exit(1);
}
