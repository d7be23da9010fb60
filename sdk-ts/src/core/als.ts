/**
 * AsyncLocalStorage where the runtime has one (see builtins.ts). Elsewhere
 * there is none, and callers fall back to taking turns (see
 * workflow_instance.ts).
 */
import { nodeBuiltin } from "./builtins.js";

export interface Storage<T> {
  getStore(): T | undefined;
  run<R>(store: T, fn: () => R): R;
}

const mod = nodeBuiltin<{ AsyncLocalStorage?: new () => Storage<never> }>("node:async_hooks");

/** A new AsyncLocalStorage, or undefined where the runtime has none. */
export function newStorage<T>(): Storage<T> | undefined {
  return mod?.AsyncLocalStorage ? (new mod.AsyncLocalStorage() as unknown as Storage<T>) : undefined;
}
