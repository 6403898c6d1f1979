// Durable entities: '#/entities?name=counter' lists the entities of a name with their state,
// '#/entities/NAME/KEY' shows one and signals operations to it (after a confirmation). Both
// refresh themselves every 2 seconds, since signals change states at any time.
// Entities are not orchestrations: the instance list and the status counts leave them out.

import { confirmAction, jsonInput } from './actions.js';
import { ApiError, HUB, Pages, call, describe, entityPath } from './api.js';
import { h, instanceLink, replaceIfChanged, table, toast } from './dom.js';
import { pretty, short, time } from './format.js';

const POLL_MS = 2000;

/** Sets a live region's text only when it changes, so polling does not repeat it. */
function say(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Where an entity's page is. */
export function entityHref(name, key) {
  return `#/entities/${encodeURIComponent(name)}/${encodeURIComponent(key)}`;
}

/** The signal dialog's action, for one entity or (without `key`) a key typed in. */
function signalAction(name, key) {
  const keyField = key === undefined ? [{ name: 'key', label: 'Key', required: true }] : [];
  return {
    key: 'signal', label: 'Signal', subject: 'Entity',
    question: 'Signal an operation to this entity?',
    text: 'Queues the operation; the entity runs it after the operations queued before it, one ' +
      'at a time. An entity that does not exist yet is created.',
    fields: [...keyField,
      { name: 'op', label: 'Operation', required: true },
      { name: 'input', label: 'Input (JSON; a bare word is sent as a string)', multiline: true }],
    run: (_, f) => call('POST', entityPath(name, key ?? f.key),
      { query: { op: f.op }, body: jsonInput(f.input) }),
    done: (f) => `Operation '${f.op}' signalled to @${name.toLowerCase()}@${key ?? f.key}.`,
  };
}

/** The entity names with state among the first 1000 entities, for the name picker. */
async function knownNames() {
  const { data } = await call('GET', `${HUB}/entities`, { query: { top: '1000' } });
  return [...new Set(data.map((e) => e.entityId.name))].sort();
}

export function entitiesPage(main, params) {
  let stopped = false;
  let timer = null;
  const name = (params.get('name') ?? '').trim();
  const pages = new Pages();

  const choices = h('datalist', { id: 'entity-names' });
  const nameInput = h('input', { id: 'e-name', name: 'name', value: name, list: 'entity-names',
    autocomplete: 'off', required: true, placeholder: 'e.g. counter' });
  const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Choose entities' },
    h('div', { class: 'fields' },
      h('div', { class: 'field' }, h('label', { for: 'e-name' }, 'Entity name'), nameInput, choices)),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Show')));
  const summary = h('p', { class: 'summary', role: 'status' });
  const results = h('div', { class: 'results' });
  const previous = h('button', { type: 'button', disabled: true }, '← Previous page');
  const next = h('button', { type: 'button', disabled: true }, 'Next page →');
  const signal = h('button', { type: 'button', disabled: !name }, 'Signal an entity…');
  const refresh = h('button', { type: 'button' }, 'Refresh');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' }, previous, next, signal, refresh);

  main.append(
    h('h1', { tabindex: '-1' }, 'Entities'),
    form,
    h('section', { 'aria-labelledby': 'results-title' },
      h('h2', { id: 'results-title', class: 'visually-hidden' }, 'Entities'),
      summary, results, pager));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const chosen = nameInput.value.trim();
    const target = `#/entities?name=${encodeURIComponent(chosen)}`;
    if (location.hash === target) load(0);
    else location.hash = target;
  });
  previous.addEventListener('click', () => load(pages.index - 1));
  next.addEventListener('click', () => load(pages.index + 1));
  refresh.addEventListener('click', () => load(pages.index));
  signal.addEventListener('click', () => confirmAction(signalAction(name), `@${name.toLowerCase()}@…`,
    (text) => { toast(text); load(pages.index); }));

  knownNames().then((names) => {
    if (stopped) return;
    choices.replaceChildren(...names.map((n) => h('option', { value: n })));
    // Without a name, show the first one there is.
    if (!name && names.length) location.hash = `#/entities?name=${encodeURIComponent(names[0])}`;
    else if (!name) summary.textContent = 'No entity has state yet. Type an entity name to look for it.';
  }).catch((error) => { if (!stopped) summary.textContent = describe(error); });

  let latest = 0;

  async function load(page) {
    if (!name) return;
    clearTimeout(timer);
    const mine = ++latest;
    // A poll of the same page keeps what is shown (a screen reader would repeat it).
    if (page !== pages.index || !results.dataset.key) summary.textContent = 'Loading…';
    try {
      const { data, headers } = await call('GET', entityPath(name),
        { query: { fetchState: 'true', top: '25' }, headers: pages.headers(page) });
      if (stopped || mine !== latest) return;
      show(data, pages.answered(page, headers));
    } catch (error) {
      if (stopped || mine !== latest) return;
      say(summary, describe(error));
    }
    if (!stopped) timer = setTimeout(() => load(pages.index), POLL_MS);
  }

  function show(entities, more) {
    const rows = entities.map((e) => [
      h('a', { href: entityHref(e.entityId.name, e.entityId.key), class: 'id' }, e.entityId.key),
      h('code', {}, short(JSON.stringify(e.state), 80)),
      time(e.lastOperationTime),
      e.lockedBy ? instanceLink(e.lockedBy) : '-',
    ]);
    // Rebuilt only when something changed, so a focused link stays focused.
    replaceIfChanged(results, JSON.stringify(entities), rows.length
      ? table(`Entities named ${name}, oldest first`,
        ['Key', 'State', 'Last operation (UTC)', 'Locked by'], rows)
      : h('p', { class: 'empty' }, `No entity named '${name}' has state.`));
    const count = `${entities.length} entit${entities.length === 1 ? 'y' : 'ies'}`;
    const text = `Page ${pages.index + 1}: ${count} named '${name}', oldest first` +
      `${more ? '; more on the next page' : ''}.`;
    say(summary, text);
    previous.disabled = pages.index === 0;
    next.disabled = !more;
  }

  load(0);
  return { stop() { stopped = true; clearTimeout(timer); } };
}

