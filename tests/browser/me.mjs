// profilegate's self-service page (/.profilegate/me) in Debian's headless Chromium, driven by
// playwright-core, with JavaScript off (the page needs none). Run by tests/me.rs:
//
//   node tests/browser/me.mjs '<config json>'
//
// Config: { "start_url": "http://127.0.0.1:P/dashboard", "login": "alice",
//           "answers": { "company": "Acme Corp", "team_size": 12 }, "skip": ["role"],
//           "company_label": "Which company do you work for?", "too_short": "A",
//           "error": "Enter at least 2 characters.", "changed": "Globex Corporation",
//           "artifacts": "target/test-artifacts/browser", "name": "me" }
//
// Steps, each with a screenshot NAME-NN-step.png (full page):
//   01 sign in at the OP; the answers are given through the JSON API (same session)
//   02 the page: no <script>, a CSP without scripts, every answer with its source, the skip,
//      the sign-in count
//   03 "Change" of the company: the question page's form, a too-short answer comes back 422
//      with the error and the typed value
//   04 a valid answer: back on the page, "Your answer was saved.", the new value shown
//   05 "Erase my answers": the confirmation step
//   06 erased: nothing stored but the sign-ins; the company is pending again, and the app's
//      URL leads to the question page
//
// Prints one JSON line on stdout: {"screenshots":[...],"steps":[...]}. Any failed check exits
// 1 with "step NN (...): why".

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const TOTAL_TIMEOUT_MS = 120_000;
class StepFailure extends Error {}
let currentStep = 'start';
const screenshots = [];
const steps = [];

function check(condition, message) {
  if (!condition) throw new StepFailure(message);
}
function step(name) {
  currentStep = name;
  steps.push(name);
  process.stderr.write(`me: step ${name}\n`);
}
async function shot(page, cfg, file) {
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const target = path.resolve(cfg.artifacts, `${cfg.name}-${file}`);
  await page.screenshot({ path: target, fullPage: true });
  screenshots.push(target);
  return target;
}

/// The page's HTML and CSP: no script, no script source.
function checkNoScript(html, response) {
  check(!/<script/i.test(html), 'the page contains a <script> element');
  const csp = response.headers()['content-security-policy'] ?? '';
  check(/default-src 'none'/.test(csp) && !/script-src/.test(csp), `unexpected Content-Security-Policy: ${csp}`);
}

