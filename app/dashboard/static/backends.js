// The backends view: what the server has installed and runs, and its health.

import { api } from "./api.js";
import { $, fill, h } from "./dom.js";

/** Load /backends, render the view, and return the list (for the select boxes). */
export async function loadBackends() {
  const body = $("#backends-body");
  const note = (text) => h("tr", {}, h("td", { colspan: 7, class: "empty" }, text));
  let backends;
  try {
    backends = await api("backends");
  } catch (error) {
    fill(body, note(`Could not load backends: ${error.message}`));
    throw error;
  }
  fill(body, backends.length ? backends.map(row) : note("No backends are installed."));
  return backends;
}

function row(backend) {
  const health = backend.healthy === null
    ? h("span", { class: "badge health-unknown" }, "unknown")
    : h("span", { class: `badge health-${backend.healthy ? "ok" : "bad"}` },
      backend.healthy ? "healthy" : "unhealthy");
  const defaults = Object.entries(backend.option_defaults);
  return h("tr", {},
    h("td", {}, h("strong", {}, backend.name)),
    h("td", {}, backend.running ? "yes" : "no"),
    h("td", {}, health),
    h("td", { class: "wrap" }, backend.message),
    h("td", {}, defaults.length
      ? h("ul", { class: "kv" }, defaults.map(([key, value]) =>
        h("li", {}, h("code", {}, value === null ? key : `${key}=${JSON.stringify(value)}`))))
      : h("span", { class: "muted" }, "none")),
    h("td", {}, backend.supports_dependencies ? "native" : "by gantry"),
    h("td", {}, h("code", {}, backend.entry_point)),
  );
}
