// The API key, when the server has one. It lives in sessionStorage: this tab only, gone when the
// tab closes, never written into a URL the page requests (logs and history would keep it).

import { h } from './dom.js';

const STORAGE = 'durable.apiKey';

export function getKey() {
  try {
    return sessionStorage.getItem(STORAGE);
  } catch {
    return null;
  }
}

function setKey(key) {
  sessionStorage.setItem(STORAGE, key);
  showKeyState();
}

export function forgetKey() {
  sessionStorage.removeItem(STORAGE);
  showKeyState();
}

function showKeyState() {
  document.getElementById('key-state').hidden = !getKey();
}

/** `/?code=KEY` opens the page with a key: keep it for the tab and take it out of the address. */
export function initAuth() {
  const url = new URL(location.href);
  const code = url.searchParams.get('code');
  if (code) {
    setKey(code);
    url.searchParams.delete('code');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
  }
  document.getElementById('forget-key').addEventListener('click', () => {
    forgetKey();
    location.reload();
  });
  showKeyState();
}

let asking = null;

/**
 * Asks for the key in a modal dialog; resolves once one was entered. Concurrent requests that
 * were refused share one dialog.
 */
export function askForKey() {
  if (asking) return asking;
  const refused = Boolean(getKey());
  asking = new Promise((resolve) => {
    const input = h('input', {
      id: 'api-key', type: 'password', required: true, autocomplete: 'off', spellcheck: 'false',
    });
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'key-title' }, 'API key required'),
      h('p', {}, 'This server needs its API key. The key is kept in this browser tab only and ' +
        'sent with each request as the x-functions-key header.'),
      refused ? h('p', { class: 'error', role: 'alert' }, 'The server refused that key.') : null,
      h('div', { class: 'field' }, h('label', { for: 'api-key' }, 'API key'), input),
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Use key')));
    const dialog = h('dialog', { 'aria-labelledby': 'key-title', class: 'key-dialog' }, form);
    // Nothing on the page works without the key, so Escape does not dismiss the dialog.
    dialog.addEventListener('cancel', (event) => event.preventDefault());
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      setKey(input.value.trim());
      dialog.close();
      dialog.remove();
      asking = null;
      resolve();
    });
    document.body.append(dialog);
    dialog.showModal();
    input.focus();
  });
  return asking;
}
