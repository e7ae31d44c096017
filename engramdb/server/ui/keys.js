// Not drawn yet.
import { clear, h } from "./dom.js";

export async function keys(view) {
  clear(view, h("h2", {}, "keys"), h("p", { class: "muted" }, "This view is not available yet."));
}
