// One instance: what it is, its payloads, its failure, its sub-orchestrations, its timeline and
// the actions on it. While it runs the page refreshes itself.

import { ACTIONS, confirmAction } from './actions.js';
import { ApiError, call, describe, instancePath } from './api.js';
import { badge, h, instanceHref, instanceLink, replaceIfChanged, table, toast } from './dom.js';
import { pretty, time } from './format.js';
import { childrenOf, timelineTable } from './timeline.js';

const POLL_MS = 2000;
const FINISHED = ['Completed', 'Failed', 'Terminated'];

function parentOf(historyEvents) {
  const started = (historyEvents ?? []).find((e) => e.eventType === 'ExecutionStarted');
  return started?.parentInstance?.orchestrationInstance?.instanceId ?? null;
}

function failureView(failure) {
  const parts = [];
  for (let f = failure, depth = 0; f; f = f.innerFailure, depth += 1) {
    parts.push(h('div', { class: 'failure' },
      h('p', {}, depth ? 'Caused by ' : '', h('strong', {}, f.errorType), `: ${f.errorMessage}`),
      f.isNonRetriable ? h('p', {}, 'Not retriable.') : null,
      f.stackTrace ? h('pre', {}, f.stackTrace) : null));
  }
  return parts;
}

function payload(title, value) {
  return h('section', { class: 'payload' }, h('h3', {}, title), h('pre', {}, pretty(value)));
}

export function instancePage(main, id) {
  let stopped = false;
  let timer = null;
  let status = null;

  const summary = h('dl', { class: 'facts' });
  const message = h('p', { class: 'summary', role: 'status' }, 'Loading…');
  const buttons = ACTIONS.map((action) => {
    const button = h('button', { type: 'button', class: action.danger ? 'danger-outline' : null,
      'data-action': action.key, disabled: true }, `${action.label}…`);
    button.addEventListener('click', () => confirmAction(action, id, acted(action)));
    return button;
  });
  const payloads = h('div', { class: 'payloads' });
  const failure = h('section', { 'aria-labelledby': 'failure-title', hidden: true });
  const children = h('section', { 'aria-labelledby': 'children-title', hidden: true });
  const timeline = h('div', { class: 'timeline' });

  main.append(
    h('p', { class: 'crumbs' }, h('a', { href: '#/' }, '← Instances')),
    h('h1', { tabindex: '-1' }, 'Instance ', h('code', { class: 'id' }, id)),
    message,
    summary,
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Actions' }, buttons),
    payloads,
    failure,
    children,
    h('section', { 'aria-labelledby': 'timeline-title' },
      h('h2', { id: 'timeline-title' }, 'Timeline'), timeline),
  );

  function acted(action) {
    return (text, result) => {
      toast(text);
      if (action.key === 'purge') location.hash = '#/';
      else if (action.key === 'restart' && result?.data?.id && result.data.id !== id) {
        location.hash = instanceHref(result.data.id);
      } else load();
    };
  }

  // An action's refresh can overlap a poll: only the latest load shows and schedules the next.
  let latest = 0;

  async function load() {
    clearTimeout(timer);
    const mine = ++latest;
    try {
      const [state, steps] = await Promise.all([
        call('GET', instancePath(id), { query: { showHistory: 'true' } }),
        call('GET', instancePath(id, '/timeline')),
      ]);
      if (stopped || mine !== latest) return;
      show(state.data, steps.data);
    } catch (error) {
      if (stopped || mine !== latest) return;
      if (error instanceof ApiError && error.status === 404) {
        message.textContent = 'There is no such instance (it may have been purged).';
        for (const b of buttons) b.disabled = true;
        return;
      }
      message.textContent = describe(error);
    }
    if (!stopped && !FINISHED.includes(status)) timer = setTimeout(load, POLL_MS);
  }

  function show(instance, rows) {
    status = instance.runtimeStatus;
    const live = !FINISHED.includes(status);
    message.textContent = live ? 'Running: this page refreshes itself every 2 seconds.' : '';
    const parent = parentOf(instance.historyEvents);
    replaceIfChanged(summary, JSON.stringify([status, instance.lastUpdatedTime, parent]),
      h('dt', {}, 'Name'), h('dd', {}, instance.name),
      h('dt', {}, 'Status'), h('dd', { id: 'instance-status' }, badge(status)),
      h('dt', {}, 'Created (UTC)'), h('dd', {}, time(instance.createdTime)),
      h('dt', {}, 'Last updated (UTC)'), h('dd', {}, time(instance.lastUpdatedTime)),
      parent ? [h('dt', {}, 'Parent'), h('dd', {}, h('a', { href: instanceHref(parent) }, parent))] : []);
    ACTIONS.forEach((action, i) => { buttons[i].disabled = !action.when.includes(status); });

    replaceIfChanged(payloads, JSON.stringify([instance.input, instance.output, instance.customStatus]),
      payload('Input', instance.input),
      payload('Output', instance.output),
      payload('Custom status', instance.customStatus));

    failure.hidden = !instance.failureDetails;
    replaceIfChanged(failure, JSON.stringify(instance.failureDetails ?? null),
      h('h2', { id: 'failure-title' }, 'Failure'), failureView(instance.failureDetails));

    const kids = [...childrenOf(instance.historyEvents).values()];
    children.hidden = kids.length === 0;
    replaceIfChanged(children, JSON.stringify(kids),
      h('h2', { id: 'children-title' }, 'Sub-orchestrations'),
      table('Sub-orchestrations', ['Instance ID', 'Name'],
        kids.map((k) => [instanceLink(k.id), k.name])));

    replaceIfChanged(timeline, JSON.stringify(rows),
      rows.length ? timelineTable(rows, childrenOf(instance.historyEvents))
        : h('p', { class: 'empty' }, 'No history yet.'));
  }

  load();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
