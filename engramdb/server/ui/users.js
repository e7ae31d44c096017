// The users a key can see, from GET /v1/scopes (one row per user, agent and session that hold
// memories), summed per user; and the small picker the views share.

import { api } from "./api.js";
import { field, h } from "./dom.js";

export async function listUsers() {
  const counts = new Map();
  for (const scope of await api.scopes({})) {
    if (scope.user_id === null || scope.user_id === undefined) continue;
    counts.set(scope.user_id, (counts.get(scope.user_id) || 0) + scope.memories);
  }
  return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([id, memories]) => ({ id, memories }));
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