export function entityPage(main, name, key) {
  let stopped = false;
  let timer = null;
  const id = `@${name.toLowerCase()}@${key}`;

  const message = h('p', { class: 'summary', role: 'status' }, 'Loading…');
  const facts = h('dl', { class: 'facts' });
  const state = h('pre', { id: 'entity-state' }, '-');
  const signal = h('button', { type: 'button', class: 'primary', 'data-action': 'signal' },
    'Signal operation…');
  signal.addEventListener('click', () => confirmAction(signalAction(name, key), id, (text) => {
    toast(text);
    load();
  }));

  main.append(
    h('p', { class: 'crumbs' },
      h('a', { href: `#/entities?name=${encodeURIComponent(name.toLowerCase())}` }, '← Entities')),
    h('h1', { tabindex: '-1' }, 'Entity ', h('code', { class: 'id' }, id)),
    message,
    facts,
    h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Actions' }, signal),
    h('section', { class: 'payload', 'aria-labelledby': 'state-title' },
      h('h2', { id: 'state-title' }, 'State'), state));

  let latest = 0;

  async function load() {
    clearTimeout(timer);
    const mine = ++latest;
    try {
      const { data } = await call('GET', entityPath(name, key), { query: { showMetadata: 'true' } });
      if (stopped || mine !== latest) return;
      show(data);
    } catch (error) {
      if (stopped || mine !== latest) return;
      if (error instanceof ApiError && error.status === 404) {
        say(message, 'This entity has no state: no operation has set one, or it was ' +
          'deleted. Signalling an operation creates it.');
        replaceIfChanged(facts, 'none');
        replaceIfChanged(state, 'none', '-');
      } else {
        say(message, describe(error));
      }
    }
    if (!stopped) timer = setTimeout(load, POLL_MS);
  }

  function show(entity) {
    say(message, 'This page refreshes itself every 2 seconds.');
    replaceIfChanged(facts, JSON.stringify([entity.lastOperationTime, entity.lockedBy,
      entity.backlogQueueSize]),
    h('dt', {}, 'Name'), h('dd', {}, entity.entityId.name),
    h('dt', {}, 'Key'), h('dd', {}, h('code', {}, entity.entityId.key)),
    h('dt', {}, 'Last operation (UTC)'), h('dd', { id: 'entity-time' }, time(entity.lastOperationTime)),
    h('dt', {}, 'Locked by'), h('dd', {}, entity.lockedBy ? instanceLink(entity.lockedBy) : 'nobody'),
    h('dt', {}, 'Waiting operations'), h('dd', {}, String(entity.backlogQueueSize)));
    replaceIfChanged(state, JSON.stringify(entity.state), pretty(entity.state));
  }

  load();
  return { stop() { stopped = true; clearTimeout(timer); } };
}
