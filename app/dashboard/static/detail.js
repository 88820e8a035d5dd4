// The job detail panel: every field, its events, its log followed live, Cancel.

import { api, streamUrl } from "./api.js";
import { $, TERMINAL, badge, debounce, fill, fullTime, h, jobDuration, shortTime } from "./dom.js";
import { bytesText, cpuText, hide as hideLab, show as showLab } from "./instrument.js";
import { update } from "./jobs.js";

// Keep the browser responsive on huge logs: only the tail stays on screen.
const MAX_LOG_CHARS = 2_000_000;
const LOG_RETRY_MS = 2000;
const LOG_RETRIES = 5; // in a row without any text: then the log is unavailable

let current = null; // {id, job, loading, lastEventId, buffered: events before the job came}
let log = null; // {id, stream, attempt, offset, source, timer, chars, failures}
let logStream = "stdout";
let logTask = null; // an array job's task whose log is shown; null: the job's own
let cancelArmed = 0; // timer while "Confirm cancel" is showing

export function initDetail() {
  for (const tab of document.querySelectorAll(".log-tabs [role=tab]")) {
    tab.addEventListener("click", () => {
      logStream = tab.dataset.stream;
      for (const other of document.querySelectorAll(".log-tabs [role=tab]")) {
        other.setAttribute("aria-selected", String(other === tab));
      }
      if (current?.job) openLog();
    });
  }
  $("#cancel-button").addEventListener("click", onCancel);
  // A click on an array task's row (instrument.js): its log, or the array's again.
  document.addEventListener("gantry:task-log", (e) => {
    logTask = logTask === e.detail ? null : e.detail;
    if (current?.job) openLog();
  });
  // Only the duration ticks: rebuilding the fields would drop the user's text selection.
  setInterval(() => {
    const duration = $("#detail-duration");
    if (current?.job && duration) duration.textContent = jobDuration(current.job) || "—";
  }, 1000);
}

export async function openDetail(id) {
  if (current?.id === id) return;
  closeLog();
  hideLab();
  disarmCancel();
  current = { id, job: null, loading: true, lastEventId: 0, buffered: [] };
  logTask = null;
  $("#detail").hidden = false;
  fill($("#detail-title"), `Job ${id}`);
  fill($("#detail-sub"), "loading…");
  for (const part of ["fields", "warnings", "events", "spec"]) fill($(`#detail-${part}`));
  fill($("#log"));
  message(null);
  let job, events;
  try {
    [job, events] = await Promise.all([api(`jobs/${id}`), api(`jobs/${id}/events`)]);
  } catch (error) {
    if (current?.id !== id) return;
    current.loading = false;
    fill($("#detail-sub"), error.message);
    return;
  }
  if (current?.id !== id) return;
  current.loading = false;
  current.job = job;
  for (const event of events.items) addEvent(event);
  for (const event of current.buffered) onEvent(event);
  current.buffered = [];
  renderFields();
  showLab(job);
  // The two reads ran in parallel: if the events are newer than the job row
  // (a transition committed in between), read the job again.
  const newest = events.items.at(-1);
  if (newest && newest.to_state !== current.job.state) refetch();
  // A command job has a script, an instrument job a payload (sample and method).
  const payload = job.spec == null && job.payload != null;
  fill($("#detail-spec-title"), payload ? "Payload" : "Script");
  fill($("#detail-spec"), payload ? JSON.stringify(job.payload, null, 2) : job.spec ?? "");
  openLog();
}

/** Load the open job again if that failed (say, before a token was given). */
export function retryDetail() {
  if (!current || current.job || current.loading) return;
  const { id } = current;
  current = null;
  openDetail(id);
}

export function closeDetail() {
  closeLog();
  hideLab();
  disarmCancel();
  current = null;
  $("#detail").hidden = true;
}

/** A live job event: shown when it is the open job's. */
export function onEvent(event) {
  if (!current || event.job_id !== current.id) return;
  if (!current.job) {
    current.buffered.push(event);
    return;
  }
  if (event.id <= current.lastEventId) return;
  addEvent(event);
  update(current.job, event);
  renderFields();
  refetch();
}