async function run(browser, cfg) {
  const proxy = new URL(cfg.start_url).origin;
  const me = `${proxy}/.profilegate/me`;
  const context = await browser.newContext({
    viewport: { width: 760, height: 620 },
    deviceScaleFactor: 1,
    locale: 'en-US',
    javaScriptEnabled: false,
  });
  context.setDefaultTimeout(15_000);
  // Hermetic: only loopback is reached (the OP's login page imports a web font).
  await context.route('**/*', (route) => {
    const { hostname, protocol } = new URL(route.request().url());
    if (protocol === 'data:' || ['127.0.0.1', 'localhost', '[::1]'].includes(hostname)) return route.continue();
    return route.abort('blockedbyclient');
  });
  const page = await context.newPage();

  step('01 sign in');
  await page.goto(cfg.start_url);
  check(new URL(page.url()).origin !== proxy, `expected the OP's login page, got ${page.url()}`);
  await page.locator('input[name="login"]').fill(cfg.login);
  await page.locator('input[name="password"]').fill('any-password');
  await page.locator('button[type="submit"]').click();
  await page.waitForLoadState();
  if (new URL(page.url()).origin !== proxy) await page.locator('button[type="submit"]').click();
  await page.waitForURL((u) => u.origin === proxy && u.pathname.endsWith('/profile'));
  const pending = await (await context.request.get(`${proxy}/.profilegate/api/pending`)).json();
  const answered = await context.request.post(`${proxy}/.profilegate/api/answers`, {
    headers: { 'x-profilegate-csrf': pending.csrf_token },
    data: { answers: cfg.answers, skip: cfg.skip },
  });
  check(answered.status() === 200, `api/answers answered ${answered.status()}`);

  step('02 the page');
  let response = await page.goto(me);
  check(response.status() === 200, `the page answered ${response.status()}`);
  checkNoScript(await response.text(), response);
  const answers = await page.locator('#answers').innerText();
  check(answers.includes(cfg.company_label) && answers.includes(cfg.answers.company), `the answers read ${answers}`);
  check(answers.includes('by you'), `no source in ${answers}`);
  check((await page.locator('#skips').innerText()).includes('Skipped'), 'the skip is not shown');
  check((await page.locator('#logins').innerText()).includes('1'), 'the sign-in count is not shown');
  await shot(page, cfg, '02-page.png');

  step('03 change: refused');
  await page.locator('#answer-company a').click();
  await page.waitForURL((u) => u.search.includes('change=company'));
  const input = page.getByLabel(cfg.company_label, { exact: true });
  check((await input.inputValue()) === cfg.answers.company, 'the change form is not filled in');
  await input.fill(`${cfg.too_short} `);
  const refusedAt = page.waitForResponse((r) => r.url() === me && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Continue' }).click();
  response = await refusedAt;
  check(response.status() === 422, `a too-short answer got ${response.status()}`);
  await page.waitForLoadState();
  const error = (await page.locator('#q-company-error').innerText()).trim();
  check(error === cfg.error, `the error reads ${JSON.stringify(error)}`);
  check((await input.inputValue()).trim() === cfg.too_short, 'the typed value was not kept');
  await shot(page, cfg, '03-change-422.png');

  step('04 change: saved');
  await input.fill(cfg.changed);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForURL((u) => u.pathname === '/.profilegate/me' && u.search === '?done=saved');
  check((await page.locator('.notice').innerText()).includes('Your answer was saved.'), 'no saved notice');
  check((await page.locator('#answer-company').innerText()).includes(cfg.changed), 'the new value is not shown');
  const pageShot = await shot(page, cfg, '04-saved.png');

  step('05 erase: confirmation');
  await page.locator('#erase-start').click();
  await page.waitForURL((u) => u.search === '?erase=confirm');
  check(await page.getByRole('button', { name: 'Yes, erase them' }).count() === 1, 'no confirmation button');
  await shot(page, cfg, '05-erase-confirm.png');

  step('06 erased');
  await page.getByRole('button', { name: 'Yes, erase them' }).click();
  await page.waitForURL((u) => u.search === '?done=erased');
  check((await page.locator('.notice').innerText()).includes('Your answers were erased.'), 'no erased notice');
  const after = await page.locator('#answers').innerText();
  check(!after.includes(cfg.changed), `the erased answer still shows: ${after}`);
  check(after.includes('Not answered yet'), `the company is not pending again: ${after}`);
  check(await page.locator('#skips').count() === 0, 'the skip survived the erasure');
  await shot(page, cfg, '06-erased.png');
  await page.goto(cfg.start_url);
  check(new URL(page.url()).pathname === '/.profilegate/profile', `after erasure the app led to ${page.url()}`);
  await context.close();
  return pageShot;
}

async function main() {
  const cfg = { login: 'alice', name: 'me', ...JSON.parse(process.argv[2] ?? '{}') };
  const executablePath = process.env.TEST_CHROMIUM || '/usr/bin/chromium';
  check(fs.existsSync(executablePath), `Chromium is not installed at ${executablePath}`);
  const browser = await chromium.launch({
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
    timeout: 30_000,
  });
  try {
    const docs = await run(browser, cfg);
    process.stdout.write(`${JSON.stringify({ screenshots, steps, docs })}\n`);
  } finally {
    await browser.close();
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write(`me: step ${currentStep}: timed out after ${TOTAL_TIMEOUT_MS / 1000} s\n`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  const why = err instanceof StepFailure ? err.message : (err?.stack ?? String(err));
  process.stderr.write(`me: step ${currentStep}: ${why}\n`);
  process.exit(1);
}
