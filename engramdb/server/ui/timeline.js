// Not drawn yet.
import { clear, h } from "./dom.js";

export async function timeline(view) {
  clear(view, h("h2", {}, "timeline"), h("p", { class: "muted" }, "This view is not available yet."));
}
