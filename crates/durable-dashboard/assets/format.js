// Text forms shared by every page. Times and durations are written exactly as `durable history`
// and `durable list` write them (crates/durable-cli/src/render.rs), so the two agree cell by cell.

/** A JSON field as one line: strings as they are, null or missing as '-', the rest as JSON. */
export function cell(value) {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** Text cut to `max` characters, with an ellipsis when it was longer. */
export function short(text, max) {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** A payload for reading: indented JSON; strings keep their quotes so types stay visible. */
export function pretty(value) {
  if (value === undefined) return '-';
  return JSON.stringify(value, null, 2);
}

const RFC3339 = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/;

/** An RFC 3339 time as 'YYYY-MM-DD HH:MM:SS.mmm' in UTC, digits past milliseconds cut off. */
export function time(value) {
  const text = cell(value);
  const utc = RFC3339.exec(text);
  if (utc) return `${utc[1]} ${utc[2]}.${(utc[3] ?? '').padEnd(3, '0').slice(0, 3)}`;
  const date = new Date(text);
  if (Number.isNaN(date.getTime())) return text;
  return date.toISOString().replace('T', ' ').replace('Z', '');
}

/** Milliseconds as a short duration: '12 ms', '1.50 s', '1.5 min', '2.0 h'. */
export function duration(ms) {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${fixed(ms, 1000, 2)} s`;
  if (ms < 3600000) return `${fixed(ms, 60000, 1)} min`;
  return `${fixed(ms, 3600000, 1)} h`;
}

function gcd(a, b) {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * ms / unit with `digits` decimals, as Rust's `{:.N}` writes it. Both round the exact value of
 * the double; they differ only on an exact tie, where Rust rounds to even and toFixed up. A
 * tie is exact only when ms / unit is itself exact in binary.
 */
export function fixed(ms, unit, digits) {
  const scale = 10 ** digits;
  const scaled = ms * scale;
  const reduced = unit / gcd(ms, unit);
  const exact = (reduced & (reduced - 1)) === 0;
  if (exact && (2 * scaled) % unit === 0 && scaled % unit !== 0) {
    let n = Math.floor(scaled / unit);
    if (n % 2 !== 0) n += 1;
    return (n / scale).toFixed(digits);
  }
  return (ms / unit).toFixed(digits);
}

/** How long ago, or how long for, from two times in milliseconds. */
export function since(fromMs, toMs = Date.now()) {
  return duration(Math.max(0, Math.round(toMs - fromMs)));
}

/** A local 'datetime-local' input value for an RFC 3339 time, or ''. */
export function toLocalInput(iso) {
  const date = new Date(iso);
  if (!iso || Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** The RFC 3339 UTC time of a 'datetime-local' input value (read as local time), or ''. */
export function fromLocalInput(value) {
  if (!value) return '';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}
