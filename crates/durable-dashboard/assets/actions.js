// The actions on one instance. Each opens a dialog that says what will happen and asks for
// confirmation; the request is sent only from there.

import { ApiError, call, describe, instancePath } from './api.js';
import { h } from './dom.js';

const LIVE = ['Pending', 'Running', 'Suspended', 'ContinuedAsNew'];
const FINISHED = ['Completed', 'Failed', 'Terminated'];

const reason = { name: 'reason', label: 'Reason (optional)' };

/** Event data and inputs as the CLI reads them: JSON, or a bare word taken as a JSON string. */
export function jsonInput(text) {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  try {
    JSON.parse(trimmed);
    return trimmed;
  } catch (error) {
    if (/^[{["]/.test(trimmed)) throw new Error(`The data is not valid JSON: ${error.message}`);
    return JSON.stringify(trimmed);
  }
}

const post = (id, action, query) => call('POST', instancePath(id, `/${action}`), { query });

export const ACTIONS = [
  {
    key: 'raise', label: 'Raise event', when: LIVE, question: 'Raise an event for this instance?',
    text: 'Delivers an external event to the instance. An orchestration waiting for this name ' +
      'receives the data; otherwise the event is kept until it waits.',
    fields: [{ name: 'event', label: 'Event name', required: true },
      { name: 'data', label: 'Data (JSON; a bare word is sent as a string)', multiline: true }],
    run: (id, f) => call('POST', instancePath(id, `/raiseEvent/${encodeURIComponent(f.event)}`),
      { body: jsonInput(f.data) }),
    done: (f) => `Event '${f.event}' raised.`,
  },
  {
    key: 'terminate', label: 'Terminate', when: LIVE, danger: true,
    text: 'Ends the instance for good with status Terminated; the reason becomes its output. ' +
      'Its sub-orchestrations keep running.',
    fields: [reason],
    run: (id, f) => post(id, 'terminate', { reason: f.reason }),
    done: () => 'Termination requested.',
  },
  {
    key: 'suspend', label: 'Suspend', when: ['Pending', 'Running'],
    text: 'Pauses the instance: it keeps receiving events and results but takes no step until resumed.',
    fields: [reason],
    run: (id, f) => post(id, 'suspend', { reason: f.reason }),
    done: () => 'Suspension requested.',
  },
  {
    key: 'resume', label: 'Resume', when: ['Suspended'],
    text: 'Lets a suspended instance run again.',
    fields: [reason],
    run: (id, f) => post(id, 'resume', { reason: f.reason }),
    done: () => 'Resumption requested.',
  },
  {
    key: 'rewind', label: 'Rewind', when: ['Failed'],
    text: 'Runs a failed instance again from where it failed: the failed activities and ' +
      'sub-orchestrations are retried, completed steps are kept.',
    fields: [reason],
    run: (id, f) => post(id, 'rewind', { reason: f.reason }),
    done: () => 'Rewind requested.',
  },
  {
    key: 'restart', label: 'Restart', when: FINISHED,
    text: 'Starts the orchestration again with the same input.',
    fields: [{ name: 'newId', label: 'Under a new instance ID (otherwise this one is replaced)',
      checkbox: true, checked: true }],
    run: (id, f) => post(id, 'restart', { restartWithNewInstanceId: String(f.newId) }),
    done: () => 'Restarted.',
  },
  {
    key: 'purge', label: 'Purge', when: FINISHED, danger: true,
    text: 'Deletes the instance and its whole history. This cannot be undone.',
    fields: [],
    run: (id) => call('DELETE', instancePath(id)),
    done: () => 'Instance purged.',
  },
];

function input(spec) {
  const id = `action-${spec.name}`;
  if (spec.checkbox) {
    return h('label', { class: 'check' },
      h('input', { type: 'checkbox', id, name: spec.name, checked: spec.checked }), ` ${spec.label}`);
  }
  const control = spec.multiline
    ? h('textarea', { id, name: spec.name, rows: '3', spellcheck: 'false' })
    : h('input', { id, name: spec.name, required: spec.required, autocomplete: 'off' });
  return h('div', { class: 'field' }, h('label', { for: id }, spec.label), control);
}

/**
 * Opens the confirmation dialog of `action` for `id` (an instance, or what `action.subject`
 * names); `after(result)` on success.
 */
export function confirmAction(action, id, after) {
  const error = h('p', { class: 'error', role: 'alert' });
  const confirm = h('button', { type: 'submit', class: action.danger ? 'danger' : 'primary' },
    action.label);
  const cancel = h('button', { type: 'button' }, 'Cancel');
  const form = h('form', { method: 'dialog' },
    h('h2', { id: 'action-title' }, action.question ?? `${action.label} this instance?`),
    h('p', {}, action.text),
    h('p', { class: 'subject' }, `${action.subject ?? 'Instance'} `, h('code', {}, id)),
    action.fields.map(input),
    error,
    h('div', { class: 'buttons' }, cancel, confirm));
  const dialog = h('dialog', { 'aria-labelledby': 'action-title', class: 'action-dialog' }, form);
  const close = () => {
    dialog.close();
    dialog.remove();
  };
  cancel.addEventListener('click', close);
  dialog.addEventListener('close', () => dialog.remove());
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const values = {};
    for (const spec of action.fields) {
      const el = form.elements[spec.name];
      values[spec.name] = spec.checkbox ? el.checked : el.value.trim();
    }
    confirm.disabled = true;
    error.textContent = '';
    try {
      const result = await action.run(id, values);
      close();
      after(action.done(values), result);
    } catch (failure) {
      // A refused request or a lost connection, or the page's own check of the data.
      error.textContent = failure instanceof ApiError || failure instanceof TypeError
        ? describe(failure) : failure.message;
      confirm.disabled = false;
    }
  });
  document.body.append(dialog);
  dialog.showModal();
  (form.querySelector('input:not([type=checkbox]), textarea') ?? cancel).focus();
}
