// The lab views: pipelines (load, eject, ready) and devices with their
// components. Neither has an event stream, so each is read again every
// POLL_MS while it is on screen, and at once after an action.

import { api } from "./api.js";
import { $, fill, h, shortTime } from "./dom.js";

const POLL_MS = 2000;

let shown = null; // "pipelines" | "devices" | null
let timer = 0;
let busy = false; // a read is under way: the next tick waits for it
const typed = new Map(); // pipeline -> sample being typed (survives re-renders)

/** Show one of the lab views (or none); it is then kept current. */
export function showLab(view) {
  shown = view === "pipelines" || view === "devices" ? view : null;
  clearInterval(timer);
  if (!shown) return;
  refresh();
  timer = setInterval(refresh, POLL_MS);
}

async function refresh() {
  if (busy) return;
  busy = true;
  try {
    if (shown === "pipelines") await loadPipelines();
    else if (shown === "devices") await loadComponents();
  } finally {
    busy = false;
  }
}

function note(body, colspan, text) {
  fill(body, h("tr", {}, h("td", { colspan, class: "empty" }, text)));
}

// --- pipelines -------------------------------------------------------------------

async function loadPipelines() {
  const body = $("#pipelines-body");
  let pipelines;
  try {
    pipelines = await api("pipelines");
  } catch (error) {
    note(body, 6, `Could not load pipelines: ${error.message}`);
    return;
  }
  // Keep the sample box the user is typing in: rebuild only the other rows.
  const box = document.activeElement;
  const focused = box?.matches?.("#pipelines-body input") ? box.closest("tr").dataset.name : null;
  const rows = new Map([...body.querySelectorAll("tr[data-name]")].map((tr) => [tr.dataset.name, tr]));
  const fresh = pipelines.map((p) => (p.name === focused && rows.has(p.name)
    ? rows.get(p.name) : pipelineRow(p)));
  if (!pipelines.length) note(body, 6, "No pipelines: add them to the devices file.");
  else fill(body, fresh);
  fill($("#pipelines-status"), `updated ${shortTime(new Date().toISOString())}`);
}

function pipelineRow(p) {
  const idle = p.job_id === null;
  const components = p.components.map((c) => h("li", { class: c.available ? "" : "unavailable" },
    h("code", {}, `${c.role}=${c.device}/${c.channel}`), c.available ? "" : " (unavailable)"));
  const sampleBox = h("input", {
    name: "sample", "aria-label": `Sample for ${p.name}`, placeholder: "sample name",
    maxlength: 200, autocomplete: "off", value: typed.get(p.name) || "",
    oninput: (e) => typed.set(p.name, e.target.value),
  });
  const act = (label, path, body, enabled = true) => h("button", {
    type: "button", class: "ghost", disabled: !enabled,
    onclick: () => pipelineAction(p.name, path, body?.()),
  }, label);
  let actions;
  if (p.sample === null) {
    actions = [sampleBox, act("Load", "load", () => ({ sample: sampleBox.value.trim() }), idle)];
  } else {
    actions = [
      p.ready ? act("Mark not ready", "ready", () => ({ ready: false }), idle)
        : act("Mark ready", "ready", () => ({ ready: true }), idle),
      act("Eject", "eject", null, idle),
    ];
  }
  return h("tr", { dataset: { name: p.name, ready: String(p.ready) } },
    h("td", {}, h("strong", {}, p.name), p.available ? "" : h("span", { class: "tag" }, "unavailable")),
    h("td", {}, h("ul", { class: "inline" }, components)),
    h("td", { class: "sample" }, p.sample ?? h("span", { class: "muted" }, "—")),
    h("td", { class: "ready" }, h("span", { class: `badge ${p.ready ? "health-ok" : "health-unknown"}` },
      p.ready ? "ready" : "not ready")),
    h("td", { class: "job" }, p.job_id === null ? h("span", { class: "muted" }, "—")
      : h("a", { href: `#/jobs/${p.job_id}` }, `#${p.job_id}`)),
    h("td", { class: "actions" }, h("div", { class: "inline-form" }, actions)),
  );
}

async function pipelineAction(name, path, body) {
  const message = $("#pipelines-message");
  if (path === "load" && !body.sample) {
    showMessage(message, `Type a sample name for ${name} first.`, "error");
    return;
  }
  try {
    const p = await api(`pipelines/${encodeURIComponent(name)}/${path}`, { method: "POST", body });
    typed.delete(name);
    const what = path === "eject" ? "ejected its sample" : path === "load"
      ? `holds ${p.sample}` : p.ready ? "is ready" : "is not ready";
    showMessage(message, `${name} ${what}.`, "ok");
  } catch (error) {
    showMessage(message, `${name}: ${error.message}`, "error");
  }
  await loadPipelines();
}

