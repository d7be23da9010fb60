/**
 * AsyncLocalStorage where the runtime has one (Node, Deno, Bun, Cloudflare
 * Workers with `nodejs_compat`), found synchronously and without a static
 * `node:` import, so bundlers for other runtimes need no configuration and
 * the same source builds as ESM and as CommonJS: through
 * `process.getBuiltinModule` (Node ≥ 20.16 / 22.3, Bun, Deno 2, Workers),
 * else `require` (the CommonJS build on any Node). Elsewhere there is none,
 * and callers fall back to taking turns (see workflow_instance.ts).
 */
export interface Storage<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

type AlsModule = { AsyncLocalStorage: new () => Storage<never> };

declare const require: ((id: string) => unknown) | undefined;

function loadAls(): AlsModule | undefined {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const builtin = proc?.getBuiltinModule?.("node:async_hooks") as AlsModule | undefined;
    if (builtin?.AsyncLocalStorage) return builtin;
  } catch {
    // not available
  }
  try {
    if (typeof require === "function") return require("node:async_hooks") as AlsModule;
  } catch {
    // not available
  }
  return undefined;
}

const mod = loadAls();

/** A new AsyncLocalStorage, or undefined where the runtime has none. */
export function newStorage<T>(): Storage<T> | undefined {
  return mod ? (new mod.AsyncLocalStorage() as unknown as Storage<T>) : undefined;
}
