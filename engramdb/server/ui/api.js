// Every call the inspector makes: the /v1 routes, with the visitor's key as a Bearer token.
// The server decides what the key may see; an error answer ({"error": {"code", "message"}})
// becomes an ApiError carrying the status and the server's own message, for the page to show.

const STORAGE = "engramdb.key";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function savedKey() {
  return sessionStorage.getItem(STORAGE);
}

export function saveKey(key) {
  if (key) sessionStorage.setItem(STORAGE, key);
  else sessionStorage.removeItem(STORAGE);
}

function url(path, query) {
  const u = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") u.searchParams.set(name, String(value));
  }
  return u;
}

async function failure(response) {
  // a proxy in front of the server may answer with something that is not our JSON
  try {
    const body = await response.json();
    if (body && body.error) return new ApiError(response.status, body.error.code, body.error.message);
  } catch (_) { /* not JSON: fall through to the status line */ }
  return new ApiError(response.status, "http_error", `${response.status} ${response.statusText}`);
}

/** One request. `key` overrides the saved key (sign-in tries a key before keeping it). */
export async function call(method, path, { query, body, key } = {}) {
  const headers = { Accept: "application/json" };
  const secret = key === undefined ? savedKey() : key;
  if (secret) headers.Authorization = `Bearer ${secret}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url(path, query), {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (exc) {
    throw new ApiError(0, "unreachable", `the server could not be reached (${exc.message})`);
  }
  if (!response.ok) throw await failure(response);
  return response.json();
}

export const api = {
  scopes: (query, key) => call("GET", "/v1/scopes", { query, key }),
  page: (query) => call("GET", "/v1/memories", { query }),
  get: (id) => call("GET", `/v1/memories/${encodeURIComponent(id)}`),
  update: (id, body) => call("PUT", `/v1/memories/${encodeURIComponent(id)}`, { body }),
  forget: (id) => call("DELETE", `/v1/memories/${encodeURIComponent(id)}`),
  forgetUser: (userId) => call("DELETE", "/v1/memories", { query: { user_id: userId, hard: true } }),
  history: (id) => call("GET", `/v1/memories/${encodeURIComponent(id)}/history`),
  sources: (id) => call("GET", `/v1/memories/${encodeURIComponent(id)}/sources`),
  search: (body) => call("POST", "/v1/search", { body }),
  context: (body) => call("POST", "/v1/context", { body }),
  sessions: (query) => call("GET", "/v1/sessions", { query }),
  keys: () => call("GET", "/v1/keys"),
  createKey: (body) => call("POST", "/v1/keys", { body }),
  revokeKey: (id) => call("DELETE", `/v1/keys/${encodeURIComponent(id)}`),
  jobs: (query) => call("GET", "/v1/jobs", { query }),
  retryJob: (id) => call("POST", `/v1/jobs/${encodeURIComponent(id)}/retry`),
};
