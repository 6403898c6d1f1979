// Building elements without innerHTML: names and payloads come from users and stay text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** h('a', {href: '#/'}, 'text', child, ...): an HTML element. */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element. */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replaces the content of `el` only when `key` changed, so polling keeps focus and selection. */
export function replaceIfChanged(el, key, ...children) {
  if (el.dataset.key === key) return false;
  el.dataset.key = key;
  el.replaceChildren();
  append(el, children);
  return true;
}

let toastTimer = null;

/** A short message in the polite live region at the bottom of the page. */
export function toast(text, kind = 'ok') {
  const el = document.getElementById('toast');
  el.textContent = text;
  el.dataset.kind = kind;
  el.classList.add('shown');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('shown'), 6000);
}

/** A status as a badge: the word itself, colour only as a second cue. */
export function badge(status) {
  return h('span', { class: `badge s-${String(status).toLowerCase()}` }, status ?? '-');
}

/** Where an instance's page is. */
export function instanceHref(id) {
  return `#/instances/${encodeURIComponent(id)}`;
}

/** A link to an instance's page, its id as the text. */
export function instanceLink(id) {
  return h('a', { href: instanceHref(id), class: 'id' }, id);
}

/** A table whose header row is `columns`; `rows` are arrays of cells (text or nodes). */
export function table(caption, columns, rows, rowClass) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, rows.map((cells, i) =>
        h('tr', { class: rowClass ? rowClass(i) : null }, cells.map((c) => h('td', {}, c)))))));
}
