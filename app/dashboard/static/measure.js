// The Measure view: one instrument job on a pipeline, one task per role. The
// techniques come from each component's capabilities, the parameters from its
// writable attrs, and values are checked against the attrs' limits and
// options before anything is sent; the server checks them again (422).

import { api, fieldOf } from "./api.js";
import { $, fill, h } from "./dom.js";
import { limitsText } from "./lab.js";
import { submitJob } from "./submit.js";

// SI prefixes: "20 ms" for an attr in "s" is checked here; other units are the server's.
const PREFIXES = { p: 1e-12, n: 1e-9, u: 1e-6, "µ": 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9 };
const QUANTITY = /^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)$/;

let pipelines = []; // PipelineInfo
let components = new Map(); // "device/channel" -> ComponentStatus (with attrs)

export function initMeasure() {
  const form = $("#measure-form");
  form.elements.pipeline.addEventListener("change", () => renderTasks());
  form.addEventListener("submit", onSubmit);
}

/** Read pipelines and components again (the view was opened). */
export async function loadMeasure() {
  const form = $("#measure-form");
  const select = form.elements.pipeline;
  try {
    pipelines = await api("pipelines");
    const listed = await api("components");
    const details = await Promise.all(listed.filter((c) => c.available)
      .map((c) => api(`components/${c.device}/${c.channel}`).catch(() => null)));
    components = new Map(details.filter(Boolean).map((c) => [`${c.device}/${c.channel}`, c]));
  } catch (error) {
    fill(select, h("option", { value: "" }, "could not load pipelines"));
    showErrors([{ field: "", msg: error.message }]);
    return;
  }
  const chosen = select.value;
  fill(select, pipelines.length ? pipelines.map((p) => h("option", { value: p.name },
    `${p.name}${p.sample ? ` · ${p.sample}` : ""}${p.ready ? " · ready" : ""}`))
    : h("option", { value: "" }, "no pipelines"));
  if (pipelines.some((p) => p.name === chosen)) select.value = chosen;
  renderTasks();
}

function chosenPipeline() {
  return pipelines.find((p) => p.name === $("#measure-form").elements.pipeline.value);
}

function renderTasks() {
  const form = $("#measure-form");
  const pipeline = chosenPipeline();
  showErrors([]);
  if (!pipeline) {
    fill($("#measure-tasks"));
    return;
  }
  if (pipeline.sample) form.elements.sample.value = pipeline.sample;
  const state = pipeline.sample === null
    ? "holds no sample: the job waits until its sample is loaded and the pipeline marked ready"
    : pipeline.ready ? `holds ${pipeline.sample} and is ready`
      : `holds ${pipeline.sample} but is not ready: the job waits until it is marked ready`;
  fill($("#sample-help"), `${pipeline.name} ${state}.`);
  fill($("#measure-tasks"), pipeline.components.map((c) => roleFieldset(c)));
}

function roleFieldset(member) {
  const component = components.get(`${member.device}/${member.channel}`);
  const role = member.role;
  const name = (field) => `${role}.${field}`;
  if (!component) {
    return h("fieldset", { class: "task", dataset: { role } },
      h("legend", {}, `${role}: ${member.device}/${member.channel}`),
      h("p", { class: "muted" }, "This component is unavailable: the role cannot be measured now."));
  }
  const params = Object.entries(component.attrs).filter(([, a]) => a.rw);
  return h("fieldset", { class: "task", dataset: { role } },
    h("legend", {}, `${role}: ${member.device}/${member.channel} (${component.driver})`),
    h("div", { class: "row" },
      h("label", { class: "check" },
        h("input", { type: "checkbox", name: name("include"), checked: true }), "measure this role"),
      h("label", {}, "Technique",
        h("select", { name: name("technique") },
          component.capabilities.map((t) => h("option", { value: t }, t)))),
      h("label", {}, "Duration", h("input", { name: name("max_duration"), value: "10 s" })),
      h("label", {}, "Sampling interval", h("input", { name: name("sampling_interval"), value: "1 s" })),
    ),
    params.length ? h("div", { class: "params" }, params.map(([attr, a]) => paramInput(role, attr, a)))
      : h("p", { class: "muted small" }, "No writable attrs: the technique takes no parameters."),
  );
}

function paramInput(role, attr, a) {
  const limits = limitsText(a);
  const hint = [a.type, a.units, limits && `limits ${limits}`].filter(Boolean).join(", ");
  const input = a.options
    ? h("select", { name: `${role}.param.${attr}` }, h("option", { value: "" }, "(unchanged)"),
      a.options.map((o) => h("option", { value: String(o) }, String(o))))
    : h("input", {
      name: `${role}.param.${attr}`, autocomplete: "off", placeholder: "(unchanged)",
      inputmode: a.type === "str" ? null : "decimal",
    });
  return h("label", { class: "param" }, h("span", {}, attr, " ", h("small", {}, hint)), input);
}