// Events carry the state, not exit codes or attempts: re-read the job, once per burst.
const refetch = debounce(async () => {
  if (!current?.job) return;
  const id = current.id;
  try {
    const job = await api(`jobs/${id}`);
    if (current?.id !== id) return;
    const retried = job.attempt > (log?.attempt || 1);
    current.job = job;
    renderFields();
    showLab(job);
    if (retried) openLog(); // a retry writes a new log: follow that one
  } catch {
    /* the next event tries again */
  }
}, 150);

function addEvent(event) {
  current.lastEventId = Math.max(current.lastEventId, event.id);
  $("#detail-events").append(h("tr", {},
    h("td", { class: "time", title: fullTime(event.at) }, shortTime(event.at)),
    h("td", { class: "change" }, event.from_state ? badge(event.from_state) : "",
      event.from_state ? " → " : "",
      badge(event.to_state)),
    h("td", {}, event.message || ""),
  ));
}

function renderFields() {
  const job = current.job;
  fill($("#detail-title"), h("span", { class: "muted" }, `#${job.id} `), job.name);
  fill($("#detail-sub"), badge(job.state), " ", `${job.kind} job on `, h("strong", {}, job.backend),
    job.reason ? ` · ${job.reason}` : "");
  const cancel = $("#cancel-button");
  cancel.classList.toggle("quiet", TERMINAL.has(job.state));
  const list = (items, render = (x) => x) =>
    items.length ? h("ul", { class: "inline" }, items.map((x) => h("li", {}, render(x)))) : none();
  const field = (name, value) => [h("dt", {}, name), h("dd", {}, value)];
  // Long values take the whole row.
  const wide = (name, value) => [h("dt", {}, name), h("dd", { class: "wide" }, value)];
  fill(
    $("#detail-fields"),
    field("State", badge(job.state)),
    field("Exit code", job.exit_code ?? none()),
    field("Attempt", `${job.attempt} of ${job.max_retries + 1}`),
    field("Priority", String(job.priority)),
    field("Created", fullTime(job.created_at)),
    field("Submitter", job.submitted_by || none()),
    field("Started", fullTime(job.started_at) || none()),
    field("Ended", fullTime(job.ended_at) || none()),
    field("Duration", h("span", { id: "detail-duration" }, jobDuration(job) || "—")),
    field("Backend ref", job.backend_ref || none()),
    field("Depends on",
      list(job.depends_on, (id) => h("a", { href: `#/jobs/${id}` }, `#${id}`))),
    wide("Reason", job.reason || none()),
    wide("Tags", list(job.tags, (t) => h("span", { class: "tag" }, t))),
    wide("Options", keyValues(job.options)),
    wide("Environment", keyValues(job.env)),
    wide("Working dir", job.working_dir ? h("code", {}, job.working_dir) : none()),
    wide("Inputs", list(job.inputs, (p) => h("code", {}, p))),
    wide("Outputs", list(job.outputs, (p) => h("code", {}, p))),
    accountingFields(job.accounting, field),
  );
  fill(
    $("#detail-warnings"),
    job.warnings.length
      ? h("div", { class: "warnings", role: "note" },
        h("strong", {}, "Warnings"), h("ul", {}, job.warnings.map((w) => h("li", {}, w))))
      : "",
  );
}

/** What the job cost (GET /jobs/<id> accounting), once it ended. */
function accountingFields(accounting, field) {
  if (!accounting) return [];
  const a = accounting;
  const seconds = (x) => (x == null ? none() : `${x.toFixed(2)} s`);
  return [
    field("CPU", cpuText(a) || none()),
    field("Peak memory", bytesText(a.max_rss_bytes) || none()),
    field("Wall time", seconds(a.wall_seconds)),
    a.driver_seconds != null || a.samples != null
      ? [field("Driver time", seconds(a.driver_seconds)), field("Samples", a.samples ?? none())]
      : [],
  ];
}

function keyValues(object) {
  const entries = Object.entries(object || {});
  if (!entries.length) return none();
  const text = (value) => (typeof value === "string" ? value : JSON.stringify(value));
  return h("ul", { class: "kv" },
    entries.map(([key, value]) => h("li", {}, h("code", {}, `${key}=${text(value)}`))));
}

