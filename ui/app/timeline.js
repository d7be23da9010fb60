// The timeline: a Gantt chart of a run's activities, timers, child
// workflows and updates on one canvas. Only the rows in view are drawn (the
// scroll area holds a spacer as tall as all rows), so thousands of items
// stay fast. Hovering a row names it; clicking selects it; with the
// keyboard, the arrows move a cursor over the rows and Enter selects.

import { duration, h } from "./dom.js";

const ROW = 22;
const LABEL = 240;
const AXIS = 24;

/** @type {Record<string, string>} item state → colour variable */
const COLOURS = {
  Completed: "--ok",
  Fired: "--ok",
  Failed: "--bad",
  TimedOut: "--bad",
  StartFailed: "--bad",
  Canceled: "--muted",
  Terminated: "--bad",
};

/**
 * @param {import("./history.js").Item[]} all every item of the run
 * @param {{ now: number, onSelect: (item: import("./history.js").Item) => void }} options
 */
export function timeline(all, options) {
  const items = all.filter((i) => i.kind !== "event" && i.kind !== "workflow-task");
  const t0 = Math.min(...all.map((i) => i.start));
  const t1 = Math.max(t0 + 1, ...all.map((i) => i.end ?? options.now));
  const scroller = h("div", { class: "timeline", tabindex: "0", role: "img", "aria-label": `Timeline of ${items.length} activities, timers, children and updates` });
  const spacer = h("div", {});
  // Through CSSOM: the UI's Content-Security-Policy refuses style attributes.
  spacer.style.height = `${AXIS + items.length * ROW}px`;
  const canvas = h("canvas", {});
  const tip = h("div", { class: "tip", hidden: true });
  scroller.append(canvas, spacer, tip);
  if (items.length === 0) return h("p", { class: "muted" }, "No activities, timers, child workflows or updates in this history.");

  let frame = 0;
  /** The keyboard's row, or -1. */
  let cursor = -1;
  const draw = () => {
    frame = 0;
    const width = scroller.clientWidth;
    const height = Math.min(scroller.clientHeight, AXIS + items.length * ROW);
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.floor(width * dpr);
    canvas.height = Math.floor(height * dpr);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
    canvas.style.top = `${scroller.scrollTop}px`;
    const g = canvas.getContext("2d");
    if (!g) return;
    const css = getComputedStyle(scroller);
    /** @param {string} v */
    const colour = (v) => css.getPropertyValue(v).trim() || "#888";
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, width, height);
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    const span = Math.max(1, width - LABEL - 12);
    /** @param {number} t */
    const x = (t) => LABEL + ((t - t0) / (t1 - t0)) * span;
    // Axis: five ticks, offsets from the run's start.
    g.fillStyle = colour("--muted");
    g.strokeStyle = colour("--line");
    for (let k = 0; k <= 4; k++) {
      const t = t0 + ((t1 - t0) * k) / 4;
      const px = x(t);
      g.beginPath();
      g.moveTo(px, AXIS - 4);
      g.lineTo(px, height);
      g.stroke();
      g.textAlign = k === 4 ? "right" : "left";
      g.fillText(`+${duration(t - t0)}`, px + (k === 4 ? -2 : 2), AXIS / 2);
    }
    g.textAlign = "left";
    // Rows scroll under the axis, never over it.
    g.save();
    g.beginPath();
    g.rect(0, AXIS, width, height - AXIS);
    g.clip();
    const firstRow = Math.floor(scroller.scrollTop / ROW);
    const rows = Math.ceil((height - AXIS) / ROW) + 1;
    for (let r = firstRow; r < Math.min(items.length, firstRow + rows); r++) {
      const item = items[r];
      if (!item) continue;
      const y = AXIS + (r - firstRow) * ROW - (scroller.scrollTop % ROW);
      if (y < AXIS - ROW) continue;
      if (r === cursor) {
        g.fillStyle = colour("--line");
        g.fillRect(0, y, width, ROW);
      }
      g.fillStyle = colour("--fg");
      const label = `${item.kind} ${item.name}${item.attempts > 1 ? ` ×${item.attempts}` : ""}`;
      g.fillText(label.length > 34 ? `${label.slice(0, 33)}…` : label, 6, y + ROW / 2, LABEL - 10);
      const a = x(item.start);
      const b = Math.max(a + 2, x(item.end ?? options.now));
      g.fillStyle = colour(COLOURS[item.state] ?? "--accent");
      g.globalAlpha = item.end === undefined ? 0.55 : 1;
      g.fillRect(a, y + 5, b - a, ROW - 10);
      g.globalAlpha = 1;
    }
    g.restore();
  };
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };
  scroller.addEventListener("scroll", schedule);
  new ResizeObserver(schedule).observe(scroller);
  /** @param {MouseEvent} e */
  const rowAt = (e) => {
    const rect = scroller.getBoundingClientRect();
    const y = e.clientY - rect.top - AXIS + scroller.scrollTop;
    return y < 0 ? undefined : items[Math.floor(y / ROW)];
  };
  scroller.addEventListener("mousemove", (e) => {
    const item = rowAt(e);
    if (!item) {
      tip.hidden = true;
      return;
    }
    tip.hidden = false;
    tip.textContent = `${item.kind} ${item.name}: ${item.state}, ${duration((item.end ?? options.now) - item.start)}${item.attempts > 1 ? `, ${item.attempts} attempts` : ""}`;
    tip.style.top = `${e.clientY - scroller.getBoundingClientRect().top + scroller.scrollTop + 14}px`;
    tip.style.left = `${Math.min(e.clientX - scroller.getBoundingClientRect().left, scroller.clientWidth - 260)}px`;
  });
  scroller.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  scroller.addEventListener("click", (e) => {
    const item = rowAt(e);
    if (item) options.onSelect(item);
  });
  scroller.addEventListener("keydown", (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, PageDown: 10, PageUp: -10, Home: -items.length, End: items.length }[e.key];
    if (step !== undefined) {
      e.preventDefault();
      cursor = Math.max(0, Math.min(items.length - 1, (cursor < 0 ? 0 : cursor) + (cursor < 0 ? 0 : step)));
      const top = cursor * ROW;
      const view = scroller.clientHeight - AXIS;
      if (top < scroller.scrollTop) scroller.scrollTop = top;
      else if (top + ROW > scroller.scrollTop + view) scroller.scrollTop = top + ROW - view;
      const item = items[cursor];
      if (item) scroller.setAttribute("aria-label", `Timeline row ${cursor + 1} of ${items.length}: ${item.kind} ${item.name}, ${item.state}`);
      schedule();
    } else if (e.key === "Enter" && cursor >= 0) {
      const item = items[cursor];
      if (item) options.onSelect(item);
    }
  });
  scroller.dataset.rows = String(items.length);
  schedule();
  return scroller;
}
