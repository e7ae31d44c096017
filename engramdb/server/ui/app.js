// The inspector's shell: sign-in, the views by URL fragment (#/browse/alice, #/memory/<id>),
// and the one error region. Each view is a function that draws into the <section id="view">.

import { api, saveKey, savedKey } from "./api.js";
import { clear, h, showError, status, takeFlash } from "./dom.js";
import { browse, browseAgent, browseSession } from "./browse.js";
import { memory } from "./memory.js";
import { search } from "./search.js";
import { jobs } from "./jobs.js";
import { keys } from "./keys.js";
import { timeline } from "./timeline.js";

const VIEWS = { browse, agent: browseAgent, session: browseSession, memory, search, keys, timeline, jobs };
const $ = (id) => document.getElementById(id);

function route() {
  const [name, ...rest] = window.location.hash.replace(/^#\/?/, "").split("/");
  return { name: VIEWS[name] ? name : "browse", arg: rest.length ? decodeURIComponent(rest.join("/")) : "" };
}

async function render() {
  const { name, arg } = route();
  const message = takeFlash();
  status(message || "", "ok");
  const section = { agent: "browse", session: "browse" }[name] || name;  // an agent's list is part of Browse
  for (const link of $("nav").querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${section}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  const view = clear($("view"), h("p", { class: "muted" }, "Loading…"));
  try {
    await VIEWS[name](view, arg);
  } catch (exc) {
    clear(view);
    showError(exc);
  }
  const heading = view.querySelector("h2");
  if (heading) { heading.tabIndex = -1; heading.focus({ preventScroll: true }); }
}

function enter(label) {
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-label").textContent = label;
  $("sign-out").hidden = !savedKey();
  window.addEventListener("hashchange", render);
  render();
}

function showSignIn(message) {
  clear($("view"));
  $("nav").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  $("api-key").focus();
}

async function signIn(event) {
  event.preventDefault();
  const key = $("api-key").value.trim();
  $("sign-in-error").textContent = "";
  try {
    await api.scopes({}, key);
  } catch (exc) {
    const why = exc.status === 401 ? "This key was refused" : "Signing in failed";
    $("sign-in-error").textContent = `${why}: ${exc.message}`;
    $("api-key").select();
    return;
  }
  saveKey(key);
  $("api-key").value = "";
  enter(`Signed in · key ${key.slice(0, 8)}…`);
}

function signOut() {
  saveKey(null);
  window.removeEventListener("hashchange", render);
  showSignIn("Signed out.");
}

/** A server without keys (engramdb ui, serve --no-auth on loopback) answers without one. */
async function boot() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  window.addEventListener("engramdb:unauthorized", (event) => {
    if (!savedKey()) return;  // a server without keys never answers 401
    saveKey(null);
    window.removeEventListener("hashchange", render);
    showSignIn(`The key was refused: ${event.detail}`);
  });
  const key = savedKey();
  try {
    await api.scopes({}, key || null);
  } catch (exc) {
    if (exc.status !== 401) { showError(exc); return; }
    saveKey(null);
    showSignIn(key ? `The saved key was refused: ${exc.message}` : "");
    return;
  }
  enter(key ? `Signed in · key ${key.slice(0, 8)}…` : "Local store · no key needed");
}

boot();
