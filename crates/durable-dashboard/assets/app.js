// The page's entry: hash routes to pages. '#/' instances, '#/instances/ID' one instance,
// '#/live' running instances and charts, '#/entities?name=N' entities, '#/entities/N/KEY' one. A page is a function that fills <main> and returns
// a stop() that ends its polling.

import { initAuth } from './auth.js';
import { h } from './dom.js';
import { entitiesPage, entityPage } from './entities.js';
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
    const id = decodeURIComponent(path.slice('/instances/'.length));
    // An entity's id ('@name@key') opens the entity's page, not an orchestration's.
    const entity = /^@([^@]+)@(.*)$/s.exec(id);
    section = entity ? 'entities' : 'instances';
    current = entity ? entityPage(main, entity[1], entity[2]) : instancePage(main, id);
  } else if (path === '/entities') {
    section = 'entities';
    current = entitiesPage(main, params);
  } else if (path.startsWith('/entities/') && path.indexOf('/', '/entities/'.length) > 0) {
    const [name, key] = path.slice('/entities/'.length).split(/\/(.*)/s);
    section = 'entities';
    current = entityPage(main, decodeURIComponent(name), decodeURIComponent(key));
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
