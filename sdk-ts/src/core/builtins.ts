/**
 * Node built-in modules where the runtime has them (Node, Bun, Deno,
 * Cloudflare Workers with `nodejs_compat`), found synchronously and without
 * a static `node:` import, so bundlers for other runtimes need no
 * configuration and the same source builds as ESM and as CommonJS: through
 * `process.getBuiltinModule` (Node ≥ 20.16 / 22.3, Bun, Deno 2, Workers),
 * else `require` (the CommonJS build on any Node).
 */

declare const require: ((id: string) => unknown) | undefined;

/** The built-in module `id` (e.g. `"node:crypto"`), or undefined where there is none. */
export function nodeBuiltin<T>(id: string): T | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const builtin = proc?.getBuiltinModule?.(id) as T | undefined;
    if (builtin !== undefined) return builtin;
  } catch {
    // not available
  }
  try {
    if (typeof require === "function") return require(id) as T;
  } catch {
    // not available
  }
  return undefined;
}
