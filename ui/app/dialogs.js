// Modal forms for actions (native <dialog>: focus trap, Escape closes).
// Every action asks for confirmation; the fields are the action's inputs
// (a reason, a name and JSON, …). The action runs on submit; its error is
// shown in the dialog, which stays open.

import { h } from "./dom.js";

/**
 * @typedef {{ name: string, label: string, kind?: "text" | "json" | "select" | "number" | "datetime", value?: string, options?: string[], required?: boolean, placeholder?: string }} Field
 */

/**
 * Opens a dialog; resolves true once `action` succeeded, false when closed.
 * @param {{ title: string, text?: string, fields?: Field[], confirm: string, danger?: boolean, action: (values: Record<string, string>) => Promise<void> }} spec
 * @returns {Promise<boolean>}
 */
export function openDialog(spec) {
  return new Promise((resolve) => {
    const error = h("p", { class: "error", role: "alert" });
    /** @type {Record<string, HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement>} */
    const inputs = {};
    const rows = (spec.fields ?? []).map((f) => {
      const id = `f-${f.name}`;
      /** @type {HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement} */
      let input;
      if (f.kind === "json") {
        input = h("textarea", { id, name: f.name, rows: 4, spellcheck: "false", placeholder: f.placeholder ?? "JSON, e.g. {\"key\": 1}" });
      } else if (f.kind === "select") {
        input = h("select", { id, name: f.name }, (f.options ?? []).map((o) => h("option", { value: o }, o)));
      } else {
        const type = f.kind === "number" ? "number" : f.kind === "datetime" ? "datetime-local" : "text";
        input = h("input", { id, name: f.name, type, placeholder: f.placeholder ?? "", required: f.required ?? false, step: f.kind === "datetime" ? "1" : null });
      }
      if (f.value !== undefined) input.value = f.value;
      inputs[f.name] = input;
      return h("div", { class: "field" }, h("label", { for: id }, f.label), input);
    });
    const submit = h("button", { type: "submit", class: spec.danger ? "danger" : "primary" }, spec.confirm);
    const cancel = h("button", { type: "button" }, "Cancel");
    const form = h("form", { method: "dialog" }, h("h2", {}, spec.title), spec.text ? h("p", {}, spec.text) : null, rows, error, h("div", { class: "buttons" }, cancel, submit));
    const dialog = h("dialog", { class: "card", "aria-label": spec.title }, form);
    let done = false;
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(done);
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      /** @type {Record<string, string>} */
      const values = {};
      for (const [k, input] of Object.entries(inputs)) values[k] = input.value;
      submit.disabled = true;
      error.textContent = "";
      try {
        await spec.action(values);
        done = true;
        dialog.close();
      } catch (err) {
        error.textContent = err instanceof Error ? err.message : String(err);
      } finally {
        submit.disabled = false;
      }
    });
    document.body.append(dialog);
    dialog.showModal();
    const first = Object.values(inputs)[0];
    (first ?? submit).focus();
  });
}
