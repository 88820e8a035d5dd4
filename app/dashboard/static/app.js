// The dashboard's entry point: views by URL hash, the live events stream, the token prompt.
//
// #/jobs, #/jobs/<id> (detail panel open), #/submit, #/pipelines, #/devices,
// #/measure, #/backends.

import { api, getToken, onUnauthorized, setToken, streamUrl } from "./api.js";
import { loadBackends } from "./backends.js";
import {
  closeDetail, initDetail, onEvent as detailEvent, openDetail, retryDetail,
} from "./detail.js";
import { $, toast } from "./dom.js";
import { plotStats } from "./instrument.js";
import {
  applyEvent, initJobs, reloadJobs, selectJob, setBackendChoices as setFilterBackends,
} from "./jobs.js";
import { showLab } from "./lab.js";
import { initMeasure, loadMeasure } from "./measure.js";
import { initSubmit, setBackendChoices as setSubmitBackends } from "./submit.js";

const VIEWS = ["jobs", "submit", "pipelines", "devices", "measure", "backends"];
const RECONNECT_MS = 3000;

let events = null; // the EventSource of /events
let lastEventId = 0; // resume point after a reconnect
let reconnectTimer = 0;

function route() {
  const hash = location.hash || "#/jobs";
  const detail = /^#\/jobs\/(\d+)$/.exec(hash);
  const name = detail ? "jobs" : hash.slice(2);
  const view = VIEWS.includes(name) ? name : "jobs";
  for (const v of VIEWS) $(`#view-${v}`).hidden = v !== view;
  for (const link of document.querySelectorAll(".tabs a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const id = detail ? Number(detail[1]) : null;
  selectJob(id);
  if (id !== null) openDetail(id);
  else closeDetail();
  if (view === "backends") refreshBackends();
  showLab(view);
  if (view === "measure") loadMeasure();
  const title = id !== null ? `Job ${id}` : `${view[0].toUpperCase()}${view.slice(1)}`;
  document.title = `${title} · gantry`;
}

async function refreshBackends() {
  try {
    const backends = await loadBackends();
    setFilterBackends(backends.map((b) => b.name));
    setSubmitBackends(backends);
  } catch {
    /* shown in the backends view; 401 opens the token prompt */
  }
}

// --- live events ---------------------------------------------------------------

/**
 * Where the stream should start: the latest event of the newest job. The
 * stream replays everything after it, so nothing that happened after the
 * table was read is missed, and the whole history is not replayed.
 */
async function startingPoint() {
  const newest = await api("jobs", { params: { limit: 1 } });
  if (!newest.items.length) return 0;
  const page = await api(`jobs/${newest.items[0].id}/events`);
  return Math.max(0, ...page.items.map((e) => e.id));
}

function connectEvents() {
  events?.close();
  clearTimeout(reconnectTimer);
  live("connecting");
  const source = new EventSource(streamUrl("events", { follow: "true", after: lastEventId }));
  events = source;
  source.onopen = () => live("live");
  source.addEventListener("job", (message) => {
    const event = JSON.parse(message.data);
    lastEventId = Math.max(lastEventId, event.id);
    applyEvent(event);
    detailEvent(event);
  });
  source.onerror = () => {
    if (source.readyState === EventSource.CONNECTING) {
      live("reconnecting"); // the browser retries, sending Last-Event-ID
      return;
    }
    // Closed for good (an HTTP error such as 401): find out why, then retry.
    live("offline");
    reconnectTimer = setTimeout(async () => {
      try {
        await api("events", { params: { after: lastEventId, limit: 1 } });
      } catch (error) {
        if (error.status === 401) return; // the token prompt restarts everything
      }
      if (events === source) connectEvents();
    }, RECONNECT_MS);
  };
}

function live(state) {
  const labels = {
    connecting: "connecting", live: "live", reconnecting: "reconnecting…", offline: "offline",
  };
  $("#live").dataset.state = state;
  $("#live-text").textContent = labels[state];
}

// --- token -----------------------------------------------------------------------

function openTokenDialog(reason) {
  const dialog = $("#token-dialog");
  $("#token-reason").textContent = reason ? `The server said: ${reason}` : "";
  $("#token-forget").hidden = !getToken();
  if (!dialog.open) dialog.showModal();
  dialog.querySelector("input").focus();
}

function initToken() {
  const dialog = $("#token-dialog");
  const form = $("#token-form");
  onUnauthorized((message) => openTokenDialog(message));
  $("#token-button").addEventListener("click", () => openTokenDialog(""));
  $("#token-close").addEventListener("click", () => dialog.close());
  $("#token-forget").addEventListener("click", () => {
    setToken("");
    dialog.close();
    toast("Token forgotten.");
    start();
  });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const token = form.elements.token.value.trim();
    if (!token) return;
    setToken(token);
    form.reset();
    dialog.close();
    start();
  });
  showTokenState();
}

function showTokenState() {
  const button = $("#token-button");
  const set = Boolean(getToken());
  button.classList.toggle("has-token", set);
  button.title = set ? "An API token is set: change or forget it" : "Set an API token";
}

// --- start -------------------------------------------------------------------------

/** (Re)load everything: at start, after the token changed, and while the server is away. */
async function start() {
  showTokenState();
  events?.close();
  events = null;
  clearTimeout(reconnectTimer);
  refreshBackends();
  let from;
  try {
    from = await startingPoint();
  } catch (error) {
    live("offline");
    reloadJobs(); // the table says why
    // On 401 the token prompt calls start() again.
    if (error.status !== 401) reconnectTimer = setTimeout(start, RECONNECT_MS);
    return;
  }
  lastEventId = from;
  reloadJobs();
  connectEvents();
  retryDetail();
}

initJobs();
initDetail();
initSubmit();
initMeasure();
initToken();
// What the open job's plots drew (bench/bench_dashboard.py reads it).
window.gantryPlotStats = plotStats;
$("#backends-refresh").addEventListener("click", refreshBackends);
window.addEventListener("hashchange", route);
route();
start();
