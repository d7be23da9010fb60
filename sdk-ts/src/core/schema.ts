/**
 * Input schemas a handler publishes in its description (docs/protocol.md
 * §1.5): plain JSON Schema objects given on definitions, wrapped into the
 * schema of the payload as sent, the array of positional arguments.
 */

/** A JSON Schema (2020-12 unless it says `$schema`), as a plain object. */
export type JsonSchema = Record<string, unknown> | boolean;

/** Schemas of a handler's arguments: `schema` for its first one, or `args`, one each. */
export interface SchemaOptions {
  schema?: JsonSchema;
  args?: JsonSchema[];
}

/** A signal, update or query definition that may carry its arguments' schemas. */
export interface MessageSchema extends SchemaOptions {
  type: "signal" | "update" | "query";
  name: string;
}

/** What {@link withSchema} attaches to a workflow: its input and its handlers' definitions. */
export interface WorkflowSchemaOptions extends SchemaOptions {
  handlers?: readonly MessageSchema[];
}

const SCHEMAS = Symbol.for("baton.schemas");

/**
 * Attaches input schemas to a workflow or activity function and returns
 * it: the handler's description publishes them, `baton endpoint register`
 * registers them, and the server refuses payloads that break them. For a
 * workflow, `handlers` lists the signal, update and query definitions
 * (made with a `schema` option) whose schemas to publish with it.
 */
export function withSchema<F extends (...args: never[]) => unknown>(fn: F, options: WorkflowSchemaOptions): F {
  Object.defineProperty(fn, SCHEMAS, { value: options, enumerable: false });
  return fn;
}

/** The payload schema of `options`, or `undefined` when they give none. */
export function argsSchema(options: SchemaOptions): JsonSchema | undefined {
  const args = options.args ?? (options.schema === undefined ? undefined : [options.schema]);
  if (args === undefined) return undefined;
  return { type: "array", prefixItems: args, minItems: args.length };
}

/** The description's `schemas` for these workflow and activity functions. */
export function describeSchemas(workflows: Map<string, unknown>, activities: Map<string, unknown>): Record<string, unknown> {
  const out: Record<string, Record<string, unknown>> = {};
  const wf: Record<string, unknown> = {};
  for (const [name, fn] of workflows) {
    const options = attached(fn);
    if (options === undefined) continue;
    const entry: Record<string, unknown> = {};
    const input = argsSchema(options);
    if (input !== undefined) entry.input = input;
    for (const h of options.handlers ?? []) {
      const schema = argsSchema(h);
      if (schema === undefined) continue;
      const kind = `${h.type === "query" ? "querie" : h.type}s`;
      ((entry[kind] ??= {}) as Record<string, unknown>)[h.name] = schema;
    }
    if (Object.keys(entry).length > 0) wf[name] = entry;
  }
  const acts: Record<string, unknown> = {};
  for (const [name, fn] of activities) {
    const input = argsSchema(attached(fn) ?? {});
    if (input !== undefined) acts[name] = { input };
  }
  if (Object.keys(wf).length > 0) out.workflows = wf;
  if (Object.keys(acts).length > 0) out.activities = acts;
  return out;
}

/** The handler names a workflow's attached schemas list, by kind. */
export function handlerNames(fn: unknown, type: MessageSchema["type"]): string[] {
  return (attached(fn)?.handlers ?? []).filter((h) => h.type === type).map((h) => h.name).sort();
}

function attached(fn: unknown): WorkflowSchemaOptions | undefined {
  if (typeof fn !== "function") return undefined;
  return (fn as unknown as Record<symbol, WorkflowSchemaOptions | undefined>)[SCHEMAS];
}
