// Running instances and counts over time, polled every 2 seconds. Samples are kept while the
// tab lives, so leaving the page and coming back keeps the charts' past.

import { CONTINUATION, HUB, call, describe } from './api.js';
import { badge, h, instanceLink, replaceIfChanged, table } from './dom.js';
import { cell, short, since, time } from './format.js';
import { lineChart } from './chart.js';
import { STATUSES } from './list.js';

const POLL_MS = 2000;
const KEEP = 90;
const LIVE = ['Pending', 'Running', 'Suspended', 'ContinuedAsNew'];
const SHOWN = 50;

/** { at: ms, stats } oldest first. */
const samples = [];

function record(stats) {
  samples.push({ at: Date.now(), stats });
  if (samples.length > KEEP) samples.shift();
}

const finished = (st) => ['Completed', 'Failed', 'Terminated']
  .reduce((sum, s) => sum + (st.instancesByStatus[s] ?? 0), 0);

/** Per second between consecutive samples; null where a counter went back (restart, purge). */
function rate(pick) {
  return samples.map((sample, i) => {
    if (i === 0) return null;
    const before = samples[i - 1];
    const change = pick(sample.stats) - pick(before.stats);
    const seconds = (sample.at - before.at) / 1000;
    return change >= 0 && seconds > 0 ? change / seconds : null;
  });
}

function charts() {
  const seconds = samples.length > 1 ? (samples.at(-1).at - samples[0].at) / 1000 : 0;
  const count = (status) => samples.map((x) => x.stats.instancesByStatus[status] ?? 0);
  return [
    lineChart({
      title: 'Instances by status',
      seconds,
      series: ['Running', 'Pending', 'Suspended', 'Failed'].map((st) => ({ label: st, values: count(st) })),
    }),
    lineChart({
      title: 'Throughput',
      seconds,
      unit: '/s',
      series: [
        { label: 'Activities', values: rate((st) => st.process.activitiesCompleted + st.process.activitiesFailed) },
        { label: 'Turns', values: rate((st) => st.process.turns) },
        { label: 'Instances finished', values: rate(finished) },
      ],
    }),
  ];
}

function tiles(stats) {
  const tile = (label, value, status) => h('li', { class: 'tile' },
    h('span', { class: 'tile-label' }, status ? badge(label) : label), h('strong', {}, String(value)));
  return h('ul', { class: 'tiles', 'aria-label': 'Counts now' },
    STATUSES.map((st) => tile(st, stats.instancesByStatus[st] ?? 0, true)),
    tile('Orchestration backlog', stats.orchestrationBacklog),
    tile('Activity backlog', stats.activityBacklog),
    tile('Timers waiting', stats.pendingTimers),
    // Entities are counted apart: they are not running orchestrations.
    tile('Entities', stats.entities ?? 0));
}

function runningTable(instances, more) {
  if (!instances.length) return h('p', { class: 'empty' }, 'No instance is running.');
  const now = Date.now();
  const rows = instances.map((i) => [
    instanceLink(i.instanceId),
    i.name,
    badge(i.runtimeStatus),
    short(cell(i.customStatus), 80),
    time(i.createdTime),
    h('span', { 'data-since': i.createdTime }, since(Date.parse(i.createdTime), now)),
  ]);
  return [
    table('Running instances, oldest first', ['Instance ID', 'Name', 'Status', 'Custom status',
      'Created (UTC)', 'Running for'], rows),
    more ? h('p', {}, `The ${SHOWN} oldest are shown; `,
      h('a', { href: `#/?status=${LIVE.join(',')}` }, 'see every running instance'), '.') : null,
  ];
}

export function livePage(main) {
  let stopped = false;
  let paused = false;
  let timer = null;

  const pause = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Pause updates');
  const updated = h('span', { class: 'updated' }, 'Loading…');
  const counts = h('div', {});
  const chartBox = h('div', { class: 'charts' });
  const running = h('div', {});
  main.append(
    h('h1', { tabindex: '-1' }, 'Live'),
    h('div', { class: 'toolbar' }, pause, updated),
    h('section', { 'aria-labelledby': 'counts-title' },
      h('h2', { id: 'counts-title' }, 'Now'), counts, chartBox),
    h('section', { 'aria-labelledby': 'running-title' },
      h('h2', { id: 'running-title' }, 'Running instances'), running));

  pause.addEventListener('click', () => {
    paused = !paused;
    pause.setAttribute('aria-pressed', String(paused));
    pause.textContent = paused ? 'Resume updates' : 'Pause updates';
    if (!paused) tick();
  });

  // Pausing and resuming during a poll must not start a second chain of polls.
  let latest = 0;

  async function tick() {
    clearTimeout(timer);
    if (stopped || paused) return;
    const mine = ++latest;
    if (!document.hidden) {
      try {
        const [stats, list] = await Promise.all([
          call('GET', `${HUB}/stats`),
          call('GET', `${HUB}/instances`, { query: { runtimeStatus: LIVE.join(','), top: String(SHOWN) } }),
        ]);
        if (stopped || mine !== latest) return;
        record(stats.data);
        replaceIfChanged(counts, JSON.stringify(stats.data), tiles(stats.data));
        chartBox.replaceChildren(...charts());
        const more = list.headers.has(CONTINUATION);
        // Rebuilt only when the instances changed, so a focused link stays focused.
        if (!replaceIfChanged(running, JSON.stringify([list.data, more]), runningTable(list.data, more))) {
          for (const el of running.querySelectorAll('[data-since]')) {
            el.textContent = since(Date.parse(el.dataset.since));
          }
        }
        updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      } catch (error) {
        if (stopped || mine !== latest) return;
        updated.textContent = describe(error);
      }
    }
    if (!stopped && !paused && mine === latest) timer = setTimeout(tick, POLL_MS);
  }

  tick();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
