// Small render helpers of the web UI: element construction, time and
// duration formatting (local time shown, UTC on hover), JSON blocks, status
// badges, the notice line.

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | EventListener | null | undefined>} Attrs
 */

/**
 * Creates an element. Attributes starting with `on` are listeners; `false`,
 * `null` and `undefined` attributes and children are skipped.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

/**
 * @param {Element} el
 * @param {(Child | Child[])[]} children
 */
function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "number" ? String(c) : c);
  }
}

/**
 * Replaces an element's children.
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * Replaces an element's children, keeping the keyboard focus: when the
 * focus was on a child carrying `data-focus`, it moves to the new child
 * with the same value (an auto-refresh does not throw a keyboard user out).
 * @param {Element} el
 * @param {...(Child | Child[])} children
 */
export function remount(el, ...children) {
  const active = document.activeElement;
  const key = active && el.contains(active) ? active.getAttribute("data-focus") : null;
  mount(el, ...children);
  if (key === null) return;
  const again = [...el.querySelectorAll("[data-focus]")].find((e) => e.getAttribute("data-focus") === key);
  if (again instanceof HTMLElement) again.focus();
}

/** @param {string | undefined} iso */
function parse(iso) {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/** One formatter for every timestamp (making one per call is slow at 5,000 events). */
const LOCAL = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "2-digit",
  hour: "2-digit",
  minute: "2-digit",
  second: "2-digit",
});

/**
 * A timestamp in local time, with UTC on hover.
 * @param {string | undefined} iso
 */
export function time(iso) {
  const d = parse(iso);
  if (!d) return h("span", { class: "muted" }, "—");
  const local = LOCAL.format(d);
  return h("time", { datetime: d.toISOString(), title: `${d.toISOString()} (UTC)` }, local);
}

/**
 * `1.2 s`, `3 m 4 s`, `2 h 5 m`, `3 d 4 h` from milliseconds.
 * @param {number} ms
 */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} m ${Math.floor(s % 60)} s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr} h ${m % 60} m`;
  return `${Math.floor(hr / 24)} d ${hr % 24} h`;
}

/**
 * Milliseconds between two timestamps (now when `end` is absent).
 * @param {string | undefined} start
 * @param {string | undefined} [end]
 */
export function between(start, end) {
  const a = parse(start);
  if (!a) return NaN;
  const b = end ? parse(end) : new Date();
  return b ? b.getTime() - a.getTime() : NaN;
}

/**
 * A JSON value, pretty-printed.
 * @param {unknown} value
 */
export function json(value) {
  return h("pre", { class: "json" }, value === undefined ? "—" : JSON.stringify(value, null, 2));
}

/** @param {string} status */
export function badge(status) {
  return h("span", { class: `badge s-${status.toLowerCase()}` }, status);
}

/**
 * A message under the header: `kind` is `error` or `ok`.
 * @param {string} text
 * @param {"error" | "ok"} [kind]
 */
export function notify(text, kind = "ok") {
  const box = document.getElementById("notice");
  if (!box) return;
  box.className = `notice ${kind}`;
  box.setAttribute("role", kind === "error" ? "alert" : "status");
  box.textContent = text;
  if (kind === "ok") {
    setTimeout(() => {
      if (box.textContent === text) box.textContent = "";
    }, 5000);
  }
}

/**
 * A table with a header row.
 * @param {Child[]} headings
 * @param {HTMLTableRowElement[]} rows
 * @param {Attrs} [attrs]
 */
export function table(headings, rows, attrs = {}) {
  return h(
    "table",
    attrs,
    h("thead", {}, h("tr", {}, headings.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows),
  );
}

/**
 * A row of a facts table: its name as the row's header, then its value.
 * @param {string} name
 * @param {...(Child | Child[])} value
 */
export function fact(name, ...value) {
  return h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, ...value));
}

/**
 * Parses a JSON text field; empty means `undefined`.
 * @param {string} text
 * @param {string} what the field, for the error
 * @returns {unknown}
 */
export function parseJson(text, what) {
  if (!text.trim()) return undefined;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}
