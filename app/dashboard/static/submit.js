// The submit form: one command job, the API's 422 messages shown beside it.
// submitJob() is shared with the Measure form.

import { api, fieldOf } from "./api.js";
import { $, fill, h, toast } from "./dom.js";

// Form fields by the API field they fill (for marking the invalid ones).
const INPUTS = ["name", "backend", "spec", "options", "depends_on", "tags", "priority"];

export function initSubmit() {
  $("#submit-form").addEventListener("submit", onSubmit);
}

/** Fill the backend choices (keeps the current choice). */
export function setBackendChoices(backends) {
  const select = $("#submit-form").elements.backend;
  const chosen = select.value;
  fill(
    select,
    h("option", { value: "" }, "server default"),
    backends.map((b) => h("option", { value: b.name, disabled: !b.running },
      b.running ? b.name : `${b.name} (not running)`)),
  );
  select.value = backends.some((b) => b.name === chosen) ? chosen : "";
}

function onSubmit(event) {
  return submitJob(event, {
    read: (form) => readForm(form.elements),
    result: $("#submit-result"),
    showErrors,
    toProblem: (p) => ({ field: fieldOf(p), msg: p.msg }),
  });
}

/**
 * Send a form's job and open it. `read(form)` returns the body or throws
 * what is wrong ({field, msg}, or a list of them); `toProblem` turns the
 * API's 422 items into the same, for `showErrors`.
 */
export async function submitJob(event, { read, result, showErrors: show, toProblem }) {
  event.preventDefault();
  const form = event.currentTarget;
  const button = form.querySelector("button[type=submit]");
  show([]);
  let body;
  try {
    body = read(form);
  } catch (problems) {
    show(Array.isArray(problems) ? problems : [problems]);
    return;
  }
  button.disabled = true;
  fill(result, "submitting…");
  try {
    const job = await api("jobs", { method: "POST", body });
    fill(result, "Submitted ", h("a", { href: `#/jobs/${job.id}` }, `job #${job.id}`), ".");
    if (job.warnings.length) toast(`Job ${job.id} has warnings: see its panel.`, "warn");
    location.hash = `#/jobs/${job.id}`;
  } catch (error) {
    fill(result);
    show(error.problems.length
      ? error.problems.map(toProblem)
      : [{ field: "", msg: error.message }]);
  } finally {
    button.disabled = false;
  }
}

/** The JobCreate body; throws {field, msg} for what the browser can tell is wrong. */
function readForm(fields) {
  const body = {
    name: fields.name.value.trim(),
    spec: fields.spec.value,
    options: parseOptions(fields.options.value),
    depends_on: words(fields.depends_on.value).map((w) => (/^\d+$/.test(w) ? Number(w) : w)),
    tags: words(fields.tags.value),
    priority: fields.priority.value === "" ? 0 : Number(fields.priority.value),
  };
  if (fields.backend.value) body.backend = fields.backend.value;
  if (!Number.isInteger(body.priority)) {
    throw { field: "priority", msg: "give a whole number between -1000 and 1000" };
  }
  return body;
}

/** "cores=2" lines to {cores: 2}: JSON values (numbers, true, ...) or plain text. */
function parseOptions(text) {
  const options = {};
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (!line || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    if (eq < 1) throw { field: "options", msg: `line ${index + 1}: write key=value, e.g. cores=2` };
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    try {
      options[key] = JSON.parse(value);
    } catch {
      options[key] = value;
    }
  });
  return options;
}

function words(text) {
  return text.split(/[\s,]+/).filter(Boolean);
}

function showErrors(problems) {
  const form = $("#submit-form");
  for (const name of INPUTS) form.elements[name].removeAttribute("aria-invalid");
  const box = $("#submit-errors");
  box.hidden = problems.length === 0;
  fill(box, problems.length ? h("ul", {}, problems.map(({ field, msg }) => {
    const input = form.elements[field.split(".")[0]];
    if (input && INPUTS.includes(input.name)) input.setAttribute("aria-invalid", "true");
    return h("li", {}, field ? h("strong", {}, `${field}: `) : "", msg);
  })) : "");
}
