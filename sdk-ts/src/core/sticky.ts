/**
 * The sticky cache of a long-lived handler (protocol.md §5.10): workflow
 * instances kept after their task was answered with commands, by run id,
 * at most `maxCachedWorkflows` of them, the least recently used evicted
 * (and torn down) first. A push takes its run's instance out while it
 * runs, so no other push of the run can use it meanwhile.
 */
import type { WorkflowInstance } from "./workflow_instance.js";

/** Protocol.md §5.10: "default 1,000". */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 1000;

/** What a handler's sticky cache, history pages and payload fetches did, since it was made (`handler.stats()`). */
export interface HandlerStats {
  /** Workflow instances held now for their runs' next tasks. */
  cachedWorkflows: number;
  /** Workflow tasks answered by an instance this handler held, without a replay. */
  stickyHits: number;
  /** Workflow tasks sent only their newest events that no held instance could take: paged in and replayed. */
  stickyMisses: number;
  /** Instances evicted to make room for others. */
  evictions: number;
  /** History pages fetched from the server, for workflow tasks, queries and update validations. */
  historyPages: number;
  /** Calls to the payload route for payloads stored by reference that a push, page or checkpoint answer did not carry (protocol.md §9.1). */
  payloadFetches: number;
}

export class WorkflowCache {
  private readonly entries = new Map<string, WorkflowInstance>();
  evictions = 0;

  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size;
  }

  /** Takes `runId`'s instance out of the cache, if it holds one. */
  take(runId: string): WorkflowInstance | undefined {
    const instance = this.entries.get(runId);
    if (instance !== undefined) this.entries.delete(runId);
    return instance;
  }

  /** Keeps `instance` for `runId`'s next task, evicting the least recently used beyond the bound. */
  keep(runId: string, instance: WorkflowInstance): void {
    const previous = this.entries.get(runId);
    if (previous !== undefined && previous !== instance) previous.dispose();
    this.entries.delete(runId);
    this.entries.set(runId, instance);
    for (const [oldest, evicted] of this.entries) {
      if (this.entries.size <= this.max) break;
      this.entries.delete(oldest);
      evicted.dispose();
      this.evictions++;
    }
  }
}
