// The jobs table: filters, keyset pages ("Older jobs"), per-state counters,
// and live updates applied from the events stream.

import { api } from "./api.js";
import {
  $, STATES, TERMINAL, badge, debounce, fill, fullTime, h, jobDuration, micros, shortTime, toast,
} from "./dom.js";

const PAGE = 50;

const rows = new Map(); // job id -> {job, tr}; the table shows exactly these
const learning = new Map(); // job id -> events seen while its row is being fetched
const rejected = new Set(); // fetched jobs whose backend, name or tags fail the filters
let nextBefore = null; // keyset cursor of the next older page; null: no older jobs
let generation = 0; // bumped by every reload: answers of an older one are dropped
let loading = false;
let buffered = []; // events that arrived while a page was loading
let filters = { state: "", backend: "", name: "", tag: "" };
let selectedId = null;
let counterFrame = 0;
let loadError = ""; // why the last reload failed, shown instead of the rows

const body = () => $("#jobs-body");

export function initJobs() {
  const form = $("#filters");
  const states = form.elements.state;
  for (const state of STATES) states.append(h("option", { value: state }, state));
  const apply = () => {
    filters = {
      state: form.elements.state.value,
      backend: form.elements.backend.value,
      name: form.elements.name.value.trim(),
      tag: form.elements.tag.value.trim(),
    };
    reloadJobs();
  };
  const typed = debounce(apply, 250);
  form.addEventListener("input", (e) => (e.target.tagName === "SELECT" ? apply() : typed()));
  form.addEventListener("submit", (e) => { e.preventDefault(); apply(); });
  // "reset" fires before the fields are cleared: read them afterwards.
  form.addEventListener("reset", () => setTimeout(apply));
  $("#older").addEventListener("click", () => loadPage(false));
  body().addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (!tr || e.target.closest("a") || window.getSelection().toString()) return;
    location.hash = `#/jobs/${tr.dataset.id}`;
  });
  setInterval(tickDurations, 1000);
}

/** Fill the backend filter's choices (keeps the current choice). */
export function setBackendChoices(names) {
  const select = $("#filters").elements.backend;
  const chosen = select.value;
  fill(select, h("option", { value: "" }, "any"), names.map((n) => h("option", { value: n }, n)));
  select.value = names.includes(chosen) ? chosen : "";
}

export function selectJob(id) {
  selectedId = id;
  for (const [rowId, row] of rows) row.tr.classList.toggle("selected", rowId === id);
}

export function reloadJobs() {
  return loadPage(true);
}

async function loadPage(reset) {
  const gen = reset ? ++generation : generation;
  loading = true;
  $("#older").disabled = true;
  const params = {
    limit: PAGE,
    before: reset ? null : nextBefore,
    state: filters.state,
    backend: filters.backend,
    name: filters.name,
    tag: filters.tag,
  };
  let page;
  try {
    page = await api("jobs", { params });
  } catch (error) {
    if (gen !== generation) return;
    loading = false;
    buffered = [];
    $("#older").disabled = false;
    if (reset) {
      clearRows();
      loadError = `Could not load jobs: ${error.message}`;
      refreshSummary();
    } else {
      toast(`Could not load older jobs: ${error.message}`, "error");
    }
    return;
  }
  if (gen !== generation) return;
  loadError = "";
  if (reset) clearRows();
  for (const job of page.items) if (!rows.has(job.id)) addRow(job);
  nextBefore = page.next_before;
  loading = false;
  const older = $("#older");
  older.hidden = nextBefore === null;
  older.disabled = false;
  const events = buffered;
  buffered = [];
  for (const event of events) applyEvent(event);
  refreshSummary();
}

function clearRows() {
  rows.clear();
  learning.clear();
  rejected.clear();
  body().replaceChildren();
}

/** One job event (EventPublic) from the live stream. */
export function applyEvent(event) {
  if (loading) {
    buffered.push(event);
    return;
  }
  const row = rows.get(event.job_id);
  if (row) {
    if (update(row.job, event)) renderRow(row);
    refreshSummary();
    return;
  }
  if (learning.has(event.job_id)) {
    learning.get(event.job_id).push(event);
    return;
  }
  if (mayBelong(event)) learn(event);
}

/** Could this unknown job be in the table? Then fetch it. */
function mayBelong(event) {
  if (rejected.has(event.job_id)) return false;
  if (filters.state && event.to_state !== filters.state) return false;
  // Rows cover every matching id above the cursor: older ids come with "Older jobs".
  return nextBefore === null || event.job_id > nextBefore;
}

