import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

/** Debian's chromium (scripts/setup.sh installs it); CHROMIUM_PATH points elsewhere. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** What a report looked like in a real browser. */
export interface Rendered {
  /** Console errors and uncaught page errors. */
  errors: string[];
  /** Every request the page made that was not the file itself: a self-contained report makes none. */
  requests: string[];
  /** Each Chart.js chart by canvas id: its datasets and the sum of their numeric points. */
  charts: { id: string; datasets: number; points: number; total: number }[];
  /** The page's visible text. */
  text: string;
  /** Whether anything the data carried ran as script (the test payload sets this global). */
  pwned: boolean;
}

/**
 * Opens an HTML report from disk in headless Chromium (through playwright-core, with an explicit
 * executable: no browser download), waits for the charts, takes a full-page screenshot, and
 * reports what a reader would have met: errors, requests, charts and text.
 */
export async function renderInBrowser(file: string, screenshot: string): Promise<Rendered> {
  // --no-sandbox: CI runs as root, where Chromium refuses its sandbox.
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    const url = pathToFileURL(file).href;
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    page.on('pageerror', (error) => errors.push(error.message));
    await page.route('**/*', async (route) => {
      if (route.request().url() === url) return route.continue();
      requests.push(route.request().url());
      return route.abort();
    });
    await page.goto(url, { waitUntil: 'load' });
    await page.waitForSelector('body[data-charts]', { timeout: 10_000 });
    const charts = await page.evaluate(() => {
      type ChartLike = { canvas: { id: string }; data: { datasets: { data: unknown[] }[] } };
      const all = (globalThis as unknown as { vigilCharts?: ChartLike[] }).vigilCharts ?? [];
      return all.map((chart) => {
        const values = chart.data.datasets.flatMap((dataset) => dataset.data).filter((value): value is number => typeof value === 'number');
        return { id: chart.canvas.id, datasets: chart.data.datasets.length, points: values.length, total: values.reduce((sum, value) => sum + value, 0) };
      });
    });
    const text = await page.innerText('body');
    const pwned = await page.evaluate(() => (globalThis as unknown as { pwned?: unknown }).pwned !== undefined);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { errors, requests, charts, text, pwned };
  } finally {
    await browser.close();
  }
}
