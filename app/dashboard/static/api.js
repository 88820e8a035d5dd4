// The REST API client: token handling, JSON requests, SSE URLs.

// Relative to the page (/dashboard/), so a proxy's path prefix is kept.
const BASE = new URL("../api/v1/", document.baseURI);
const TOKEN_KEY = "gantry.token";

export class ApiError extends Error {
  constructor(status, detail) {
    super(describe(detail) || `HTTP ${status}`);
    this.status = status;
    this.detail = detail;
  }

  /** The 422 items ({loc, msg}) of a validation error, else []. */
  get problems() {
    return Array.isArray(this.detail) ? this.detail : [];
  }
}

/** One sentence from the API's `detail`: a string, or a list of {loc, msg}. */
export function describe(detail) {
  if (Array.isArray(detail)) {
    return detail.map((item) => `${fieldOf(item) || "request"}: ${item.msg}`).join("; ");
  }
  return typeof detail === "string" ? detail : "";
}

/** "options.cores" from ["body", "options", "cores"]. */
export function fieldOf(item) {
  const loc = Array.isArray(item?.loc) ? item.loc : [];
  return loc.filter((part, i) => !(i === 0 && (part === "body" || part === "query"))).join(".");
}

export function getToken() {
  try {
    return localStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return ""; // storage disabled: work without a remembered token
  }
}

export function setToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: nothing to remember */
  }
}

let unauthorized = () => {};

/** Called with the server's message whenever a request answers 401. */
export function onUnauthorized(callback) {
  unauthorized = callback;
}

/** An API URL; array params repeat (state=a&state=b), empty ones are left out. */
export function apiUrl(path, params = {}) {
  const url = new URL(path, BASE);
  for (const [key, value] of Object.entries(params)) {
    for (const one of Array.isArray(value) ? value : [value]) {
      if (one !== null && one !== undefined && one !== "") url.searchParams.append(key, one);
    }
  }
  return url;
}

/** For EventSource, which cannot send headers: the token goes in the query. */
export function streamUrl(path, params = {}) {
  const url = apiUrl(path, params);
  const token = getToken();
  if (token) url.searchParams.set("access_token", token);
  return url.href;
}

/** A JSON request; throws ApiError (status 0: the server is unreachable). */
export async function api(path, { method = "GET", params, body } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(apiUrl(path, params), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, "cannot reach the gantry server; is it running?");
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data?.detail ?? response.statusText);
    if (response.status === 401) unauthorized(error.message);
    throw error;
  }
  return data;
}