function none() {
  return h("span", { class: "muted" }, "—");
}

// --- log ---------------------------------------------------------------------

function openLog() {
  closeLog();
  fill($("#log"));
  const job = current.job;
  log = {
    id: job.id, stream: logStream, attempt: Math.max(job.attempt, 1), offset: 0,
    source: null, timer: 0, chars: 0, failures: 0, task: logTask,
  };
  // The task rows are redrawn as they are read again: they look here.
  $("#tasks-body").dataset.selected = logTask ?? "";
  for (const tr of document.querySelectorAll("#tasks-body tr[data-index]")) {
    tr.classList.toggle("selected", Number(tr.dataset.index) === logTask);
  }
  connectLog(log);
}

function connectLog(state) {
  const params = { stream: state.stream, follow: "true", offset: state.offset };
  if (state.attempt > 1) params.attempt = state.attempt;
  if (state.task !== null) params.task = state.task;
  const source = new EventSource(streamUrl(`jobs/${state.id}/logs`, params));
  state.source = source;
  const which = `${state.stream}${state.task !== null ? ` of task ${state.task}` : ""}` +
    `${state.attempt > 1 ? ` (attempt ${state.attempt})` : ""}`;
  logStatus(`following ${which}…`);
  source.addEventListener("log", (e) => {
    state.offset = Number(e.lastEventId) || state.offset;
    state.failures = 0;
    appendLog(state, e.data);
  });
  source.addEventListener("end", () => {
    // Closed by us: EventSource would otherwise reconnect and replay it.
    source.close();
    logStatus(state.offset ? `end of ${which} · ${state.offset} bytes` : `${which} is empty`);
  });
  source.onerror = () => {
    // Reconnect ourselves from the last byte offset: the browser's own retry
    // would start again at the offset in the URL and repeat the text.
    source.close();
    if (log !== state) return;
    state.failures += 1;
    if (state.failures > LOG_RETRIES) {
      logStatus(`${which} is unavailable; reopen the job to try again`);
      return;
    }
    logStatus("connection lost; reconnecting…");
    state.timer = setTimeout(() => { if (log === state) connectLog(state); }, LOG_RETRY_MS);
  };
}

function appendLog(state, text) {
  const pre = $("#log");
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
  state.chars += text.length;
  if (state.chars > MAX_LOG_CHARS) {
    const tail = (pre.textContent + text).slice(-MAX_LOG_CHARS / 2);
    pre.textContent = `[… earlier output not shown; ${state.offset} bytes in all …]\n${tail}`;
    state.chars = pre.textContent.length;
  } else {
    pre.append(text);
  }
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

function closeLog() {
  if (!log) return;
  log.source?.close();
  clearTimeout(log.timer);
  log = null;
  logStatus("");
}

function logStatus(text) {
  $("#log-status").textContent = text;
}

// --- cancel ------------------------------------------------------------------

async function onCancel() {
  const button = $("#cancel-button");
  if (!current?.job) return;
  if (!cancelArmed) {
    // Two clicks: a stray click never cancels a long run.
    button.textContent = "Confirm cancel";
    button.classList.add("armed");
    cancelArmed = setTimeout(disarmCancel, 4000);
    return;
  }
  disarmCancel();
  const id = current.id;
  button.disabled = true;
  try {
    const result = await api(`jobs/${id}/cancel`, { method: "POST" });
    if (current?.id === id) message(`Cancel requested: the job is ${result.state}.`, "ok");
  } catch (error) {
    if (current?.id === id) message(error.message, "error");
  } finally {
    button.disabled = false;
  }
}

function disarmCancel() {
  clearTimeout(cancelArmed);
  cancelArmed = 0;
  const button = $("#cancel-button");
  button.textContent = "Cancel job";
  button.classList.remove("armed");
}

function message(text, kind = "ok") {
  const el = $("#cancel-message");
  el.hidden = !text;
  el.className = `message ${kind}`;
  el.textContent = text || "";
}
