// API keys through /v1/keys: list, create (the secret is shown once, here, and never again)
// and revoke. The server enforces who may do what (an admin key, and one limited to some
// users only for keys within them); a refusal is shown as the server worded it.

import { api } from "./api.js";
import { clear, confirmButton, field, h, showError, status, table, timeEl } from "./dom.js";

export async function keys(view) {
  const listing = h("section", { "aria-label": "Keys", class: "card" });
  const created = h("div", { "aria-live": "polite" });
  clear(view, h("h2", {}, "API keys"), createForm(created, () => drawList(listing)), created, listing);
  await drawList(listing);
}

async function drawList(el) {
  let found;
  try {
    found = await api.keys();
  } catch (exc) {
    clear(el, h("h3", {}, "Keys"), h("p", { class: "error" }, `${exc.status} ${exc.code}: ${exc.message}`));
    showError(exc);
    return;
  }
  const rows = found.map((key) => h("tr", { "data-id": key.id },
    h("td", {}, key.name || "—"), h("td", { class: "mono" }, key.id), h("td", {}, key.tenant_id),
    h("td", {}, key.user_ids ? key.user_ids.join(", ") : "every user"),
    h("td", {}, key.admin ? "admin" : "—"), h("td", {}, timeEl(key.created_at)),
    h("td", {}, key.revoked_at ? h("span", {}, "revoked ", timeEl(key.revoked_at))
      : confirmButton("Revoke", `Revoke ${key.name || key.id}?`, "Yes, revoke", async () => {
        await api.revokeKey(key.id);
        status(`Key ${key.name || key.id} revoked.`, "ok");
        await drawList(el);
      }))));
  clear(el, h("h3", {}, `${found.length} keys`),
    h("div", { class: "scroll" }, table(["Name", "Id", "Tenant", "Users", "Role", "Created", "State"], rows, "keys")));
}

function createForm(created, refresh) {
  const name = h("input", { name: "name", placeholder: "e.g. support agent" });
  const userIds = h("input", { name: "user_ids", placeholder: "alice, bob (empty: every user)" });
  const tenant = h("input", { name: "tenant_id", placeholder: "this key's own" });
  const admin = h("input", { type: "checkbox", name: "admin", id: "new-admin" });
  const form = h("form", { class: "inline card", "aria-label": "Create a key" },
    field("Name", name), field("User ids", userIds), field("Tenant", tenant),
    h("div", { class: "field check" }, admin, h("label", { for: "new-admin" }, "admin (manages keys)")),
    h("button", { type: "submit" }, "Create key"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const ids = userIds.value.split(",").map((u) => u.trim()).filter(Boolean);
    const body = { name: name.value.trim() || null, admin: admin.checked, user_ids: ids.length ? ids : null };
    if (tenant.value.trim()) body.tenant_id = tenant.value.trim();
    try {
      const made = await api.createKey(body);
      showSecret(created, made);
      form.reset();
      await refresh();
    } catch (exc) { showError(exc); }
  });
  return form;
}

function showSecret(el, made) {
  const secret = h("input", { readonly: true, class: "mono", value: made.secret, "aria-describedby": "secret-note" });
  clear(el, h("div", { class: "card secret" },
    h("h3", {}, `New key ${made.name || made.id}`),
    field("Secret", secret),
    h("p", { id: "secret-note" }, "Copy it now: it is shown this once. Only its hash is stored.")));
  secret.focus();
  secret.select();
}
