// The admin dashboard (`GET /admin/`) in Debian's headless Chromium, JavaScript off (the page
// must need none): signs in with HTTP Basic (the admin token as password), reads every
// question card's figures from the page as a person sees them, checks the page has no script
// and a CSP without scripts, and takes a screenshot. Run by tests/funnel.rs.
//
//   node tests/browser/dashboard.mjs '{"url": "http://127.0.0.1:P/admin/", "token": "…",
//                                      "screenshot": "path/to/dashboard.png"}'
//
// Prints one JSON line: {"status":200,"csp":"…","cards":[{"question":"company","version":"1",
// "shown":"50",…,"bars":4}],"screenshot":"…"}. Any failure exits 1 with its reason on stderr.

import fs from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(process.argv[2] ?? '{}');
const watchdog = setTimeout(() => {
  process.stderr.write('dashboard: timed out after 60 s\n');
  process.exit(1);
}, 60_000);

function fail(why) {
  throw new Error(why);
}

async function main() {
  for (const key of ['url', 'token', 'screenshot']) {
    if (cfg[key] === undefined) fail(`config.${key} is missing`);
  }
  const browser = await chromium.launch({
    executablePath: process.env.TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  try {
    const context = await browser.newContext({
      viewport: { width: 1000, height: 700 },
      deviceScaleFactor: 1,
      javaScriptEnabled: false,
      httpCredentials: { username: 'admin', password: cfg.token },
    });
    context.setDefaultTimeout(15_000);
    const page = await context.newPage();
    const response = await page.goto(cfg.url);
    if (!response) fail('no response');
    const status = response.status();
    const csp = (await response.allHeaders())['content-security-policy'] ?? '';
    if (await page.locator('script').count() !== 0) fail('the dashboard has a <script>');
    const cards = [];
    for (const section of await page.locator('section[data-question]').all()) {
      const card = {
        question: await section.getAttribute('data-question'),
        version: await section.getAttribute('data-version'),
        bars: await section.locator('svg rect').count(),
      };
      for (const cell of await section.locator('[data-figure]').all()) {
        card[await cell.getAttribute('data-figure')] = (await cell.innerText()).trim();
      }
      const box = await section.locator('svg').boundingBox();
      if (!box || box.width < 100 || box.height < 50) fail(`the chart of ${card.question} is not drawn: ${JSON.stringify(box)}`);
      cards.push(card);
    }
    fs.mkdirSync(path.dirname(path.resolve(cfg.screenshot)), { recursive: true });
    await page.screenshot({ path: cfg.screenshot, fullPage: true });
    process.stdout.write(`${JSON.stringify({ status, csp, cards, screenshot: cfg.screenshot })}\n`);
  } finally {
    await browser.close();
  }
}

try {
  await main();
  clearTimeout(watchdog);
} catch (err) {
  process.stderr.write(`dashboard: ${err?.stack ?? err}\n`);
  process.exit(1);
}
