// The job panel's parts for lab work: an instrument job's data (live plots and
// downloads) and an array job's tasks. detail.js calls show() when a job
// opens or changes and hide() when it closes.

import { api, streamUrl } from "./api.js";
import {
  $, STATES, TERMINAL, badge, fill, formatDuration, fullTime, h, shortTime,
} from "./dom.js";
import { followData } from "./plot.js";

const TASK_PAGE = 100;
const TASK_POLL_MS = 2000;

let data = null; // {id, follower, waiting: the job has not started}
let tasks = null; // {id, timer, after, items}

/** The job (JobShown) is open or changed. */
export function show(job) {
  showData(job);
  showTasks(job);
}

export function hide() {
  stopData();
  stopTasks();
  $("#detail-data").hidden = true;
  $("#detail-tasks").hidden = true;
}

/** For the bench and tests: what the open job's plots drew. */
export function plotStats() {
  return data?.follower.stats() ?? [];
}

// --- data: plots and downloads -----------------------------------------------

function showData(job) {
  const section = $("#detail-data");
  if (job.kind !== "instrument") {
    stopData();
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const ended = TERMINAL.has(job.state);
  downloads(job, ended);
  const status = (text) => fill($("#data-status"), text);
  if (data?.id === job.id) {
    if (data.waiting && job.state === "running") status("following the data live…");
    data.waiting &&= job.state !== "running";
    return;
  }
  stopData();
  // Nothing is stored before the job runs; follow=true waits for it.
  const waiting = job.state === "queued" || job.state === "submitted";
  const names = [...new Set(job.payload.method.map((task) => task.component_role))];
  data = { id: job.id, follower: followData($("#plots"), job.id, names, status), waiting };
  if (waiting) status("the job has not started: its data shows here as it is taken");
}

function stopData() {
  data?.follower.stop();
  data = null;
  fill($("#plots"));
  fill($("#data-status"));
}

function downloads(job, ended) {
  const link = (label, path, params, file, enabled = true, why = "") =>
    enabled
      ? h("a", { class: "button ghost", href: streamUrl(path, params), download: file }, label)
      : h("span", { class: "button ghost disabled", title: why, "aria-disabled": "true" }, label);
  const id = job.id;
  fill(
    $("#data-downloads"),
    link("CSV", `jobs/${id}/data`, { format: "csv" }, `job-${id}.csv`),
    link("JSON", `jobs/${id}/data`, { format: "json", limit: 100000 }, `job-${id}.json`),
    link("NetCDF", `jobs/${id}/data`, { format: "netcdf" }, `job-${id}.nc`, ended,
      "NetCDF is made once the job ended"),
    link("RO-Crate", `jobs/${id}/crate`, {}, `job-${id}-crate.zip`, ended,
      "the crate is made once the job ended"),
  );
}

// --- array tasks -----------------------------------------------------------------

function showTasks(job) {
  const section = $("#detail-tasks");
  if (!job.tasks) {
    stopTasks();
    section.hidden = true;
    return;
  }
  section.hidden = false;
  const { count, limit, by_state: byState } = job.tasks;
  fill($("#tasks-summary"),
    `${job.array}: ${count} task${count === 1 ? "" : "s"}`,
    limit ? `, at most ${limit} at once` : "");
  const order = ["pending", ...STATES.filter((s) => s in byState)];
  fill($("#tasks-counts"), order.filter((s) => s in byState).map((state) =>
    h("span", { class: `counter state-${state === "pending" ? "queued" : state}`, dataset: { state } },
      h("span", { class: "count" }, String(byState[state])),
      h("span", { class: "label" }, state))));
  if (tasks?.id !== job.id) {
    stopTasks();
    tasks = { id: job.id, timer: 0, after: null, items: new Map() };
    loadTasks(tasks, true);
  }
  // Tasks change without job events: read them again while the array runs.
  clearInterval(tasks.timer);
  if (!TERMINAL.has(job.state)) {
    const mine = tasks;
    mine.timer = setInterval(() => loadTasks(mine, true), TASK_POLL_MS);
  } else {
    loadTasks(tasks, true); // the final states
  }
}

function stopTasks() {
  if (tasks) clearInterval(tasks.timer);
  tasks = null;
  fill($("#tasks-body"));
}

/** From the first task (`fresh`) or on from the last one shown. */
async function loadTasks(mine, fresh) {
  const shown = mine.items.size;
  const want = fresh ? Math.max(TASK_PAGE, shown) : TASK_PAGE;
  const items = [];
  let after = fresh ? null : mine.after;
  let page;
  try {
    do {
      page = await api(`jobs/${mine.id}/tasks`, { params: { after, limit: Math.min(want, 1000) } });
      items.push(...page.items);
      after = page.next_after;
    } while (after !== null && items.length < want);
  } catch (error) {
    if (tasks === mine) fill($("#tasks-body"), emptyRow(`Could not load tasks: ${error.message}`));
    return;
  }
  if (tasks !== mine) return;
  if (fresh) mine.items.clear();
  for (const task of items) mine.items.set(task.index, task);
  mine.after = after;
  const rows = [...mine.items.values()].map(taskRow);
  fill($("#tasks-body"), rows.length ? rows : emptyRow("No task has started yet."));
  const more = $("#tasks-more");
  more.hidden = after === null;
  more.onclick = () => loadTasks(mine, false);
}

function emptyRow(text) {
  return h("tr", {}, h("td", { colspan: 8, class: "empty" }, text));
}

function taskRow(task) {
  const started = task.started_at ? Date.parse(task.started_at) : null;
  const ended = task.ended_at ? Date.parse(task.ended_at) : null;
  const showLog = () => document.dispatchEvent(new CustomEvent("gantry:task-log", { detail: task.index }));
  const selected = $("#tasks-body").dataset.selected === String(task.index);
  return h("tr", {
    dataset: { index: task.index },
    class: selected ? "clickable selected" : "clickable",
    title: "Show this task's log (again: the array's)",
    onclick: showLog,
  },
    h("td", { class: "num" }, String(task.index)),
    h("td", {}, badge(task.state)),
    h("td", { class: "num" }, task.exit_code ?? ""),
    h("td", { class: "time", title: fullTime(task.started_at) }, shortTime(task.started_at)),
    h("td", { class: "num" }, started && ended ? formatDuration(ended - started) : ""),
    h("td", { class: "num", title: cpuText(task.accounting) }, cpuTotal(task.accounting)),
    h("td", { class: "num" }, bytesText(task.accounting?.max_rss_bytes) || ""),
    h("td", { class: "reason", title: task.reason || "" }, task.reason || ""),
  );
}

// --- accounting ----------------------------------------------------------------------

/** "0.93 s user + 0.08 s sys", or "" when the CPU was not measured. */
export function cpuText(accounting) {
  const user = accounting?.cpu_user_seconds;
  const sys = accounting?.cpu_system_seconds;
  if (user == null && sys == null) return "";
  const s = (x) => (x == null ? "?" : `${x.toFixed(2)} s`);
  return `${s(user)} user + ${s(sys)} sys`;
}

/** "0.93 s": user plus system (the row's title has each). */
function cpuTotal(accounting) {
  const user = accounting?.cpu_user_seconds;
  const sys = accounting?.cpu_system_seconds;
  return user == null && sys == null ? "" : `${((user ?? 0) + (sys ?? 0)).toFixed(2)} s`;
}

/** "212.4 MiB" */
export function bytesText(bytes) {
  if (bytes == null) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return i ? `${value.toFixed(1)} ${units[i]}` : `${value} B`;
}
