// The instances: filters kept in the address ('#/?status=Running&name=...'), so a filtered view
// can be bookmarked; pages followed with the API's continuation token.

import { HUB, Pages, call, describe } from './api.js';
import { badge, h, instanceLink, table } from './dom.js';
import { fromLocalInput, time, toLocalInput } from './format.js';

export const STATUSES = [
  'Pending', 'Running', 'Suspended', 'ContinuedAsNew', 'Completed', 'Failed', 'Terminated',
];
const PAGE_SIZES = ['10', '25', '50', '100'];

function field(label, id, input) {
  input.id = id;
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

function filterForm(params) {
  const chosen = new Set((params.get('status') ?? '').split(',').filter(Boolean));
  const statusBoxes = STATUSES.map((status) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'status', value: status, checked: chosen.has(status) }),
    ` ${status}`));
  const top = params.get('top') ?? '25';
  return h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter instances' },
    h('fieldset', { class: 'statuses' }, h('legend', {}, 'Status'), statusBoxes),
    h('div', { class: 'fields' },
      field('Name', 'f-name', h('input', { name: 'name', value: params.get('name') ?? '',
        placeholder: 'exact name', autocomplete: 'off' })),
      field('Instance ID starts with', 'f-prefix', h('input', { name: 'prefix',
        value: params.get('prefix') ?? '', autocomplete: 'off' })),
      field('Created from (local time)', 'f-from', h('input', { name: 'from',
        type: 'datetime-local', step: '1', value: toLocalInput(params.get('from')) })),
      field('Created before (local time)', 'f-to', h('input', { name: 'to',
        type: 'datetime-local', step: '1', value: toLocalInput(params.get('to')) })),
      field('Per page', 'f-top', h('select', { name: 'top' },
        PAGE_SIZES.map((n) => h('option', { value: n, selected: n === top }, n))))),
    h('div', { class: 'buttons' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply filters'),
      h('button', { type: 'reset' }, 'Clear')));
}

/** The address of the list for the form's values. */
function hashOf(form) {
  const data = new FormData(form);
  const params = new URLSearchParams();
  const statuses = data.getAll('status');
  if (statuses.length) params.set('status', statuses.join(','));
  for (const name of ['name', 'prefix']) {
    const value = String(data.get(name) ?? '').trim();
    if (value) params.set(name, value);
  }
  for (const name of ['from', 'to']) {
    const value = fromLocalInput(String(data.get(name) ?? ''));
    if (value) params.set(name, value);
  }
  if (data.get('top') !== '25') params.set('top', data.get('top'));
  const query = params.toString();
  return query ? `#/?${query}` : '#/';
}

export function listPage(main, params) {
  let stopped = false;
  const pages = new Pages();

  const form = filterForm(params);
  const summary = h('p', { class: 'summary', role: 'status' }, 'Loading…');
  const results = h('div', { class: 'results' });
  const previous = h('button', { type: 'button', disabled: true }, '← Previous page');
  const next = h('button', { type: 'button', disabled: true }, 'Next page →');
  const refresh = h('button', { type: 'button' }, 'Refresh');
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' }, previous, next, refresh);

  main.append(
    h('h1', { tabindex: '-1' }, 'Instances'),
    form,
    h('section', { 'aria-labelledby': 'results-title' },
      h('h2', { id: 'results-title', class: 'visually-hidden' }, 'Results'),
      summary, results, pager),
  );

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const target = hashOf(form);
    if (location.hash === target || (target === '#/' && !location.hash)) load(0);
    else location.hash = target;
  });
  // Unfiltered, Clear only empties the fields; filtered, it goes to the unfiltered list.
  form.dataset.filters = params.toString();
  form.addEventListener('reset', (event) => {
    if (!params.toString()) return;
    event.preventDefault();
    location.hash = '#/';
  });
  previous.addEventListener('click', () => load(pages.index - 1));
  next.addEventListener('click', () => load(pages.index + 1));
  refresh.addEventListener('click', () => load(pages.index));

  // Only the answer to the latest request is shown, whatever order answers arrive in.
  let latest = 0;

  async function load(page) {
    const mine = ++latest;
    const query = {
      runtimeStatus: params.get('status'),
      name: params.get('name'),
      instanceIdPrefix: params.get('prefix'),
      createdTimeFrom: params.get('from'),
      createdTimeTo: params.get('to'),
      top: params.get('top') ?? '25',
    };
    summary.textContent = 'Loading…';
    try {
      const { data, headers } = await call('GET', `${HUB}/instances`,
        { query, headers: pages.headers(page) });
      if (stopped || mine !== latest) return;
      show(data, pages.answered(page, headers));
    } catch (error) {
      if (!stopped && mine === latest) summary.textContent = describe(error);
    }
  }

  function show(instances, more) {
    const rows = instances.map((i) => [
      instanceLink(i.instanceId),
      i.name,
      badge(i.runtimeStatus),
      time(i.createdTime),
      time(i.lastUpdatedTime),
    ]);
    results.replaceChildren(rows.length
      ? table('Instances, oldest first', ['Instance ID', 'Name', 'Status', 'Created (UTC)',
        'Last updated (UTC)'], rows)
      : h('p', { class: 'empty' }, 'No instance matches these filters.'));
    const count = `${instances.length} instance${instances.length === 1 ? '' : 's'}`;
    summary.textContent = `Page ${pages.index + 1}: ${count}, oldest first${more ? '; more on the next page' : ''}.`;
    previous.disabled = pages.index === 0;
    next.disabled = !more;
  }

  load(0);
  return { stop() { stopped = true; } };
}