function showMessage(el, text, kind) {
  el.hidden = false;
  el.className = `message ${kind}`;
  el.textContent = text;
}

// --- devices and components ---------------------------------------------------------

async function loadComponents() {
  const body = $("#components-body");
  let components;
  try {
    components = await api("components");
  } catch (error) {
    note(body, 8, `Could not load components: ${error.message}`);
    return;
  }
  // Each one's status attrs and last reading; an unavailable one answers an error.
  const details = await Promise.all(components.map((c) =>
    (c.available ? api(`components/${c.device}/${c.channel}`).catch((e) => ({ error: e.message }))
      : Promise.resolve(null))));
  if (shown !== "devices") return;
  if (!components.length) {
    note(body, 8, "No devices: write a devices file (see docs/instruments.md).");
    return;
  }
  // Keep the attrs lists the user opened.
  const open = new Set([...body.querySelectorAll("details[open]")].map((d) => d.dataset.key));
  fill(body, components.map((c, i) => componentRow(c, details[i], open)));
  fill($("#devices-status"), `updated ${shortTime(new Date().toISOString())}`);
}

function componentRow(c, detail, open) {
  const key = `${c.device}/${c.channel}`;
  const status = detail?.status ?? {};
  const attrs = detail?.attrs ?? {};
  const withUnits = (name, value) => {
    const units = attrs[name]?.units;
    const text = typeof value === "number" ? formatNumber(value) : JSON.stringify(value);
    return h("li", { dataset: { attr: name } }, h("code", {}, `${name}=${text}${units ? ` ${units}` : ""}`));
  };
  const statusList = Object.entries(status).filter(([k]) => k !== "queued");
  const last = detail?.last_data;
  const attrTable = Object.keys(attrs).length ? h("details", { dataset: { key }, open: open.has(key) },
    h("summary", {}, "attrs and constants"),
    h("table", { class: "grid compact" },
      h("thead", {}, h("tr", {}, ["attr", "type", "rw", "units", "limits", "options"]
        .map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, Object.entries(attrs).map(([name, a]) => h("tr", {},
        h("td", {}, h("code", {}, name)), h("td", {}, a.type), h("td", {}, a.rw ? "rw" : "r"),
        h("td", {}, a.units ?? ""), h("td", {}, limitsText(a)),
        h("td", {}, a.options ? a.options.join(", ") : ""))))),
    h("ul", { class: "kv" }, Object.entries(detail.constants ?? {})
      .map(([k, v]) => h("li", {}, h("code", {}, `${k}=${JSON.stringify(v)}`))))) : "";
  return h("tr", { dataset: { component: key } },
    h("td", {}, h("strong", {}, key), attrTable),
    h("td", {}, c.driver),
    h("td", {}, h("code", {}, c.address)),
    h("td", {}, c.available ? h("span", { class: "badge health-ok" }, "yes")
      : h("span", { class: "badge health-bad", title: c.error || "" }, "no"),
    c.error || detail?.error ? h("div", { class: "muted small" }, c.error || detail.error) : ""),
    h("td", {}, h("ul", { class: "inline" }, c.capabilities.map((t) => h("li", {}, h("span", { class: "tag" }, t))))),
    h("td", {}, h("ul", { class: "inline" }, c.roles.map((r) => h("li", {}, `${r.pipeline} (${r.role})`))),
      c.job_id === null ? "" : h("div", {}, "job ", h("a", { href: `#/jobs/${c.job_id}` }, `#${c.job_id}`))),
    h("td", { class: "status" }, h("ul", { class: "kv" }, statusList.map(([k, v]) => withUnits(k, v)))),
    h("td", { class: "last-data" }, last
      ? [h("ul", { class: "kv" }, Object.entries(last.values).map(([k, v]) => h("li", {},
        h("code", {}, `${k}=${typeof v === "number" ? formatNumber(v) : JSON.stringify(v)}` +
          `${last.units?.[k] ? ` ${last.units[k]}` : ""}`)))),
      h("div", { class: "muted small" }, shortTime(new Date(last.uts * 1000).toISOString()))]
      : h("span", { class: "muted" }, "—")),
  );
}

/** "0–10 s", "≥ 0", "" for an attr's limits. */
export function limitsText(attr) {
  const units = attr.units ? ` ${attr.units}` : "";
  const { minimum: lo, maximum: hi } = attr;
  if (lo != null && hi != null) return `${lo}–${hi}${units}`;
  if (lo != null) return `≥ ${lo}${units}`;
  if (hi != null) return `≤ ${hi}${units}`;
  return "";
}

function formatNumber(value) {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(6)));
}
