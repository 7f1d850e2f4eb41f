// Drives headless chromium through the SDK test pages; prints what it saw as JSON.
//
//   node drive.js <page url> [--dnt]
//
// --dnt makes navigator.doNotTrack "1".
// The page under test must have #buy, #nav (pushes an SPA route), #boom (throws) and
// #reject (an unhandled rejection). Leaving the page (about:blank) hides it, which
// makes the SDK flush. (Playwright does not report beacons as requests: count them
// on the server.)
'use strict';
const { chromium } = require('playwright-core');

const [pageUrl, flag] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

async function visit(browser, url, { dnt }) {
  const context = await browser.newContext();
  if (dnt) {
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' });
    });
  }
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForFunction(() => window.pulseline !== undefined);
  for (const id of ['#buy', '#nav', '#boom', '#reject']) {
    await page.click(id);
  }
  await page.evaluate(() => window.pulseline.track('signup', { plan: 'pro' }));
  await page.waitForTimeout(500);
  const path = await page.evaluate(() => location.pathname);
  await page.goto('about:blank');
  await page.waitForTimeout(1500);
  await context.close();
  return { pageErrors, path };
}

(async () => {
  const browser = await chromium.launch({ executablePath, headless: true });
  try {
    const result = await visit(browser, pageUrl, { dnt: flag === '--dnt' });
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    await browser.close();
  }
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
