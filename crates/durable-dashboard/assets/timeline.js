// An instance's timeline: the rows of GET /instances/{id}/timeline, in the columns and text of
// `durable history`, with a bar placing each step in the instance's lifetime.

import { h, instanceHref, table } from './dom.js';
import { cell, duration, time } from './format.js';

export const COLUMNS = ['Event', 'Name', 'Time (UTC)', 'Duration', 'Result'];

/** Sub-orchestration ids by the call number that created them, from the history events. */
export function childrenOf(historyEvents) {
  const children = new Map();
  for (const event of historyEvents ?? []) {
    if (event.eventType === 'SubOrchestrationInstanceCreated') {
      children.set(event.eventId, { id: event.instanceId, name: event.name });
    }
  }
  return children;
}

function nameCell(row, children) {
  const child = row.event.startsWith('SubOrchestration') ? children.get(row.taskId) : null;
  if (child) return h('a', { href: instanceHref(child.id), title: `Sub-orchestration ${child.id}` }, cell(row.name));
  return cell(row.name);
}

/** The step's place in time: a bar from its start to its end, or a tick when it has no length. */
function bar(row, start, span) {
  const end = Date.parse(row.time);
  const length = row.durationMs ?? 0;
  const mark = h('span', { class: length ? 'bar' : 'tick' });
  const left = span > 0 ? ((end - length - start) / span) * 100 : 0;
  mark.style.left = `${Math.max(0, Math.min(100, left))}%`;
  if (length) mark.style.width = `${Math.max(0.5, (length / span) * 100)}%`;
  return h('span', { class: 'track', 'aria-hidden': 'true' }, mark);
}

export function timelineTable(rows, children) {
  const times = rows.map((r) => Date.parse(r.time));
  const start = Math.min(...times);
  const span = Math.max(...times) - start;
  const cells = rows.map((row) => {
    const result = cell(row.result);
    return [
      row.event,
      nameCell(row, children),
      time(row.time),
      duration(row.durationMs),
      row.failed ? `FAILED: ${result}` : result,
      bar(row, start, span),
    ];
  });
  const columns = [...COLUMNS, h('span', { class: 'visually-hidden' }, 'Place in time')];
  return table('Timeline, oldest first', columns, cells,
    (i) => (rows[i].failed ? 'failed' : null));
}
