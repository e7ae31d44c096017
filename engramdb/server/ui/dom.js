// Building the page: elements made with text nodes only, never from HTML strings, so a
// memory's text (which came from a conversation) is always shown and never interpreted.

/** h("p", {class: "x"}, "text", child) — attributes, then children (strings become text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A labelled form control: the label names the input for screen readers and clicks. */
let counter = 0;
export function field(label, control) {
  const id = control.id || `f${++counter}`;
  control.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), control);
}

/** A date as the page shows it: local date and time, minutes; "—" for none. */
export function when(value) {
  if (!value) return "—";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  });
}

export function timeEl(value) {
  return value ? h("time", { datetime: value, title: value }, when(value)) : h("span", {}, "—");
}

/** Show a message in the page's alert region (errors) or clear it. */
export function status(message, kind = "error") {
  const box = document.getElementById("status");
  clear(box, message ? h("p", { class: kind }, message) : null);
  box.hidden = !message;
}

/** A message to show once the next view is drawn (a view change clears the region). */
let pending = null;
export function flash(message) { pending = message; }
export function takeFlash() { const m = pending; pending = null; return m; }

/** An error answer shown as the server worded it; a 401 (the key revoked meanwhile) ends the sign-in. */
export function showError(exc) {
  if (exc.status === 401) window.dispatchEvent(new CustomEvent("engramdb:unauthorized", { detail: exc.message }));
  const prefix = exc.status ? `${exc.status} ${exc.code}: ` : "";
  status(prefix + exc.message);
}

/** A two-step action: the first press asks, the second (on the confirm button) does it. */
export function confirmButton(label, question, confirmLabel, action) {
  const wrap = h("span", { class: "confirm" });
  const start = h("button", { type: "button", class: "danger", onclick: ask }, label);
  function ask() {
    const yes = h("button", { type: "button", class: "danger", onclick: run }, confirmLabel);
    const no = h("button", { type: "button", onclick: reset }, "Cancel");
    clear(wrap, h("span", { class: "question" }, question), " ", yes, " ", no);
    yes.focus();
  }
  async function run() {
    try { await action(); } catch (exc) { showError(exc); reset(); }
  }
  function reset() { clear(wrap, start); start.focus(); }
  wrap.append(start);
  return wrap;
}

export function table(headers, rows, cls) {
  return h("table", { class: cls },
    h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
    h("tbody", {}, rows));
}

/** A list read a page at a time: `rows` (a tbody), a `summary` line and a "Load more" button.
 * `fetch(cursor)` returns a page (`results`, `next_cursor`) or nothing to stop; `describe(shown,
 * page)` words the summary. `load(true)` starts again from the first page. */
export function pager(fetch, rowOf, describe, onError) {
  const rows = h("tbody", {});
  const summary = h("p", { class: "muted", "aria-live": "polite" });
  const more = h("button", { type: "button", hidden: true }, "Load more");
  let cursor = null;
  let shown = 0;

  async function load(fresh) {
    if (fresh) { cursor = null; shown = 0; rows.replaceChildren(); }
    const page = await fetch(cursor);
    if (!page) return;
    rows.append(...page.results.map(rowOf));
    shown += page.results.length;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    summary.textContent = describe(shown, page);
  }
  more.addEventListener("click", () => load(false).catch(onError));
  return { rows, summary, more, load };
}