async function learn(event) {
  const id = event.job_id;
  const gen = generation;
  learning.set(id, [event]);
  let job;
  try {
    job = await api(`jobs/${id}`);
  } catch {
    job = null; // gone or unreadable: leave it out
  }
  const events = learning.get(id) || [];
  learning.delete(id);
  if (!job || gen !== generation || rows.has(id)) return;
  if (!matchesFixed(job)) {
    rejected.add(id); // these never change: skip its later events
    return;
  }
  for (const e of events) update(job, e);
  if (filters.state && job.state !== filters.state) return;
  addRow(job);
  refreshSummary();
}

/** The filters on what never changes in a job (its state does). */
function matchesFixed(job) {
  return (
    (!filters.backend || job.backend === filters.backend) &&
    (!filters.name || job.name.startsWith(filters.name)) &&
    (!filters.tag || job.tags.includes(filters.tag))
  );
}

/**
 * Apply an event to a job the way the engine does. A terminal state never
 * changes again. An event older than what the job shows (it was fetched after
 * the event) changes nothing, unless it leaves the state shown: the job's
 * updated_at also moves on writes that are not state changes.
 */
export function update(job, event) {
  if (TERMINAL.has(job.state)) return false;
  const next = event.from_state === job.state || micros(event.at) >= micros(job.updated_at);
  if (!next) return false;
  job.state = event.to_state;
  job.updated_at = event.at;
  if (event.message !== null || TERMINAL.has(event.to_state)) job.reason = event.message;
  if (event.to_state === "running") {
    job.started_at = event.at;
    job.ended_at = null;
  }
  if (TERMINAL.has(event.to_state)) job.ended_at = event.at;
  return true;
}

function addRow(job) {
  const row = { job, tr: h("tr", { dataset: { id: job.id } }) };
  rows.set(job.id, row);
  renderRow(row);
  // Newest first: before the first row with a smaller id.
  const after = [...body().children].find((tr) => Number(tr.dataset.id) < job.id);
  body().insertBefore(row.tr, after || null);
}

function renderRow({ job, tr }) {
  tr.classList.toggle("selected", job.id === selectedId);
  tr.dataset.state = job.state;
  fill(
    tr,
    h("td", { class: "num" }, h("a", { href: `#/jobs/${job.id}` }, String(job.id))),
    h("td", { class: "name" },
      h("span", { class: "job-name", title: job.name }, job.name),
      job.tags.map((tag) => h("span", { class: "tag" }, tag))),
    h("td", {}, job.backend),
    h("td", {}, badge(job.state)),
    h("td", { class: "reason", title: job.reason || "" }, job.reason || ""),
    h("td", { class: "time", title: fullTime(job.created_at) }, shortTime(job.created_at)),
    h("td", { class: "num duration" }, jobDuration(job)),
  );
}

function tickDurations() {
  for (const { job, tr } of rows.values()) {
    if (job.started_at && !job.ended_at && !TERMINAL.has(job.state)) {
      tr.querySelector(".duration").textContent = jobDuration(job);
    }
  }
}

/** Counters and the row count, at most once per frame however many events arrive. */
function refreshSummary() {
  if (counterFrame) return;
  counterFrame = requestAnimationFrame(() => {
    counterFrame = 0;
    renderCounters();
    const empty = $("#jobs-empty");
    if (rows.size === 0) {
      const submit = h("a", { href: "#/submit" }, "Submit");
      if (loadError) fill(empty, loadError);
      else fill(empty, "No jobs match. Submit one from the ", submit, " view.");
      empty.hidden = false;
    } else {
      empty.hidden = true;
    }
    const shown = `${rows.size} job${rows.size === 1 ? "" : "s"} shown`;
    const more = nextBefore === null ? "" : "; older ones not loaded";
    $("#jobs-count").textContent = rows.size ? shown + more : "";
  });
}

function renderCounters() {
  const counts = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const { job } of rows.values()) counts[job.state] += 1;
  const chip = (state, label, count) =>
    h("button", {
      type: "button",
      class: `counter ${state ? `state-${state}` : "all"}`,
      "aria-pressed": String(filters.state === state),
      title: state ? `Show only ${state} jobs` : "Show jobs in any state",
      onclick: () => {
        const select = $("#filters").elements.state;
        select.value = filters.state === state ? "" : state;
        select.dispatchEvent(new Event("input", { bubbles: true }));
      },
    },
    h("span", { class: "count" }, String(count)),
    h("span", { class: "label" }, label));
  fill(
    $("#counters"),
    chip("", "all", rows.size),
    STATES.map((state) => chip(state, state, counts[state])),
  );
}
