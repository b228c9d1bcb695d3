// Drives the dashboard in a real headless chromium, as an operator would: the overview
// shows the queues, signing in with the token, retrying a dead job by clicking its
// button, pausing a queue by clicking. Saves a screenshot of each step.
//
// Reads: DASHBOARD_URL, DASHBOARD_TOKEN, DEAD_JOB (id), DEAD_QUEUE, PENDING (the count the
// overview must show for `default`), SHOTS (folder), CHROMIUM (executable).
// Prints one JSON line of what it saw; exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import { join } from "node:path";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const base = env("DASHBOARD_URL").replace(/\/$/, "");
const shots = env("SHOTS");
const deadJob = env("DEAD_JOB");
const deadQueue = env("DEAD_QUEUE");
const saw = { screenshots: [] };

const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`);
};
const shot = async (page, name) => {
  const path = join(shots, name);
  await page.screenshot({ path, fullPage: true });
  saw.screenshots.push(path);
};

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(15000);

  await page.goto(`${base}/`);
  const pending = (await page.locator('#queues tr[data-queue="default"] td').nth(1).innerText()).trim();
  saw.overview_default_pending = pending;
  check(pending === env("PENDING"), `overview shows ${pending} pending on default`);
  await shot(page, "1-overview.png");

  await page.goto(`${base}/login`);
  await page.fill('input[name="name"]', "browser-test");
  await page.fill('input[name="token"]', env("DASHBOARD_TOKEN"));
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/`);
  check(await page.getByText("signed in as browser-test").isVisible(), "signed in");

  await page.goto(`${base}/jobs?status=dead&queue=${encodeURIComponent(deadQueue)}`);
  await shot(page, "2-dead-jobs.png");
  const row = page.locator(`#jobs tr[data-job="${deadJob}"]`);
  await row.getByRole("button", { name: "Retry" }).click();
  await page.getByRole("status").waitFor();
  const flash = await page.getByRole("status").innerText();
  saw.retry_flash = flash;
  check(flash.includes(`Job ${deadJob} retried.`), `retry said: ${flash}`);
  check((await page.locator(`#jobs tr[data-job="${deadJob}"]`).count()) === 0, "the retried job left the dead list");
  await shot(page, "3-dead-job-retried.png");

  await page.goto(`${base}/queues/default`);
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByRole("status").waitFor();
  saw.pause_flash = await page.getByRole("status").innerText();
  check(saw.pause_flash.includes("Queue default paused."), `pause said: ${saw.pause_flash}`);
  check(await page.getByRole("button", { name: "Resume" }).isVisible(), "a Resume button replaced Pause");
  await shot(page, "4-queue-paused.png");

  await page.goto(`${base}/jobs/${encodeURIComponent(deadQueue)}/${encodeURIComponent(deadJob)}`);
  check((await page.locator("#record").innerText()).includes(deadJob), "the job page shows the job");
  await shot(page, "5-job-detail.png");
} finally {
  await browser.close();
}
console.log(JSON.stringify(saw));
