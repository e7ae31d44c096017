// One memory: every field, its source messages, its history (old text → new), a form to edit
// its text or metadata (PUT: the server keeps the old version in history), and forgetting it.

import { api } from "./api.js";
import { clear, confirmButton, field, flash, h, showError, status, table, timeEl } from "./dom.js";
import { go } from "./users.js";

const FIELDS = [
  ["id", "Id"], ["kind", "Kind"], ["state", "State"], ["user_id", "User"], ["agent_id", "Agent"],
  ["session_id", "Session"], ["subject", "About"], ["slot", "Slot"], ["importance", "Importance"],
  ["access_count", "Recalled"],
];
const DATES = [
  ["occurred_at", "Occurred"], ["created_at", "Recorded"], ["updated_at", "Updated"],
  ["valid_from", "Valid from"], ["valid_to", "Valid to"], ["invalidated_at", "Invalidated"],
  ["expires_at", "Expires"], ["last_accessed_at", "Last recalled"],
];

export async function memory(view, id) {
  const [item, history, sources] = await Promise.all([api.get(id), api.history(id), api.sources(id)]);
  clear(view,
    h("p", {}, item.user_id ? h("a", { href: `#/browse/${encodeURIComponent(item.user_id)}` },
      `← ${item.user_id}'s memories`) : null),
    h("h2", {}, "Memory"),
    h("blockquote", { class: "memory-text" }, item.memory),
    h("div", { class: "split even" }, details(item), editForm(item)),
    sourceList(sources), historyTable(history),
    h("div", { class: "card" }, h("h3", {}, "Forget"),
      h("p", {}, "Deletes this memory; its history keeps a DELETE entry."),
      confirmButton("Forget this memory", "Forget it?", "Yes, forget", async () => {
        await api.forget(id);
        flash("Memory forgotten.");
        go("browse", item.user_id || "");
      })));
}

function details(item) {
  const rows = FIELDS.filter(([k]) => item[k] !== null && item[k] !== undefined)
    .map(([k, label]) => [h("dt", {}, label), h("dd", {}, String(item[k]))]);
  const dates = DATES.filter(([k]) => item[k]).map(([k, label]) => [h("dt", {}, label), h("dd", {}, timeEl(item[k]))]);
  const link = (ref) => h("a", { href: `#/memory/${encodeURIComponent(ref)}` }, ref);
  return h("section", { class: "card", "aria-label": "Fields" }, h("h3", {}, "Fields"),
    h("dl", {}, rows, dates,
      item.superseded_by ? [h("dt", {}, "Superseded by"), h("dd", {}, link(item.superseded_by))] : null,
      item.sources.length ? [h("dt", {}, "Derived from"), h("dd", {}, item.sources.map((s) => [link(s), " "]))] : null,
      item.provenance && item.provenance.role ? [h("dt", {}, "Said by"),
        h("dd", {}, [item.provenance.role, item.provenance.name].filter(Boolean).join(" · "))] : null));
}

function editForm(item) {
  const text = h("textarea", { name: "text", rows: 3, required: true });
  text.value = item.memory;
  const metadata = h("textarea", { name: "metadata", rows: 4, spellcheck: "false", class: "mono" });
  metadata.value = JSON.stringify(item.metadata, null, 2);
  const form = h("form", { class: "card", "aria-label": "Edit" }, h("h3", {}, "Edit"),
    field("Text", text), field("Metadata (JSON object)", metadata), h("button", { type: "submit" }, "Save"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    let meta;
    try {
      meta = JSON.parse(metadata.value || "{}");
      if (meta === null || typeof meta !== "object" || Array.isArray(meta)) throw new Error("not an object");
    } catch (exc) {
      status(`Metadata must be a JSON object (${exc.message}).`);
      metadata.focus();
      return;
    }
    const body = { metadata: meta };
    if (text.value !== item.memory) body.text = text.value;
    try {
      await api.update(item.id, body);
      flash("Saved: the previous version is in the history below.");
      go("memory", item.id);
    } catch (exc) { showError(exc); }
  });
  return form;
}

function sourceList(sources) {
  return h("section", { class: "card", "aria-label": "Source messages" }, h("h3", {}, "Source messages"),
    sources.length ? h("ol", { class: "sources" }, sources.map((s) => h("li", {},
      h("a", { href: `#/memory/${encodeURIComponent(s.id)}` }, s.memory), " ",
      h("span", { class: "muted" }, [s.provenance && s.provenance.role, s.session_id].filter(Boolean).join(" · ")),
      " ", timeEl(s.occurred_at || s.created_at))))
      : h("p", { class: "muted" }, "None: this memory was stored as given, not derived from messages."));
}

function historyTable(entries) {
  const meta = (m) => (m ? JSON.stringify(m) : "");
  const rows = entries.map((e) => h("tr", {},
    h("td", {}, timeEl(e.created_at)), h("td", {}, e.event),
    h("td", {}, e.old_memory || "", e.old_metadata ? h("div", { class: "mono muted" }, meta(e.old_metadata)) : null),
    h("td", {}, e.new_memory || "", e.new_metadata ? h("div", { class: "mono muted" }, meta(e.new_metadata)) : null),
    h("td", {}, e.reason || "")));
  return h("section", { class: "card history", "aria-label": "History" }, h("h3", {}, "History"),
    table(["When", "Event", "Before", "After", "Why"], rows));
}
