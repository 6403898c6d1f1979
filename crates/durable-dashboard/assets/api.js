// Calls to the HTTP API (docs/http-api.md), with the API key and the JSON error body.

import { askForKey, getKey } from './auth.js';

export const HUB = '/runtime/webhooks/durabletask';
export const CONTINUATION = 'x-ms-continuation-token';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The continuation tokens of a paged listing: `tokens[i]` opens page `i`. */
export class Pages {
  constructor() {
    this.tokens = [null];
    this.index = 0;
  }

  /** The request headers of page `page`. */
  headers(page) {
    return this.tokens[page] ? { [CONTINUATION]: this.tokens[page] } : {};
  }

  /** Takes in the answer to page `page`; whether a next page exists. */
  answered(page, headers) {
    this.index = page;
    this.tokens.length = page + 1;
    const token = headers.get(CONTINUATION);
    if (token) this.tokens.push(token);
    return Boolean(token);
  }
}

/** The path of one instance, with `rest` after it. */
export function instancePath(id, rest = '') {
  return `${HUB}/instances/${encodeURIComponent(id)}${rest}`;
}

/** The path of an entity's routes (`key` undefined: the entities of `name`). */
export function entityPath(name, key) {
  const base = `${HUB}/entities/${encodeURIComponent(name)}`;
  return key === undefined ? base : `${base}/${encodeURIComponent(key)}`;
}

/**
 * One request. `query` values that are empty are left out; `body` is JSON text. A 401 asks for
 * the key and sends the request again. Answers { status, headers, data }.
 */
export async function call(method, path, { query = {}, body, headers = {} } = {}) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  for (;;) {
    const sent = new Headers(headers);
    const key = getKey();
    if (key) sent.set('x-functions-key', key);
    if (body !== undefined) sent.set('content-type', 'application/json');
    const response = await fetch(url, { method, headers: sent, body, cache: 'no-store' });
    if (response.status === 401) {
      await askForKey();
      continue;
    }
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    if (!response.ok) {
      const code = data?.code ?? `http_${response.status}`;
      const message = data?.message ?? (response.statusText || 'request failed');
      throw new ApiError(response.status, code, message);
    }
    return { status: response.status, headers: response.headers, data };
  }
}

/** An error as one line for the page. */
export function describe(error) {
  if (error instanceof ApiError) return `${error.message} (${error.code}, HTTP ${error.status})`;
  // fetch rejects with a TypeError when no answer came at all.
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
    return `Cannot reach the server: ${error.message}`;
  }
  return `Error: ${error.message}`;
}
