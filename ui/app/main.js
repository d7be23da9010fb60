// The web UI's entry: the login gate, the layout (header, namespace
// switcher, navigation) and the router over `/ui/…` paths (history API; the
// server answers every such path with index.html).

import { ApiError, apiKey, call, setApiKey, setOnUnauthorized } from "./api.js";
import { h, mount, notify } from "./dom.js";
import { batchPage, batchesPage } from "./pages/batches.js";
import { endpointsPage } from "./pages/endpoints.js";
import { schedulePage, schedulesPage } from "./pages/schedules.js";
import { workflowPage } from "./pages/workflow.js";
import { workflowsPage } from "./pages/workflows.js";
import { BASE, link, navigate, nsPath, setRenderer } from "./nav.js";

/** @type {AbortController | undefined} */
let current = undefined;

const main = /** @type {HTMLElement} */ (document.getElementById("app"));
const notice = h("div", { id: "notice", class: "notice", role: "status" });

async function showLogin(message = "") {
  current?.abort();
  document.body.classList.add("login-only");
  const input = h("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "current-password", required: true });
  const error = h("p", { class: "error", role: "alert" }, message);
  const form = h(
    "form",
    { class: "login card", "aria-label": "Log in" },
    h("h1", {}, "Baton"),
    h("p", {}, "This server requires an API key."),
    h("label", { for: "api-key" }, "API key"),
    input,
    error,
    h("button", { type: "submit", class: "primary" }, "Log in"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    try {
      await call("GET", "/namespaces");
      document.body.classList.remove("login-only");
      if (location.pathname.startsWith(`${BASE}login`)) navigate("", { replace: true });
      else void render();
    } catch (err) {
      setApiKey("");
      error.textContent = err instanceof ApiError && err.status === 401 ? "That key was refused." : String(err);
    }
  });
  mount(main, form);
  input.focus();
}

/** @type {string[]} */
let namespaces = [];

async function loadNamespaces() {
  /** @type {import("../../sdk-ts/src/generated/openapi.ts").NamespaceList} */
  const list = await call("GET", "/namespaces");
  namespaces = list.namespaces.map((n) => n.name);
}

/** @param {string} ns @param {string} section */
function header(ns, section) {
  const select = h(
    "select",
    { id: "namespace", "aria-label": "Namespace" },
    namespaces.map((n) => h("option", { value: n, selected: n === ns }, n)),
  );
  select.addEventListener("change", () => navigate(`${nsPath(select.value)}/${section}`));
  /** @param {string} s @param {string} label */
  const tab = (s, label) => link(`${nsPath(ns)}/${s}`, label, { class: s === section ? "active" : "", "aria-current": s === section ? "page" : null });
  const logout = apiKey()
    ? h("button", { type: "button", class: "link", onclick: () => { setApiKey(""); void showLogin(); } }, "Log out")
    : null;
  return h(
    "header",
    { class: "top" },
    link("", "Baton", { class: "brand" }),
    h("nav", { "aria-label": "Sections" }, tab("workflows", "Workflows"), tab("schedules", "Schedules"), tab("batches", "Batches"), tab("endpoints", "Endpoints")),
    h("span", { class: "spacer" }),
    select,
    logout,
  );
}

/** Draws the page the URL names. */
export async function render() {
  current?.abort();
  const controller = new AbortController();
  current = controller;
  const rel = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : "";
  const parts = rel.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "login") return showLogin();
  try {
    await loadNamespaces();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return showLogin(apiKey() ? "That key was refused." : "");
    mount(main, h("p", { class: "error" }, `Cannot reach the server: ${String(e)}`));
    return;
  }
  document.body.classList.remove("login-only");
  if (parts[0] !== "namespaces" || parts.length < 3) {
    navigate(`${nsPath(namespaces.includes("default") ? "default" : namespaces[0] ?? "default")}/workflows`, { replace: true });
    return;
  }
  const ns = parts[1] ?? "default";
  const section = parts[2] ?? "workflows";
  const root = h("main", { id: "page" });
  // The notice line outlives a re-render (an action's message shows on the
  // page it reloads); an error from the page before does not.
  if (notice.classList.contains("error")) mount(notice);
  mount(main, header(ns, section), notice, root);
  /** @type {import("./nav.js").PageContext} */
  const ctx = { root, ns, params: parts.slice(3), query: new URLSearchParams(location.search), signal: controller.signal };
  try {
    if (section === "workflows" && parts.length === 3) await workflowsPage(ctx);
    else if (section === "workflows") await workflowPage(ctx);
    else if (section === "endpoints") await endpointsPage(ctx);
    else if (section === "schedules" && parts.length === 3) await schedulesPage(ctx);
    else if (section === "schedules") await schedulePage(ctx);
    else if (section === "batches" && parts.length === 3) await batchesPage(ctx);
    else if (section === "batches") await batchPage(ctx);
    else mount(root, h("p", {}, "No such page."));
  } catch (e) {
    if (controller.signal.aborted) return;
    notify(e instanceof Error ? e.message : String(e), "error");
  }
}

document.addEventListener("click", (e) => {
  const target = e.target instanceof Element ? e.target.closest("a") : null;
  if (!target || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || target.target || target.hasAttribute("download")) return;
  const url = new URL(target.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(BASE)) return;
  e.preventDefault();
  history.pushState(null, "", url.pathname + url.search);
  void render();
});
window.addEventListener("popstate", () => void render());
setRenderer(render);
setOnUnauthorized(() => void showLogin(apiKey() ? "That key was refused." : ""));
void render();
