// Small SVG charts drawn by the app itself (no chart library, nothing fetched from a CDN):
// a sparkline, a time line chart with axes, and stacked bars over time with a legend.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#9ca3af"];

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  for (const child of children) if (child) node.append(child);
  return node;
}

function niceNumber(value) {
  const abs = Math.abs(value);
  if (abs >= 1000) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1).replace(/\.0$/, "");
  return value.toFixed(2).replace(/\.?0+$/, "");
}

function sparkline(points, width = 120, height = 26) {
  const box = svg("svg", {width, height, viewBox: `0 0 ${width} ${height}`, class: "spark", role: "img"});
  if (!points || points.length < 2) {
    box.append(svg("line", {x1: 0, x2: width, y1: height / 2, y2: height / 2, class: "spark-empty"}));
    return box;
  }
  const lo = Math.min(...points), hi = Math.max(...points), span = hi - lo || 1;
  const xy = points.map((v, i) => [i * (width - 2) / (points.length - 1) + 1, height - 2 - (v - lo) / span * (height - 4)]);
  box.append(svg("polyline", {points: xy.map((p) => p.join(",")).join(" "), class: "spark-line"}));
  const [x, y] = xy[xy.length - 1];
  box.append(svg("circle", {cx: x, cy: y, r: 2, class: "spark-dot"}));
  box.append(svg("title", {}, `min ${niceNumber(lo)} · max ${niceNumber(hi)}`));
  return box;
}

// series: [[isoTime, value], ...]
function lineChart(series, {unit = "", width = 460, height = 170} = {}) {
  const pad = {l: 44, r: 10, t: 10, b: 22};
  const box = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img"});
  if (!series.length) {
    box.append(svg("text", {x: width / 2, y: height / 2, class: "axis", "text-anchor": "middle"}, "no readings in the window"));
    return box;
  }
  const times = series.map(([t]) => Date.parse(t)), values = series.map(([, v]) => v);
  const t0 = Math.min(...times), t1 = Math.max(...times), tspan = t1 - t0 || 1;
  let lo = Math.min(...values), hi = Math.max(...values);
  if (lo === hi) { lo -= 1; hi += 1; }
  const x = (t) => pad.l + (t - t0) / tspan * (width - pad.l - pad.r);
  const y = (v) => height - pad.b - (v - lo) / (hi - lo) * (height - pad.t - pad.b);
  for (const v of [lo, (lo + hi) / 2, hi]) {
    box.append(svg("line", {x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid"}));
    box.append(svg("text", {x: pad.l - 4, y: y(v) + 4, class: "axis", "text-anchor": "end"}, `${niceNumber(v)}${unit ? " " + unit : ""}`));
  }
  for (const t of [t0, t1]) {
    const label = new Date(t).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
    box.append(svg("text", {x: x(t), y: height - 6, class: "axis", "text-anchor": t === t0 ? "start" : "end"}, label));
  }
  const points = series.map(([t, v]) => `${x(Date.parse(t))},${y(v)}`).join(" ");
  box.append(svg("polyline", {points, class: "chart-line"}));
  if (series.length < 40) {  // few readings: show each one
    for (const [t, v] of series) box.append(svg("circle", {cx: x(Date.parse(t)), cy: y(v), r: 2.5, class: "chart-dot"}));
  }
  return box;
}

// buckets: [isoTime, ...]; series: {name: [count per bucket]}
function stackedBars(buckets, series, {hourly = false, width = 560, height = 200} = {}) {
  const pad = {l: 30, r: 8, t: 10, b: 22};
  const names = Object.keys(series);
  const totals = buckets.map((_, i) => names.reduce((sum, n) => sum + series[n][i], 0));
  const top = Math.max(1, ...totals);
  const slot = (width - pad.l - pad.r) / Math.max(1, buckets.length);
  const y = (v) => height - pad.b - v / top * (height - pad.t - pad.b);
  const box = svg("svg", {viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img"});
  for (const v of new Set([0, Math.ceil(top / 2), top])) {
    box.append(svg("line", {x1: pad.l, x2: width - pad.r, y1: y(v), y2: y(v), class: "grid"}));
    box.append(svg("text", {x: pad.l - 4, y: y(v) + 4, class: "axis", "text-anchor": "end"}, String(v)));
  }
  buckets.forEach((bucket, i) => {
    let base = 0;
    names.forEach((name, k) => {
      const n = series[name][i];
      if (!n) return;
      const bar = svg("rect", {x: pad.l + i * slot + 1, y: y(base + n), width: Math.max(1, slot - 2),
                              height: y(base) - y(base + n), fill: PALETTE[k % PALETTE.length]});
      bar.append(svg("title", {}, `${name}: ${n}`));
      box.append(bar);
      base += n;
    });
  });
  const every = Math.max(1, Math.ceil(buckets.length / 8));
  buckets.forEach((bucket, i) => {
    if (i % every) return;
    const at = new Date(bucket);
    const label = hourly ? at.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"})
                         : at.toLocaleDateString([], {month: "short", day: "numeric"});
    box.append(svg("text", {x: pad.l + i * slot + slot / 2, y: height - 6, class: "axis", "text-anchor": "middle"}, label));
  });
  const legend = el("div", {class: "legend"}, ...names.map((name, k) =>
    el("span", {}, el("i", {style: `background:${PALETTE[k % PALETTE.length]}`}), name)));
  return el("div", {class: "chart-box"}, box, legend);
}
