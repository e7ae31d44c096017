// Browse: the key's users (and the agents and sessions that belong to no user), and one
// scope's memories a page at a time (next_cursor), with filters the server applies (kind,
// state, a date range, a metadata value). A large scope is never loaded whole: "Load more"
// asks for the next page only.

import { api } from "./api.js";
import { clear, confirmButton, field, flash, h, pager, showError, status, timeEl } from "./dom.js";
import { go, listScopes } from "./users.js";

const PAGE = 50;
const KINDS = ["", "fact", "preference", "episode", "task", "procedure"];
const STATES = ["active", "any", "superseded", "invalidated", "forgotten"];
const DATES = { occurred_at: "occurred", created_at: "recorded", valid_from: "valid from" };
const NO_USER = { user_id: { exists: false } };
const NO_AGENT = { agent_id: { exists: false } };
// how each kind of scope is listed, linked and asked for: an agent's or a session's own
// memories are those with no user (and, for a session, no agent): the rest are under their user
const KINDS_OF_SCOPE = {
  user: { title: "Users", view: "browse", label: (id) => id, query: (id) => ({ user_id: id }), only: [] },
  agent: { title: "Agents", view: "agent", label: (id) => `agent ${id}`, query: (id) => ({ agent_id: id }),
    only: [NO_USER] },
  session: { title: "Sessions", view: "session", label: (id) => `session ${id}`,
    query: (id) => ({ session_id: id }), only: [NO_USER, NO_AGENT] },
};

export const browse = (view, id) => browseScope(view, "user", id);
export const browseAgent = (view, id) => browseScope(view, "agent", id);
export const browseSession = (view, id) => browseScope(view, "session", id);

async function browseScope(view, kind, id) {
  const scopes = await listScopes();
  const lists = { user: scopes.users, agent: scopes.agents, session: scopes.sessions };
  const current = id || (kind === "user" && scopes.users[0] && scopes.users[0].id) || "";
  const entry = lists[kind].find((e) => e.id === current);
  const how = KINDS_OF_SCOPE[kind];
  const pane = h("div", { class: "pane" });
  const navs = Object.entries(KINDS_OF_SCOPE)
    .filter(([k]) => k === "user" || lists[k].length)
    .map(([k, of]) => scopeNav(of, lists[k], k === kind ? current : null));
  clear(view, h("h2", {}, current ? `Memories of ${how.label(current)}` : "Browse"),
    h("div", { class: "split" }, h("div", {}, navs), pane));
  if (current) scopePane(pane, how, current, entry);
}

function scopeNav(of, entries, current) {
  const list = h("ul", { class: "users" }, entries.map((e) => h("li", {},
    h("a", { href: `#/${of.view}/${encodeURIComponent(e.id)}`, "aria-current": e.id === current ? "page" : null },
      e.id, " ", h("span", { class: "count" }, String(e.memories),
        e.inactive ? h("span", { class: "inactive" }, ` +${e.inactive} inactive`) : null)))));
  return h("nav", { class: "card", "aria-label": of.title }, h("h3", {}, of.title),
    entries.length ? list : h("p", { class: "muted" }, "This key sees no memories yet."));
}

/** One scope's memories; a scope with nothing in recall opens on every state, so it shows. */
function scopePane(pane, how, id, entry) {
  const onlyInactive = Boolean(entry && !entry.memories && entry.inactive);
  const form = filterForm(how.only, onlyInactive);
  const { rows, summary, more, load } = pager((cursor) => {
    let query;
    try { query = { ...how.query(id), limit: PAGE, cursor, ...form.query() }; } catch (exc) { status(exc.message); return null; }
    return api.page(query);
  }, row, (shown, page) => `${shown} of ${page.total} shown`, fail);
  form.el.addEventListener("submit", (e) => { e.preventDefault(); status(""); load(true).catch(fail); });
  clear(pane, form.el,
    onlyInactive ? h("p", { class: "note" }, `Nothing of ${how.label(id)} is in recall any more: `
      + "every memory was superseded, invalidated, forgotten or expired. They are shown in every state.") : null,
    summary,
    h("table", { class: "memories" }, h("caption", { class: "sr-only" }, `Memories of ${how.label(id)}`),
      h("thead", {}, h("tr", {}, ["Memory", "Kind", "State", "Occurred", "Recorded", "Valid"].map(
        (t) => h("th", { scope: "col" }, t)))), rows),
    more, how.view === "browse" ? dangerZone(id) : null);
  load(true).catch(fail);
}

const fail = showError;

export function row(item) {
  const valid = item.valid_from || item.valid_to
    ? h("span", {}, timeEl(item.valid_from), " → ", item.valid_to ? timeEl(item.valid_to) : "now") : "—";
  return h("tr", { "data-id": item.id },
    h("td", {}, h("a", { href: `#/memory/${encodeURIComponent(item.id)}` }, item.memory)),
    h("td", {}, item.kind),
    h("td", {}, h("span", { class: `state ${item.state}` }, item.state)),
    h("td", {}, timeEl(item.occurred_at)),
    h("td", {}, timeEl(item.created_at)),
    h("td", {}, valid));
}

function filterForm(only, everyState) {
  const kind = h("select", { name: "kind" }, KINDS.map((k) => h("option", { value: k }, k || "any")));
  const state = h("select", { name: "state" },
    STATES.map((s) => h("option", { value: s, selected: everyState && s === "any" }, s)));
  const dateField = h("select", { name: "date_field" },
    Object.entries(DATES).map(([v, label]) => h("option", { value: v }, label)));
  const from = h("input", { type: "date", name: "from" });
  const to = h("input", { type: "date", name: "to" });
  const metaKey = h("input", { name: "meta_key", placeholder: "e.g. topic", spellcheck: "false" });
  const metaValue = h("input", { name: "meta_value", placeholder: "e.g. travel" });
  const el = h("form", { class: "filters card", "aria-label": "Filters" },
    field("Kind", kind), field("State", state), field("Date", dateField), field("From", from), field("To", to),
    field("Metadata key", metaKey), field("Metadata value", metaValue),
    h("button", { type: "submit" }, "Apply filters"));
  function query() {
    const clauses = [...only];
    if (!["active", "any"].includes(state.value)) clauses.push({ state: state.value });
    const range = {};
    if (from.value) range.gte = `${from.value}T00:00:00Z`;
    if (to.value) range.lt = nextDay(to.value);
    if (Object.keys(range).length) clauses.push({ [dateField.value]: range });
    if (metaKey.value.trim()) clauses.push({ [`metadata.${metaKey.value.trim()}`]: literal(metaValue.value) });
    const filters = clauses.length > 1 ? { AND: clauses } : clauses[0];
    return {
      kind: kind.value || undefined,
      include_inactive: state.value !== "active",
      filters: filters ? JSON.stringify(filters) : undefined,
    };
  }
  return { el, query };
}

function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString();
}

/** A metadata value as typed: JSON when it reads as JSON (3, true, "x"), else the text itself. */
function literal(text) {
  try { return JSON.parse(text); } catch (_) { return text; }
}

function dangerZone(userId) {
  return h("details", { class: "danger-zone" }, h("summary", {}, "Delete this user"),
    h("p", {}, `Removes every memory of ${userId}, their history and jobs, with no trace left `
      + "(DELETE /v1/memories?hard=true). This cannot be undone."),
    confirmButton(`Delete all of ${userId}'s memories`, `Delete everything about ${userId}?`,
      "Yes, delete for good", async () => {
        const done = await api.forgetUser(userId);
        flash(`Deleted ${done.deleted} memories of ${userId}.`);
        go("browse");
      }));
}
