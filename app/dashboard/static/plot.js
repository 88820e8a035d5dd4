// An instrument job's data: one uPlot chart per role, every numeric quantity
// as a series, one y axis per unit, fed by GET /jobs/<id>/data?follow=true.
//
// Samples are appended as their SSE events arrive; a chart redraws at most once
// a frame and every REDRAW_MS, and only while on screen (an off-screen chart redraws when it is
// scrolled into view), so 50 roles at 100 Hz keep the page responsive.

import { streamUrl } from "./api.js";
import { fill, h } from "./dom.js";

const REDRAW_MS = 100;
const RETRY_MS = 2000;
const COLOURS = ["#2f6fde", "#d9480f", "#2b8a3e", "#9c36b5", "#c92a2a", "#1098ad", "#e67700"];
const NO_UNIT = "";

let uPlotModule = null; // loaded on the first plot: the jobs view never pays for it

function loadUPlot() {
  if (!uPlotModule) {
    // Its stylesheet too, so that it never holds up the first paint.
    document.head.append(h("link", { rel: "stylesheet", href: "vendor/uplot/uPlot.min.css" }));
    uPlotModule = import("./vendor/uplot/uPlot.esm.js").then((m) => m.default);
  }
  return uPlotModule;
}

/**
 * Follow job `id`'s data (its roles: `names`) into `root` until `stop()`.
 * `status(text)` reports progress. Returns {stop, stats()}; stats are what
 * the bench reads.
 */
export function followData(root, id, names, status) {
  const roles = new Map(); // role -> Role
  const state = { source: null, timer: 0, stopped: false, ended: false, t0: null, frame: 0 };
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const role = [...roles.values()].find((r) => r.figure === entry.target);
      if (!role) continue;
      role.visible = entry.isIntersecting;
      if (role.visible) schedule();
    }
  });
  const resized = new ResizeObserver(() => {
    for (const role of roles.values()) role.resize();
  });
  resized.observe(root);
  fill(root);

  // At most one redraw per frame, and per chart one per REDRAW_MS.
  function schedule() {
    if (state.frame || state.stopped) return;
    state.frame = requestAnimationFrame(draw);
  }

  function draw() {
    state.frame = 0;
    if (state.stopped) return;
    const now = performance.now();
    let later = false;
    for (const role of roles.values()) {
      if (!role.dirty || !role.visible) continue;
      // A long curve takes longer to draw: then it is drawn less often, so
      // that no chart spends more than a tenth of the time drawing.
      if (now - role.drawnAt >= Math.max(REDRAW_MS, 10 * role.drawCost)) role.draw(now);
      else later = true;
    }
    if (later) schedule();
  }

  function onSamples(name, offset, samples) {
    let role = roles.get(name);
    if (!role) {
      role = new Role(name);
      roles.set(name, role);
      root.append(role.figure);
      seen.observe(role.figure);
      // The figure now, its chart once uPlot is loaded.
      loadUPlot().then((chartClass) => {
        role.chartClass = chartClass;
        schedule();
      });
    }
    // One time origin for every role of the job: their curves line up.
    if (state.t0 === null && samples.length) state.t0 = samples[0].uts;
    role.add(offset, samples, state.t0);
    schedule();
  }

  function connect() {
    // After a lost connection: from the role that has the fewest samples (a
    // role not seen yet has none); samples a role already has are skipped.
    const offset = Math.min(...names.map((name) => roles.get(name)?.count ?? 0), Infinity);
    const params = { follow: "true", offset: Number.isFinite(offset) ? offset : 0 };
    const source = new EventSource(streamUrl(`jobs/${id}/data`, params));
    state.source = source;
    status(state.ended ? "" : "following the data live…");
    source.addEventListener("data", (e) => {
      const page = JSON.parse(e.data);
      onSamples(page.role, page.offset, page.samples);
    });
    source.addEventListener("end", () => {
      source.close();
      state.ended = true;
      const total = [...roles.values()].reduce((n, r) => n + r.count, 0);
      status(roles.size ? `the job ended · ${total} samples` : "the job recorded no data");
      schedule();
    });
    source.onerror = () => {
      source.close();
      if (state.stopped) return;
      status("connection lost; reconnecting…");
      state.timer = setTimeout(() => { if (!state.stopped) connect(); }, RETRY_MS);
    };
  }

  connect();
  return {
    stop() {
      state.stopped = true;
      state.source?.close();
      clearTimeout(state.timer);
      cancelAnimationFrame(state.frame);
      seen.disconnect();
      resized.disconnect();
      for (const role of roles.values()) role.destroy();
    },
    stats() {
      return [...roles.values()].map((r) => r.stats());
    },
  };
}

