// Extraction jobs through /v1/jobs: the failed ones by default (the LLM was down for every
// attempt, and nothing retries them by itself), a page at a time, each with a button that
// runs it again now (POST /v1/jobs/<id>/retry) and shows how it ended.

import { api } from "./api.js";
import { clear, field, h, pager, showError, status, timeEl } from "./dom.js";

const PAGE = 50;
const STATES = ["failed", "pending", "done", "any"];

export async function jobs(view, wanted) {
  const state = h("select", { name: "state" },
    STATES.map((s) => h("option", { value: s, selected: s === (wanted || "failed") }, s)));
  const form = h("form", { class: "inline card", "aria-label": "Which jobs" }, field("State", state),
    h("button", { type: "submit" }, "Show"));
  const { rows, summary, more, load } = pager(
    (cursor) => api.jobs({ state: state.value, cursor, limit: PAGE }), jobRow,
    (shown) => (shown ? `${shown} ${named()}jobs shown` : `No ${named()}jobs.`), showError);
  function named() { return state.value === "any" ? "" : `${state.value} `; }
  form.addEventListener("submit", (e) => { e.preventDefault(); status(""); load(true).catch(showError); });
  clear(view, h("h2", {}, "Extraction jobs"),
    h("p", { class: "muted" }, "A job derives facts from stored messages with the LLM. One that failed for "
      + "good is retried only when asked: retry it once the LLM answers again."),
    form, summary,
    h("div", { class: "scroll" }, h("table", { class: "jobs" }, h("caption", { class: "sr-only" }, "Extraction jobs"),
      h("thead", {}, h("tr", {}, ["Created", "Scope", "Messages", "State", "Attempts", "Error", "Derived", ""].map(
        (t) => h("th", { scope: "col" }, t)))), rows)),
    more);
  await load(true);
}

function scopeText(job) {
  return [job.user_id && `user ${job.user_id}`, job.agent_id && `agent ${job.agent_id}`,
    job.session_id && `session ${job.session_id}`].filter(Boolean).join(" · ") || "—";
}

function jobRow(job) {
  const tr = h("tr", { "data-id": job.id });
  fill(tr, job);
  return tr;
}

function fill(tr, job) {
  const messages = job.episode_ids.map((id, n) => [h("a", { href: `#/memory/${encodeURIComponent(id)}` },
    `message ${n + 1}`), " "]);
  const derived = job.results.filter((r) => r.kind !== "episode").map((r) => h("div", {},
    h("a", { href: `#/memory/${encodeURIComponent(r.id)}` }, r.memory)));
  const retry = job.state === "done" ? "" : h("button", { type: "button", onclick: () => rerun(tr, job) }, "Retry");
  clear(tr, h("td", {}, timeEl(job.created_at)), h("td", {}, scopeText(job)), h("td", {}, messages),
    h("td", {}, h("span", { class: `state job-${job.state}` }, job.state)), h("td", {}, String(job.attempts)),
    h("td", { class: "job-error" }, job.error || ""), h("td", {}, derived), h("td", {}, retry));
}

async function rerun(tr, job) {
  const button = tr.querySelector("button");
  button.disabled = true;
  button.textContent = "Retrying…";
  try {
    const ended = await api.retryJob(job.id);
    fill(tr, ended);
    if (ended.state === "done") status(`Job ${job.id} done: ${ended.results.length} results.`, "ok");
    else status(`Job ${job.id} failed again: ${ended.error}`);
  } catch (exc) {
    showError(exc);
    fill(tr, job);
  }
  const again = tr.querySelector("button");
  if (again) again.focus();
}
