// Not drawn yet.
import { clear, h } from "./dom.js";

export async function search(view) {
  clear(view, h("h2", {}, "search"), h("p", { class: "muted" }, "This view is not available yet."));
}
