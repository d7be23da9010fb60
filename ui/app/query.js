// Builds the visibility list filter (Temporal's syntax, openapi's
// `list_filter`) of the workflows page from its filters and free-form query,
// maps the API's `invalid_query` column back into the user's text, and
// writes the queries of the batch jobs the page starts (a selection, or
// the running runs the view matches).

/** The run statuses as list filters name them, by the API's RunStatus. */
export const STATUSES = /** @type {const} */ ({
  RUNNING: "Running",
  COMPLETED: "Completed",
  FAILED: "Failed",
  CANCELED: "Canceled",
  TERMINATED: "Terminated",
  CONTINUED_AS_NEW: "ContinuedAsNew",
  TIMED_OUT: "TimedOut",
});

/**
 * The workflows page's view, as its URL holds it.
 * @typedef {{ status: string, type: string, id: string, from: string, to: string, q: string }} View
 */

/** @param {string} s */
export function quote(s) {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/**
 * Splits `… ORDER BY …` off a query (outside quotes and backticks).
 * @param {string} q
 * @returns {{ where: string, order: string }}
 */
function splitOrder(q) {
  /** @type {string | null} */
  let inQuote = null;
  for (let i = 0; i < q.length; i++) {
    const c = q.charAt(i);
    if (inQuote) {
      if (c === "\\") i++;
      else if (c === inQuote) inQuote = null;
    } else if (c === "'" || c === '"' || c === "`") {
      inQuote = c;
    } else if (/^ORDER\s+BY\b/i.test(q.slice(i)) && (i === 0 || /\s|\)/.test(q.charAt(i - 1)))) {
      return { where: q.slice(0, i).trim(), order: q.slice(i).trim() };
    }
  }
  return { where: q.trim(), order: "" };
}

/**
 * The filter clauses of a view (without its free-form query).
 * @param {View} view
 * @param {{ status?: boolean }} [options] `status: false` leaves the status out (the counts)
 */
function clauses(view, options = {}) {
  const out = [];
  const status = /** @type {Record<string, string>} */ (STATUSES)[view.status];
  if (options.status !== false && status) out.push(`ExecutionStatus = ${quote(status)}`);
  if (view.type) out.push(`WorkflowType = ${quote(view.type)}`);
  if (view.id) out.push(`WorkflowId STARTS_WITH ${quote(view.id)}`);
  if (view.from) out.push(`StartTime >= ${quote(new Date(view.from).toISOString())}`);
  if (view.to) out.push(`StartTime <= ${quote(new Date(view.to).toISOString())}`);
  return out;
}

/**
 * The list filter of a view and the offset of the user's query in it (to
 * map error columns back).
 * @param {View} view
 * @param {{ status?: boolean, order?: boolean, suffix?: string }} [options]
 * @returns {{ query: string, offset: number }}
 */
export function buildQuery(view, options = {}) {
  const { where, order } = splitOrder(view.q);
  const parts = clauses(view, options);
  let query = "";
  let offset = 0;
  if (where) {
    query = `(${where})`;
    offset = 1;
  }
  for (const c of parts) query = query ? `${query} AND ${c}` : c;
  if (options.order !== false && order) query = `${query} ${order}`.trim();
  if (options.suffix) query = `${query} ${options.suffix}`.trim();
  return { query, offset };
}

/**
 * Where in the user's text an `invalid_query` problem points, or undefined
 * when it points into what the filters added.
 * @param {View} view
 * @param {{ offset: number }} built
 * @param {number | undefined} column 1-based, in the built query
 */
export function userColumn(view, built, column) {
  if (column === undefined) return undefined;
  const { where } = splitOrder(view.q);
  const c = column - built.offset;
  return where && c >= 1 && c <= where.length + 1 ? c : undefined;
}

/** Matches the runs that are open. */
const RUNNING = `ExecutionStatus = ${quote(STATUSES.RUNNING)}`;

/**
 * The query of a batch job over the running runs a view matches (a batch
 * query takes no ORDER BY), or "" when there are none to name: the view
 * filters nothing (a job over every run of the namespace is not one click
 * away) or only closed runs.
 * @param {View} view
 */
export function matchingQuery(view) {
  if (view.status && view.status !== "RUNNING") return "";
  const { query } = buildQuery(view, { status: false, order: false });
  if (!query && !view.status) return "";
  return query ? `${query} AND ${RUNNING}` : RUNNING;
}

/**
 * The query of a batch job over chosen runs: their run ids, and only while
 * they run (one that closed meanwhile is left alone, not a failure).
 * @param {string[]} runIds
 */
export function selectionQuery(runIds) {
  return `RunId IN (${runIds.map(quote).join(", ")}) AND ${RUNNING}`;
}
