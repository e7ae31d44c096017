// Search as the agent does: POST /v1/search with explain, so each hit shows the parts of its
// score (ScoreDetail), and the block POST /v1/context would put into the prompt within a
// token budget, with the memory each [n] cites.

import { api } from "./api.js";
import { clear, field, h, showError, table, timeEl } from "./dom.js";
import { go, listUsers, userField } from "./users.js";

const fixed = (digits) => (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
// each part of a score, in the order the pipeline applies them; "—" means that part did not apply
const PARTS = [
  ["Dense", (e) => (e.dense_rank ? `#${e.dense_rank} · ${fixed(3)(e.dense_similarity)}` : "—")],
  ["Lexical", (e) => (e.lexical_rank ? `#${e.lexical_rank} · BM25 ${fixed(2)(e.lexical_bm25)}` : "—")],
  ["Fused", (e) => fixed(4)(e.fused)],
  ["Speaker", (e) => fixed(2)(e.speaker)],
  ["When", (e) => fixed(2)(e.when)],
  ["Holds", (e) => fixed(2)(e.outdated)],
  ["Recency", (e) => fixed(3)(e.recency)],
  ["Importance", (e) => fixed(2)(e.importance)],
  ["Cosine", (e) => fixed(3)(e.cosine)],
  ["Coverage", (e) => fixed(2)(e.coverage)],
  ["Reach", (e) => fixed(2)(e.reach)],
  ["Relevance", (e) => fixed(3)(e.relevance)],
];

export async function search(view, userId) {
  const users = await listUsers();
  const user = userField(users, userId || (users[0] && users[0].id), (u) => go("search", u));
  const query = h("input", { name: "query", type: "search", required: true, placeholder: "what the agent would ask" });
  const limit = h("input", { name: "limit", type: "number", min: 1, max: 100, value: 10 });
  const inactive = h("input", { name: "include_invalid", type: "checkbox" });
  const nameless = h("input", { name: "dense_without_speakers", type: "checkbox" });
  const budget = h("input", { name: "max_tokens", type: "number", min: 0, value: 400 });
  const reference = h("input", { name: "reference_date", type: "datetime-local" });
  // empty: the server's default; 0 fills the limit whatever the relevance
  const threshold = h("input", { name: "threshold", type: "number", min: 0, max: 1, step: 0.05, placeholder: "default" });
  const span = h("p", { class: "time-range", "aria-live": "polite", hidden: true });
  const dense = h("p", { class: "dense-query", "aria-live": "polite", hidden: true });
  const hits = h("section", { "aria-label": "Results", class: "hits" });
  const context = h("section", { "aria-label": "Context", class: "card" });
  const form = h("form", { class: "inline card", role: "search", "aria-label": "Search memories" },
    user.el, h("div", { class: "field wide" }, h("label", { for: "q" }, "Query"), Object.assign(query, { id: "q" })),
    field("Limit", limit), field("Relevance threshold", threshold), field("Context budget (tokens)", budget),
    field("Asked at (UTC, default now)", reference),
    h("div", { class: "field check" }, inactive, h("label", { for: "inv" }, "include no-longer-valid")),
    h("div", { class: "field check" }, nameless, h("label", { for: "nameless" }, "embed without speakers' names")),
    h("button", { type: "submit" }, "Search"));
  inactive.id = "inv";
  nameless.id = "nameless";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const scope = { user_id: user.value(), query: query.value, reference_date: asUtc(reference.value) };
    try {
      const [found, built] = await Promise.all([
        api.search({ ...scope, limit: Number(limit.value) || 10, include_invalid: inactive.checked, explain: true,
          ...(threshold.value === "" ? {} : { threshold: Number(threshold.value) }),
          ...(nameless.checked ? { options: { dense_without_speakers: true } } : {}) }),
        api.context({ ...scope, max_tokens: Number(budget.value) || 0 }),
      ]);
      drawRange(span, found.time_range);
      drawDense(dense, found.dense_query);
      drawHits(hits, found.results);
      drawContext(context, built);
    } catch (exc) { showError(exc); }
  });
  clear(view, h("h2", {}, "Search like the agent does"), form, span, dense,
    h("div", { class: "split even" }, hits, context));
  query.focus();
}

/** A datetime-local value ("2024-05-14T12:00") read as UTC; empty stays unset (the server's now). */
function asUtc(value) {
  return value ? new Date(`${value}Z`).toISOString() : undefined;
}

/** A UTC bound as the range names it: its day, and the time when it is not midnight. */
function bound(value) {
  if (!value) return "open";
  const iso = new Date(value).toISOString();
  return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : `${iso.slice(0, 16).replace("T", " ")}`;
}

/** The time range the search resolved to (explain's time_range): what a phrase like "last Friday" meant. */
function drawRange(el, range) {
  el.hidden = !range;
  if (!range) { clear(el); return; }
  const from = range.source === "query" ? ["read from ", h("q", {}, range.expression), " in the query"]
    : "given as time_range";
  clear(el, h("strong", {}, "Time range: "),
    h("span", { class: "range mono" }, `${bound(range.start)} → ${bound(range.end)}`),
    " (UTC, end excluded), ", from, range.source === "query" ? ": memories from then rank first." : ".");
}

/** The text the dense retriever embedded (explain's dense_query): the query without the scope's speakers. */
function drawDense(el, text) {
  el.hidden = !text;
  if (!text) { clear(el); return; }
  clear(el, h("strong", {}, "Dense query: "), h("q", {}, text),
    " (the names of the scope's speakers left out; BM25 reads the whole query).");
}

function drawHits(el, results) {
  if (!results.length) {
    clear(el, h("p", { class: "muted" }, "Nothing found: no memory is relevant enough to answer (threshold 0 shows the closest)."));
    return;
  }
  clear(el, h("h3", {}, `${results.length} results`), h("ol", { class: "hit-list" }, results.map(hit)));
}

function hit(result) {
  const e = result.explain || {};
  return h("li", { class: "card hit" },
    h("p", { class: "hit-text" }, h("a", { href: `#/memory/${encodeURIComponent(result.id)}` }, result.memory)),
    h("p", { class: "muted" }, `score ${fixed(4)(result.score)} · relevance ${fixed(3)(result.relevance)} · ${result.kind} · `,
      h("span", { class: `state ${result.state}` }, result.state), " · ", timeEl(result.occurred_at || result.created_at)),
    h("table", { class: "explain" }, h("caption", { class: "sr-only" }, "Parts of the score"),
      h("thead", {}, h("tr", {}, PARTS.map(([label]) => h("th", { scope: "col" }, label)))),
      h("tbody", {}, h("tr", {}, PARTS.map(([label, show]) => h("td", { "data-part": label }, show(e)))))));
}

function drawContext(el, built) {
  const rows = built.items.map((item) => h("tr", {},
    h("td", {}, `[${item.ref}]`), h("td", {}, item.section),
    h("td", {}, h("a", { href: `#/memory/${encodeURIComponent(item.id)}` }, item.memory)),
    h("td", {}, item.kind), h("td", {}, timeEl(item.when))));
  clear(el, h("h3", {}, "Context block"),
    h("p", { class: "muted" }, `${built.tokens} of ${built.max_tokens} tokens (${built.encoding})`,
      built.dropped ? ` · ${built.dropped} left out to fit the budget` : ""),
    h("pre", { class: "context-text" }, built.text || "(empty)"),
    h("h3", {}, "Citations"), table(["Ref", "Section", "Memory", "Kind", "When"], rows));
}
