// Who a key can see, from GET /v1/scopes?include_inactive=true (one row per user, agent and
// session holding memories, with how many are in recall and how many are not), summed per
// user; agents and sessions that belong to no user are listed apart. A user whose memories are
// all superseded, invalidated or forgotten is listed too (0 in recall), to be inspected.

import { api } from "./api.js";
import { field, h } from "./dom.js";

const present = (v) => v !== null && v !== undefined;

export async function listScopes() {
  const users = new Map();
  const agents = new Map();
  const sessions = new Map();
  for (const scope of await api.scopes({ include_inactive: true })) {
    let into = null;
    if (present(scope.user_id)) into = [users, scope.user_id];
    else if (present(scope.agent_id)) into = [agents, scope.agent_id];
    else if (present(scope.session_id)) into = [sessions, scope.session_id];
    if (!into) continue;
    const [counts, id] = into;
    const entry = counts.get(id) || { id, memories: 0, inactive: 0 };
    entry.memories += scope.memories;
    entry.inactive += scope.inactive || 0;
    counts.set(id, entry);
  }
  const sorted = (counts) => [...counts.values()].sort((a, b) => a.id.localeCompare(b.id));
  return { users: sorted(users), agents: sorted(agents), sessions: sorted(sessions) };
}

export async function listUsers() {
  return (await listScopes()).users;
}

/** A <select> of the users (with a free-text fallback when the key sees none yet). */
export function userField(users, current, onchange) {
  if (!users.length) {
    const input = h("input", { name: "user", value: current || "", required: true, placeholder: "user id" });
    if (onchange) input.addEventListener("change", () => onchange(input.value));
    return { el: field("User", input), value: () => input.value.trim() };
  }
  const select = h("select", { name: "user" },
    users.map((u) => h("option", { value: u.id, selected: u.id === current }, `${u.id} (${u.memories})`)));
  if (onchange) select.addEventListener("change", () => onchange(select.value));
  return { el: field("User", select), value: () => select.value };
}

/** Show another view; the same one again is drawn afresh (after a change that alters it). */
export function go(...parts) {
  const hash = "#/" + parts.map((p) => encodeURIComponent(p)).join("/");
  if (window.location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = hash;
}