/**
 * A param's value as sent, or throws a message naming the attr's limits.
 * Numbers may carry units: the attr's own, or the same with an SI prefix, are
 * checked here; other units go to the server unchanged.
 */
export function checkParam(attr, a, raw) {
  const text = raw.trim();
  const limits = limitsText(a);
  const bounds = limits ? ` (the attr's limits: ${limits})` : "";
  if (a.options) {
    if (!a.options.map(String).includes(text)) {
      throw `${attr}: ${JSON.stringify(text)} is not one of ${a.options.join(", ")}`;
    }
    return a.options.find((o) => String(o) === text);
  }
  if (a.type !== "float" && a.type !== "int") return text;
  const match = QUANTITY.exec(text);
  if (!match) throw `${attr}: ${JSON.stringify(text)} is not a number${a.units ? ` of ${a.units}` : ""}${bounds}`;
  const number = Number(match[1]);
  const unit = match[2];
  let value = number; // in the attr's units
  if (unit && unit !== a.units) {
    const prefix = a.units && unit.endsWith(a.units) ? unit.slice(0, -a.units.length) : null;
    if (prefix === null || !(prefix in PREFIXES)) return text; // the server converts it
    value = number * PREFIXES[prefix];
  }
  if (a.type === "int" && !Number.isInteger(value)) throw `${attr}: ${text} is not a whole number`;
  const shown = `${text}${unit || !a.units ? "" : ` ${a.units}`}`;
  if (a.minimum != null && value < a.minimum) throw `${attr}: ${shown} is below the minimum${bounds}`;
  if (a.maximum != null && value > a.maximum) throw `${attr}: ${shown} is above the maximum${bounds}`;
  return unit ? text : number;
}

/** The JobCreate body; throws a list of {field, msg} found before sending. */
function readForm(form) {
  const pipeline = chosenPipeline();
  const problems = [];
  if (!pipeline) throw [{ field: "pipeline", msg: "choose a pipeline" }];
  const method = [];
  for (const member of pipeline.components) {
    const component = components.get(`${member.device}/${member.channel}`);
    const get = (field) => form.elements[`${member.role}.${field}`];
    if (!component || !get("include").checked) continue;
    const task = {
      component_role: member.role,
      technique_name: get("technique").value,
      max_duration: get("max_duration").value.trim(),
      sampling_interval: get("sampling_interval").value.trim(),
      task_params: {},
    };
    for (const field of ["max_duration", "sampling_interval"]) {
      if (!task[field]) problems.push({ field: `${member.role}.${field}`, msg: `${member.role}: give a ${field.replace("_", " ")}, e.g. 10 s` });
    }
    for (const [attr, a] of Object.entries(component.attrs)) {
      const input = form.elements[`${member.role}.param.${attr}`];
      if (!a.rw || !input || input.value.trim() === "") continue;
      try {
        task.task_params[attr] = checkParam(attr, a, input.value);
      } catch (msg) {
        problems.push({ field: input.name, msg: `${member.role}: ${msg}` });
      }
    }
    method.push(task);
  }
  if (!method.length) problems.push({ field: "", msg: "measure at least one role" });
  if (problems.length) throw problems;
  return {
    name: form.elements.name.value.trim(),
    payload: { sample: { name: form.elements.sample.value.trim() }, method },
  };
}

function onSubmit(event) {
  return submitJob(event, {
    read: readForm,
    result: $("#measure-result"),
    showErrors,
    toProblem: (p) => ({ field: serverField(p), msg: `${fieldOf(p)}: ${p.msg}` }),
  });
}

/** The form field of a 422 item: body.payload.method.<i>.task_params.<attr>. */
function serverField(problem) {
  const loc = fieldOf(problem).split(".");
  if (loc[0] !== "payload") return loc[0];
  if (loc[1] === "sample") return "sample";
  // Tasks are in the order of the roles measured.
  const roles = [...document.querySelectorAll("#measure-tasks fieldset")]
    .filter((f) => f.querySelector("input[type=checkbox]")?.checked).map((f) => f.dataset.role);
  const role = roles[Number(loc[2])];
  if (!role) return "";
  if (loc[3] === "task_params" && loc[4]) return `${role}.param.${loc[4]}`;
  return loc[3] ? `${role}.${loc[3]}` : "";
}

function showErrors(problems) {
  const form = $("#measure-form");
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const box = $("#measure-errors");
  box.hidden = problems.length === 0;
  fill(box, problems.length ? h("ul", {}, problems.map(({ field, msg }) => {
    const input = field ? form.elements[field] : null;
    if (input instanceof Element) input.setAttribute("aria-invalid", "true");
    return h("li", {}, msg);
  })) : "");
}
