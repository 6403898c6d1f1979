// The page's entry: hash routes to pages. '#/' instances, '#/instances/ID' one instance,
// '#/live' running instances and charts. A page is a function that fills <main> and returns
// a stop() that ends its polling.

import { initAuth } from './auth.js';
import { h } from './dom.js';
import { instancePage } from './instance.js';
import { listPage } from './list.js';
import { livePage } from './live.js';

let current = null;

function parse() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const at = hash.indexOf('?');
  const path = at < 0 ? hash : hash.slice(0, at);
  const params = new URLSearchParams(at < 0 ? '' : hash.slice(at + 1));
  return { path, params };
}

function route(first) {
  current?.stop();
  const main = document.getElementById('main');
  main.replaceChildren();
  const { path, params } = parse();
  let section = null;
  if (path === '/' || path === '') {
    section = 'instances';
    current = listPage(main, params);
  } else if (path.startsWith('/instances/')) {
    section = 'instances';
    current = instancePage(main, decodeURIComponent(path.slice('/instances/'.length)));
  } else if (path === '/live') {
    section = 'live';
    current = livePage(main);
  } else {
    main.append(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'All instances')));
    current = null;
  }
  for (const link of document.querySelectorAll('[data-nav]')) {
    if (link.dataset.nav === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // After a navigation, start reading at the new page's heading, as a page load would.
  if (!first) main.querySelector('h1')?.focus();
}

initAuth();
document.getElementById('skip').addEventListener('click', (event) => {
  event.preventDefault();
  document.getElementById('main').focus();
});
window.addEventListener('hashchange', () => route(false));
route(true);
