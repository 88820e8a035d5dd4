// DOM and formatting helpers. Text always goes in as text nodes, never as
// HTML: job names, scripts and logs are user data.

/**
 * Build an element: h("td", {class: "num"}, "42", otherNode).
 * Attributes starting with "on" are event listeners; null/false ones are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  el.append(...flatten(children));
  return el;
}

function flatten(children) {
  return children
    .flat(Infinity)
    .filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c))));
}

/** Replace all children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren(...flatten(children));
}

export const $ = (selector, root = document) => root.querySelector(selector);

export const STATES = [
  "queued", "submitted", "running", "cancelling", "completed", "failed", "cancelled",
];
export const TERMINAL = new Set(["completed", "failed", "cancelled"]);

export function badge(state) {
  return h("span", { class: `badge state-${state}` }, state);
}

/** Microseconds since the epoch from the API's ISO time (keeps the order of same-ms events). */
export function micros(iso) {
  if (!iso) return 0;
  const match = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$/.exec(iso);
  const base = Date.parse(match[1] + (match[3] || "Z"));
  const fraction = (match[2] || "").padEnd(6, "0").slice(0, 6);
  return base * 1000 + Number(fraction);
}

const timeOnly = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
});
const dateTime = new Intl.DateTimeFormat(undefined, {
  month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", hour12: false,
});

/** Short local time: "14:03:27" today, "Nov 21, 14:03" before. */
export function shortTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? timeOnly.format(date)
    : dateTime.format(date);
}

const pad = (n) => String(n).padStart(2, "0");

/** Local "2026-11-22 14:03:27": unambiguous in every locale. */
export function fullTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 01 min". */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || ms < 0) return "";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours} h ${String(m % 60).padStart(2, "0")} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** Run time so far (running) or in total (ended); "" before the job started. */
export function jobDuration(job, now = Date.now()) {
  if (!job.started_at) return "";
  const start = Date.parse(job.started_at);
  const end = job.ended_at ? Date.parse(job.ended_at) : TERMINAL.has(job.state) ? start : now;
  return formatDuration(end - start);
}

let toastTimer = 0;

/** A short message at the bottom of the screen. */
export function toast(text, kind = "info") {
  const el = $("#toast");
  el.textContent = text;
  el.className = `toast ${kind}`;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 6000);
}

export function debounce(fn, ms) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
