// Drives the dashboard in headless Chromium for crates/durable-cli/tests/dashboard.rs.
//
// Reads its plan as JSON from the DASHBOARD_PLAN environment variable, does what the plan's
// `scenario` names, and prints one JSON report on its last line of stdout; the Rust test checks
// that report against the API and the CLI. Any failed step exits non-zero with its reason.
// Every wait is for a condition, with Playwright's deadline; none is a fixed sleep.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const plan = JSON.parse(process.env.DASHBOARD_PLAN);
const TIMEOUT = 60_000;

// No first-run work, no calls home: this machine reaches nothing but the server under test.
const FLAGS = [
  '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function open() {
  const browser = await chromium.launch({
    executablePath: plan.chromium, headless: true, args: FLAGS, timeout: TIMEOUT,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  context.setDefaultTimeout(TIMEOUT);
  const page = await context.newPage();
  // A script error or a refused load (the CSP reports there) is a failure of the page.
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  return { browser, page, problems };
}

async function shot(page, name, locator) {
  if (!plan.screenshots) return;
  mkdirSync(plan.screenshots, { recursive: true });
  const path = join(plan.screenshots, `${name}.png`);
  if (locator) await locator.screenshot({ path });
  else await page.screenshot({ path, fullPage: true });
}

/** The instance ids in the list's table. */
const listedIds = (page) => page.locator('main table a.id').allTextContents();

/** Waits until the list shows exactly `ids` (in any order). */
async function waitForList(page, ids) {
  const wanted = JSON.stringify([...ids].sort());
  await page.waitForFunction((w) => {
    const seen = [...document.querySelectorAll('main table a.id')].map((a) => a.textContent);
    return JSON.stringify(seen.sort()) === w;
  }, wanted);
}

async function applyFilters(page, fill) {
  await page.getByRole('button', { name: 'Clear' }).click();
  // The unfiltered list's own form, not the one being replaced.
  await page.locator('form.filters[data-filters=""]').waitFor();
  await fill();
  await page.getByRole('button', { name: 'Apply filters' }).click();
}

/** Opens the dialog of an action, fills it and confirms; waits until it has closed. */
async function act(page, label, fill) {
  await page.getByRole('button', { name: `${label}…` }).click();
  const dialog = page.getByRole('dialog');
  if (fill) await fill(dialog);
  await dialog.getByRole('button', { name: label, exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
}

const status = (page, text) => page.locator('#instance-status', { hasText: text }).waitFor();

/** Waits for the page of instance `id` (not the one it replaces) to show `wanted`. */
async function shown(page, id, wanted) {
  await page.getByRole('heading', { name: `Instance ${id}`, exact: true }).waitFor();
  await status(page, wanted);
}

async function openInstance(page, id, wanted) {
  await page.goto(`${plan.url}/#/instances/${encodeURIComponent(id)}`);
  await shown(page, id, wanted);
}

async function list(page, report) {
  await page.goto(`${plan.url}/`);
  await page.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
  for (const id of plan.ids.all) await page.locator('main table a.id', { hasText: id }).first().waitFor();
  report.listed = await listedIds(page);
  await shot(page, 'instances');

  // Status: the two waiting instances.
  await applyFilters(page, () => page.getByRole('checkbox', { name: 'Running' }).check());
  await waitForList(page, plan.ids.running);
  // Name, exactly.
  await applyFilters(page, () => page.getByLabel('Name', { exact: true }).fill('Nested'));
  await waitForList(page, [plan.ids.nested]);
  // Id prefix and paging: 11 instances, 10 a page.
  await applyFilters(page, async () => {
    await page.getByLabel('Instance ID starts with').fill(plan.batchPrefix);
    await page.getByLabel('Per page').selectOption('10');
  });
  await waitForList(page, plan.ids.batch.slice(0, 10));
  await page.getByRole('button', { name: 'Next page →' }).click();
  await waitForList(page, plan.ids.batch.slice(10));
  check(await page.getByRole('button', { name: 'Next page →' }).isDisabled(), 'a next page after the last');
  await page.getByRole('button', { name: '← Previous page' }).click();
  await waitForList(page, plan.ids.batch.slice(0, 10));
  // Created time range: nothing was created before 2001.
  await applyFilters(page, () => page.getByLabel('Created before (local time)').fill('2001-01-01T00:00:00'));
  await page.getByText('No instance matches these filters.').waitFor();
}

/** The timeline's first five cells per row, as the page shows them. */
async function timelineRows(page) {
  const table = page.locator('.timeline table');
  await table.waitFor();
  return table.evaluate((t) => [...t.tBodies[0].rows].map((r) =>
    [...r.cells].slice(0, 5).map((c) => c.textContent)));
}

async function instance(page, report) {
  await page.goto(`${plan.url}/`);
  await page.locator('main table a.id', { hasText: plan.ids.nested }).first().click();
  await shown(page, plan.ids.nested, 'Completed');
  await page.getByRole('heading', { name: 'Sub-orchestrations' }).waitFor();
  report.timeline = await timelineRows(page);
  report.children = await page.locator('section table a.id').allTextContents();
  check(report.children.length === 2, `two children, not ${report.children}`);
  await shot(page, 'instance');

  // A child links back to its parent.
  await page.locator('section table a.id').first().click();
  await shown(page, report.children[0], 'Completed');
  await page.getByRole('link', { name: plan.ids.nested }).waitFor();

  await openInstance(page, plan.ids.failed, 'Failed');
  await page.getByRole('heading', { name: 'Failure' }).waitFor();
  report.failure = await page.locator('.failure').first().textContent();
  check(!(await page.getByRole('button', { name: 'Rewind…' }).isDisabled()), 'rewind disabled on a failed instance');
  check(await page.getByRole('button', { name: 'Terminate…' }).isDisabled(), 'terminate enabled on a failed instance');
  await shot(page, 'failed');

  report.durations = await page.evaluate(async (values) => {
    const format = await import('/dashboard/format.js');
    return values.map(format.duration);
  }, plan.durations);
}

/** Counts the samples a chart has drawn: one more point per poll. */
const points = (page) => page.evaluate(() => {
  const d = document.querySelector('.chart path.line')?.getAttribute('d') ?? '';
  return (d.match(/[ML]/g) ?? []).length;
});

async function live(page, report) {
  await page.getByRole('link', { name: 'Live' }).click();
  await page.getByRole('heading', { name: 'Live', level: 1 }).waitFor();
  await page.locator('main table a.id', { hasText: plan.ids.approval }).waitFor();
  // Some work while the charts fill: a fan-out for the throughput, a short DoWork (1 to 3 s)
  // that comes and goes in the running count. One of each per poll.
  for (let seen = await points(page), started = 0; seen < plan.samples; started += 1) {
    for (const [name, input] of [['FanOutFanIn', 30], ['DoWork', 1 + (started % 3)]]) {
      const response = await page.request.post(`${plan.url}/orchestrators/${name}`, { data: input });
      check(response.status() === 202, `start of ${name} answered ${response.status()}`);
    }
    await page.waitForFunction((n) => {
      const d = document.querySelector('.chart path.line')?.getAttribute('d') ?? '';
      return (d.match(/[ML]/g) ?? []).length > n;
    }, seen);
    seen = await points(page);
  }
  report.tiles = await page.locator('.tile').allTextContents();
  report.legends = await page.locator('.legend').allTextContents();
  await shot(page, 'live');
}

async function terminate(page, report) {
  await openInstance(page, plan.ids.approval, 'Running');
  // By keyboard: Enter opens the dialog with the focus in its first field; Escape leaves it.
  await page.getByRole('button', { name: 'Terminate…' }).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog');
  await page.keyboard.type(plan.reason);
  check(await dialog.getByLabel('Reason (optional)').inputValue() === plan.reason, 'typing missed the field');
  await shot(page, 'terminate', dialog);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  // Cancel: nothing may happen without confirmation.
  await page.getByRole('button', { name: 'Terminate…' }).click();
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  check((await page.locator('#instance-status').textContent()) === 'Running', 'cancel changed the instance');
  await page.getByRole('button', { name: 'Terminate…' }).click();
  await dialog.getByLabel('Reason (optional)').fill(plan.reason);
  await dialog.getByRole('button', { name: 'Terminate' }).click();
  await status(page, 'Terminated');
  report.terminated = true;
}

async function actions(page, report) {
  await openInstance(page, plan.ids.counter, 'Running');
  await act(page, 'Raise event', async (dialog) => {
    await dialog.getByLabel('Event name').fill('operation');
    await dialog.getByLabel('Data (JSON', { exact: false }).fill('incr');
  });
  await page.locator('.payload', { hasText: 'Custom status' }).locator('pre', { hasText: '7' }).waitFor();
  await act(page, 'Suspend');
  await status(page, 'Suspended');
  await act(page, 'Resume');
  await status(page, 'Running');

  await openInstance(page, plan.ids.failed, 'Failed');
  await act(page, 'Rewind', (dialog) => dialog.getByLabel('Reason (optional)').fill('try again'));
  await page.locator('#toast', { hasText: 'Rewind requested.' }).waitFor();

  await openInstance(page, plan.ids.restart, 'Completed');
  await act(page, 'Restart');
  // The page moves to the new instance.
  await page.waitForFunction((old) => location.hash.startsWith('#/instances/')
    && decodeURIComponent(location.hash.slice('#/instances/'.length)) !== old, plan.ids.restart);
  report.restartedAs = await page.evaluate(() => decodeURIComponent(location.hash.slice('#/instances/'.length)));
  await shown(page, report.restartedAs, 'Completed');

  await openInstance(page, plan.ids.purge, 'Completed');
  await act(page, 'Purge');
  await page.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
  report.purged = true;
}

async function withKey(page, report) {
  await page.goto(`${plan.url}/`);
  const dialog = page.getByRole('dialog', { name: 'API key required' });
  await dialog.getByLabel('API key').fill('wrong');
  await dialog.getByRole('button', { name: 'Use key' }).click();
  await dialog.getByText('The server refused that key.').waitFor();
  await shot(page, 'api-key', dialog);
  await dialog.getByLabel('API key').fill(plan.key);
  await dialog.getByRole('button', { name: 'Use key' }).click();
  await page.locator('main table a.id', { hasText: plan.ids.all[0] }).waitFor();
  await page.getByRole('button', { name: 'Forget key' }).waitFor();

  // '?code=' opens the page with the key, which then leaves the address bar.
  const fresh = await page.context().browser().newContext();
  const second = await fresh.newPage();
  await second.goto(`${plan.url}/?code=${encodeURIComponent(plan.key)}#/live`);
  await second.locator('main table a.id', { hasText: plan.ids.all[0] }).waitFor();
  report.addressAfterCode = second.url();
  await fresh.close();
  // The 401s of the wrong key were expected; they are not the page's errors.
  report.keyed = true;
}

/** The text of an entity's state on its page, once it is `wanted`. */
const entityState = (page, wanted) => page.locator('#entity-state', { hasText: wanted }).waitFor();

async function entities(page, report) {
  // Without a name the page picks the first entity name there is.
  await page.goto(`${plan.url}/#/entities`);
  await page.getByRole('heading', { name: 'Entities', level: 1 }).waitFor();
  await page.waitForFunction(() => location.hash === '#/entities?name=counter');
  await waitForList(page, plan.entities.keys);
  report.entityRows = await page.locator('main table').evaluate((t) =>
    [...t.tBodies[0].rows].map((r) => [...r.cells].slice(0, 2).map((c) => c.textContent)));
  await shot(page, 'entities');

  // Signal a new entity from the list; it appears once its operation has run.
  await page.getByRole('button', { name: 'Signal an entity…' }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Key').fill(plan.entities.created);
  await dialog.getByLabel('Operation').fill('add');
  await dialog.getByLabel('Input (JSON', { exact: false }).fill('2');
  await dialog.getByRole('button', { name: 'Signal', exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
  await waitForList(page, [...plan.entities.keys, plan.entities.created]);

  // One entity: its state, then a signal confirmed in the dialog changes it.
  await page.locator('main table a.id', { hasText: plan.entities.open }).click();
  await page.getByRole('heading', { name: `Entity @counter@${plan.entities.open}` }).waitFor();
  await entityState(page, String(plan.entities.before));
  report.stateBefore = await page.locator('#entity-state').textContent();
  // Cancel: nothing may be sent without confirmation.
  await page.getByRole('button', { name: 'Signal operation…' }).click();
  await dialog.getByLabel('Operation').fill('reset');
  await dialog.getByRole('button', { name: 'Cancel' }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Signal operation…' }).click();
  await dialog.getByLabel('Operation').fill('add');
  await dialog.getByLabel('Input (JSON', { exact: false }).fill(String(plan.entities.add));
  await shot(page, 'entity-signal', dialog);
  await dialog.getByRole('button', { name: 'Signal', exact: true }).click();
  await dialog.waitFor({ state: 'detached' });
  await page.locator('#toast', { hasText: "Operation 'add' signalled" }).waitFor();
  const after = String(plan.entities.before + plan.entities.add);
  await entityState(page, after);
  report.stateAfter = await page.locator('#entity-state').textContent();
  await shot(page, 'entity');

  // Entities stay out of the orchestration list; the live counts show them apart.
  await page.getByRole('link', { name: 'Instances' }).click();
  await page.getByRole('heading', { name: 'Instances', level: 1 }).waitFor();
  await page.getByText('No instance matches these filters.').waitFor();
  await page.getByRole('link', { name: 'Live' }).click();
  await page.locator('.tile', { hasText: 'Entities' }).waitFor();
  report.entityTile = await page.locator('.tile', { hasText: 'Entities' }).textContent();
}

const scenarios = {
  main: [list, instance, live, terminate, actions],
  key: [withKey],
  entities: [entities],
};

const { browser, page, problems } = await open();
const report = {};
let failure = null;
try {
  for (const step of scenarios[plan.scenario]) {
    report.step = step.name;
    await step(page, report);
  }
} catch (error) {
  failure = error;
  await shot(page, `failure-${plan.scenario}`).catch(() => {});
} finally {
  await browser.close();
}
// Refused requests are logged by Chromium as console errors; only the key scenario makes them.
const unexpected = problems.filter((p) => plan.scenario !== 'key' || !p.includes('401'));
if (failure) {
  console.error(`step ${report.step} failed: ${failure.stack ?? failure}`);
  console.error(unexpected.join('\n'));
  process.exit(1);
}
if (unexpected.length) {
  console.error(`the page reported errors:\n${unexpected.join('\n')}`);
  process.exit(1);
}
console.log(JSON.stringify(report));
