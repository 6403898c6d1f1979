// A small line chart in SVG, drawn from polled samples. The legend under it states each
// series' latest value, which is also the chart's text for screen readers.

import { h, s } from './dom.js';

const WIDTH = 640;
const HEIGHT = 180;
const PAD = { left: 44, right: 12, top: 10, bottom: 22 };

/** A round upper bound for the y axis: 1, 2 or 5 times a power of ten. */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function label(value) {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** The path of one series; a null value breaks the line. */
function pathOf(values, x, y) {
  let d = '';
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null || v === undefined) {
      drawing = false;
      return;
    }
    d += `${drawing ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    drawing = true;
  });
  return d;
}

/**
 * series: [{ label, values }], one value per sample, oldest first; `seconds` is the time the
 * samples cover. `unit` follows the numbers in the legend.
 */
export function lineChart({ title, series, seconds, unit = '' }) {
  const count = Math.max(0, ...series.map((one) => one.values.length));
  const top = niceMax(Math.max(0, ...series.flatMap((one) => one.values.filter((v) => v !== null))));
  const innerW = WIDTH - PAD.left - PAD.right;
  const innerH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (count > 1 ? (i / (count - 1)) * innerW : innerW);
  const y = (v) => PAD.top + innerH - (v / top) * innerH;

  const grid = [0, top / 2, top].map((v) => [
    s('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v), class: 'grid' }),
    s('text', { x: PAD.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' }, label(v)),
  ]);
  const ago = seconds >= 90 ? `${Math.round(seconds / 60)} min ago` : `${Math.round(seconds)} s ago`;
  const axis = [
    s('text', { x: PAD.left, y: HEIGHT - 6, class: 'axis' }, count > 1 ? ago : ''),
    s('text', { x: WIDTH - PAD.right, y: HEIGHT - 6, class: 'axis', 'text-anchor': 'end' }, 'now'),
  ];
  const lines = series.map((one, i) => s('path', { d: pathOf(one.values, x, y), class: `line series-${i}` }));

  const latest = (one) => {
    const v = one.values.at(-1);
    return v === null || v === undefined ? '-' : label(v);
  };
  const words = series.map((one) => `${one.label} ${latest(one)}${unit}`).join(', ');
  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `${title}: ${words}`,
    class: 'chart' }, grid, axis, lines);
  const legend = h('ul', { class: 'legend' }, series.map((one, i) => h('li', {},
    h('span', { class: `swatch series-${i}`, 'aria-hidden': 'true' }),
    `${one.label}: `, h('strong', {}, latest(one)), unit)));
  return h('figure', { class: 'chart-box' }, h('figcaption', {}, title), svg, legend);
}
