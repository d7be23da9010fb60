/**
 * AsyncLocalStorage where the runtime has one (Node, Deno, Bun, Cloudflare
 * Workers with `nodejs_compat`), found without a static `node:` import so
 * bundlers for other runtimes need no configuration.
 */
export interface Storage<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

type AlsModule = { AsyncLocalStorage: new () => Storage<never> };

async function loadAls(): Promise<AlsModule | undefined> {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  try {
    const builtin = proc?.getBuiltinModule?.("node:async_hooks") as AlsModule | undefined;
    if (builtin?.AsyncLocalStorage) return builtin;
  } catch {
    // not available
  }
  const spec = "node:async_hooks";
  try {
    return (await import(/* webpackIgnore: true */ /* @vite-ignore */ spec)) as AlsModule;
  } catch {
    return undefined;
  }
}

const mod = await loadAls();

/** A new AsyncLocalStorage, or undefined where the runtime has none. */
export function newStorage<T>(): Storage<T> | undefined {
  return mod ? (new mod.AsyncLocalStorage() as unknown as Storage<T>) : undefined;
}
