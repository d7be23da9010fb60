// Navigation inside the single-page app: UI paths under /ui/, links, and the
// page context every page gets. main.js registers the renderer.

import { h } from "./dom.js";

export const BASE = "/ui/";

/**
 * What a page gets: where it draws, the namespace, the path's parameters
 * after the section, the URL's query, and a signal that aborts when the
 * user navigates away (timers and refresh loops stop on it).
 * @typedef {{ root: HTMLElement, ns: string, params: string[], query: URLSearchParams, signal: AbortSignal }} PageContext
 */

/** @type {() => Promise<void>} */
let renderer = async () => {};

/** @param {() => Promise<void>} f */
export function setRenderer(f) {
  renderer = f;
}

/**
 * Goes to a UI path (relative to /ui/), adding it to the browser history.
 * @param {string} path
 * @param {{ replace?: boolean, render?: boolean }} [options] `render: false` only rewrites the URL
 */
export function navigate(path, options = {}) {
  const url = BASE + path.replace(/^\//, "");
  if (options.replace) history.replaceState(null, "", url);
  else history.pushState(null, "", url);
  if (options.render !== false) void renderer();
}

/**
 * A link inside the UI.
 * @param {string} path relative to /ui/
 * @param {import("./dom.js").Child} text
 * @param {import("./dom.js").Attrs} [attrs]
 */
export function link(path, text, attrs = {}) {
  return h("a", { href: BASE + path.replace(/^\//, ""), ...attrs }, text);
}

/** @param {string} ns */
export const nsPath = (ns) => `namespaces/${encodeURIComponent(ns)}`;

/**
 * The UI path of a run.
 * @param {string} ns
 * @param {string} workflowId
 * @param {string} [runId]
 * @param {string} [tab]
 */
export function runPath(ns, workflowId, runId, tab) {
  const q = new URLSearchParams();
  if (runId) q.set("run_id", runId);
  if (tab) q.set("tab", tab);
  const s = q.toString();
  return `${nsPath(ns)}/workflows/${encodeURIComponent(workflowId)}${s ? `?${s}` : ""}`;
}

/**
 * The UI path of a batch job.
 * @param {string} ns
 * @param {string} batchId
 */
export const batchPath = (ns, batchId) => `${nsPath(ns)}/batches/${encodeURIComponent(batchId)}`;