/** One role's chart: columns x, then one per numeric quantity. */
class Role {
  constructor(name) {
    this.name = name;
    this.count = 0; // samples received
    this.x = [];
    this.columns = new Map(); // quantity -> {values, unit}
    this.chart = null;
    this.chartClass = null;
    this.dirty = false;
    this.visible = false;
    this.drawnAt = -Infinity; // performance.now() of the last redraw
    this.drawCost = 0; // how long it took, ms
    this.layoutKey = "";
    this.drawn = { points: 0, uts: null, at: 0 };
    this.lastUts = null;
    this.caption = h("figcaption", {}, h("strong", {}, name), " ",
      h("span", { class: "muted plot-count" }, "0 points"));
    this.axes = h("p", { class: "plot-axes muted small" });
    this.canvas = h("div", { class: "plot-canvas" });
    this.figure = h("figure", { class: "plot", dataset: { role: name } },
      this.caption, this.canvas, this.axes);
  }

  /** Samples from index `offset` (those it already has are skipped); x is uts - t0. */
  add(offset, samples, t0) {
    const skip = Math.max(0, this.count - offset);
    for (let i = skip; i < samples.length; i += 1) {
      const sample = samples[i];
      for (const [key, value] of Object.entries(sample.values)) {
        if (typeof value !== "number" || !Number.isFinite(value)) continue;
        let column = this.columns.get(key);
        if (!column) {
          // A quantity seen first now: earlier samples have no value for it.
          column = { values: new Array(this.x.length).fill(null), unit: NO_UNIT };
          this.columns.set(key, column);
        }
        column.unit = sample.units?.[key] || NO_UNIT;
      }
      this.x.push(sample.uts - t0);
      for (const [key, column] of this.columns) {
        const value = sample.values[key];
        column.values.push(typeof value === "number" && Number.isFinite(value) ? value : null);
      }
      this.lastUts = sample.uts;
    }
    this.count = Math.max(this.count, offset + samples.length);
    this.dirty = true;
  }

  /** Quantities grouped by unit: one scale and axis per unit. */
  units() {
    const byUnit = new Map();
    for (const [key, column] of this.columns) {
      if (!byUnit.has(column.unit)) byUnit.set(column.unit, []);
      byUnit.get(column.unit).push(key);
    }
    return byUnit;
  }

  draw(now) {
    if (!this.chartClass || !this.x.length) return;
    this.dirty = false;
    this.drawnAt = now;
    const start = performance.now();
    const layout = JSON.stringify([...this.columns].map(([k, c]) => [k, c.unit]));
    if (layout !== this.layoutKey) this.build(layout);
    this.chart.setData([this.x, ...[...this.columns.values()].map((c) => c.values)]);
    // uPlot draws in a microtask of its own: this one runs after it.
    queueMicrotask(() => { this.drawCost = performance.now() - start; });
    this.drawn = { points: this.x.length, uts: this.lastUts, at: Date.now() / 1000 };
    fill(this.caption.querySelector(".plot-count"),
      `${this.x.length} point${this.x.length === 1 ? "" : "s"}`);
  }

  build(layout) {
    this.chart?.destroy();
    this.layoutKey = layout;
    const byUnit = this.units();
    const label = (unit, keys) => `${keys.join(", ")} [${unit || "no unit"}]`;
    const axes = [{ label: "time since the first sample [s]", scale: "x" }];
    const scales = { x: { time: false } };
    [...byUnit].forEach(([unit, keys], i) => {
      const scale = `y:${unit}`;
      scales[scale] = {};
      axes.push({ scale, label: label(unit, keys), side: i % 2 ? 1 : 3, grid: { show: i === 0 } });
    });
    const series = [{ label: "time [s]" }];
    [...this.columns].forEach(([key, column], i) => {
      series.push({
        label: column.unit ? `${key} [${column.unit}]` : key,
        scale: `y:${column.unit}`,
        stroke: COLOURS[i % COLOURS.length],
        width: 1.5,
        points: { show: false },
      });
    });
    const width = Math.max(240, this.canvas.clientWidth || 480);
    this.chart = new this.chartClass({ width, height: 220, scales, axes, series }, [[]], this.canvas);
    // The axes as text: for screen readers, and for tests (the chart is a canvas).
    const names = axes.map((a) => a.label);
    this.figure.setAttribute("aria-label", `${this.name}: x ${names[0]}; y ${names.slice(1).join("; ")}`);
    fill(this.axes, `x: ${names[0]} · y: ${names.slice(1).join(" · ")}`);
  }

  resize() {
    if (!this.chart) return;
    const width = Math.max(240, this.canvas.clientWidth);
    if (width !== this.chart.width) this.chart.setSize({ width, height: 220 });
  }

  stats() {
    return {
      role: this.name, received: this.count, lastUts: this.lastUts, visible: this.visible,
      drawnPoints: this.drawn.points, drawnUts: this.drawn.uts, drawnAt: this.drawn.at,
      drawMs: this.drawCost,
    };
  }

  destroy() {
    this.chart?.destroy();
    this.chart = null;
  }
}
