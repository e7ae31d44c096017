// A user's memories and sessions on one time axis: when each thing happened (event time:
// occurred_at, else valid_from) against when it was recorded (created_at), so a fact learnt
// late shows as a long slanted line; and the supersession chains ("Paris → Berlin").
// At most LIMIT memories are drawn (the oldest, one request): a timeline of more is unreadable.

import { api } from "./api.js";
import { clear, h, table, timeEl } from "./dom.js";
import { go, listUsers, userField } from "./users.js";

const LIMIT = 500;
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 1000;
const LANES = { sessions: 30, event: 90, recorded: 170 };

export async function timeline(view, userId) {
  const users = await listUsers();
  const current = userId || (users[0] && users[0].id) || "";
  const picker = userField(users, current, (u) => go("timeline", u));
  if (!current) { clear(view, h("h2", {}, "Timeline"), picker.el); return; }
  const [page, sessions] = await Promise.all([
    api.page({ user_id: current, include_inactive: true, limit: LIMIT }), api.sessions({ user_id: current }),
  ]);
  const items = page.results;
  clear(view, h("h2", {}, `Timeline of ${current}`),
    h("div", { class: "inline card" }, picker.el,
      h("p", { class: "muted" }, `${items.length} of ${page.total} memories · ${sessions.length} sessions`)),
    h("section", { class: "card", "aria-label": "Time axis" }, h("h3", {}, "Event time and recorded time"), axis(items, sessions)),
    h("section", { class: "card chains", "aria-label": "Supersession chains" }, h("h3", {}, "What replaced what"),
      chainList(items)),
    h("section", { class: "card", "aria-label": "In event order" }, h("h3", {}, "In the order things happened"),
      eventTable(items)));
}

const eventTime = (m) => m.occurred_at || m.valid_from || m.created_at;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function axis(items, sessions) {
  const times = items.flatMap((m) => [eventTime(m), m.created_at]).concat(sessions.flatMap((s) => [s.start, s.end]))
    .map((t) => new Date(t).getTime());
  if (!times.length) return h("p", { class: "muted" }, "Nothing to draw.");
  const lo = Math.min(...times);
  const span = Math.max(...times) - lo || 1;
  const x = (t) => 110 + ((new Date(t).getTime() - lo) / span) * (WIDTH - 130);
  const art = svg("svg", { viewBox: `0 0 ${WIDTH} 210`, role: "img", class: "axis",
    "aria-label": "Memories on a time axis: when each happened against when it was recorded" });
  for (const [lane, y] of Object.entries(LANES)) {
    art.append(svg("line", { x1: 100, x2: WIDTH - 10, y1: y, y2: y, class: "lane" }),
      svg("text", { x: 0, y: y + 4, class: "lane-label" }, lane === "event" ? "happened" : lane));
  }
  for (const s of sessions) {
    art.append(svg("rect", { x: x(s.start), y: LANES.sessions - 7, height: 14, rx: 3, class: "session",
      width: Math.max(4, x(s.end) - x(s.start)) }, svg("title", {}, `session ${s.session_id}: ${s.turns} turns`)));
  }
  for (const m of items) {
    const title = svg("title", {}, `${m.memory} (${m.kind}, ${m.state})`);
    art.append(svg("g", { class: `mark ${m.state}` },
      svg("line", { x1: x(eventTime(m)), y1: LANES.event, x2: x(m.created_at), y2: LANES.recorded }),
      svg("circle", { cx: x(eventTime(m)), cy: LANES.event, r: 5 }),
      svg("circle", { cx: x(m.created_at), cy: LANES.recorded, r: 3 }), title));
  }
  art.append(svg("text", { x: 110, y: 204, class: "tick" }, new Date(lo).toISOString().slice(0, 10)),
    svg("text", { x: WIDTH - 10, y: 204, class: "tick end" }, new Date(lo + span).toISOString().slice(0, 10)));
  return art;
}

/** Each chain from its first memory (the one nothing replaced) through superseded_by to the last. */
export function chains(items) {
  const byId = new Map(items.map((m) => [m.id, m]));
  const replaced = new Set(items.map((m) => m.superseded_by).filter(Boolean));
  return items.filter((m) => m.superseded_by && !replaced.has(m.id)).map((first) => {
    const chain = [first];
    const seen = new Set([first.id]);
    let next = byId.get(first.superseded_by);
    while (next && !seen.has(next.id)) { chain.push(next); seen.add(next.id); next = byId.get(next.superseded_by); }
    return chain;
  });
}

function chainList(items) {
  const found = chains(items);
  if (!found.length) return h("p", { class: "muted" }, "Nothing was replaced.");
  return h("ol", {}, found.map((chain) => h("li", { class: "chain" }, chain.map((m, i) => [
    i ? h("span", { class: "arrow", "aria-label": "replaced by" }, " → ") : null,
    h("a", { href: `#/memory/${encodeURIComponent(m.id)}` }, m.memory), " ",
    h("span", { class: "muted" }, "(", timeEl(m.valid_from || eventTime(m)), ")")]))));
}

function eventTable(items) {
  const rows = [...items].sort((a, b) => new Date(eventTime(a)) - new Date(eventTime(b))).map((m) => h("tr", {},
    h("td", {}, timeEl(eventTime(m))), h("td", {}, timeEl(m.created_at)),
    h("td", {}, h("a", { href: `#/memory/${encodeURIComponent(m.id)}` }, m.memory)),
    h("td", {}, m.kind), h("td", {}, h("span", { class: `state ${m.state}` }, m.state))));
  return table(["Happened", "Recorded", "Memory", "Kind", "State"], rows, "events");
}
