// A work queue of stack names, on controller-runtime's contract: a key is
// never processed by two workers at once; adding a key that is waiting merges
// the two (keeping the newer freshness); adding one that is being processed
// runs it again afterwards. Each reconcile's outcome decides what comes next:
// done (nothing until the next resync or event), requeue after N ms,
// degraded (a user must act: retried at the resync, never with backoff), or
// an error (exponential backoff per key, reset by the next success).
import type { Outcome } from "../controllers/types.ts";

export type Handler = (key: string, since: number) => Promise<Outcome>;

export interface QueueOptions {
  concurrency?: number;
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  clock?: () => number;
  /** Called after each outcome (logging, metrics). */
  onOutcome?: (key: string, outcome: Outcome, nextInMs?: number) => void;
}

export class WorkQueue {
  /** Keys waiting, with the freshness their observation needs (monotonic ms). */
  private readonly waiting = new Map<string, number>();
  private readonly active = new Set<string>();
  /** Keys added while being processed: run again once done. */
  private readonly again = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private readonly idleWaiters: (() => void)[] = [];
  private stopped = false;
  private readonly clock: () => number;

  constructor(
    private readonly handler: Handler,
    private readonly opts: QueueOptions = {},
  ) {
    this.clock = opts.clock ?? (() => performance.now());
  }

  get depth(): number {
    return this.waiting.size + this.again.size;
  }

  /** Asks for `key` to be reconciled from an observation at least as new as `since` (default: now). */
  add(key: string, since = this.clock()): void {
    if (this.stopped) return;
    const target = this.active.has(key) ? this.again : this.waiting;
    target.set(key, Math.max(target.get(key) ?? -Infinity, since));
    this.pump();
  }

  /** Adds `key` after `ms`, unless it is already due sooner. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    const at = this.clock() + ms;
    const existing = this.timers.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Drops a key: waiting entries, timers and its failure count. */
  forget(key: string): void {
    this.waiting.delete(key);
    this.again.delete(key);
    this.failures.delete(key);
    const t = this.timers.get(key);
    if (t) clearTimeout(t.timer);
    this.timers.delete(key);
  }

  /** Resolves once nothing is waiting or being processed (timers may still be set). */
  idle(): Promise<void> {
    if (this.active.size === 0 && this.waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes no new work; resolves when the keys being processed are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t.timer);
    this.timers.clear();
    this.waiting.clear();
    this.again.clear();
    await this.idle();
  }

  private pump(): void {
    const concurrency = this.opts.concurrency ?? 4;
    for (const [key, since] of this.waiting) {
      if (this.active.size >= concurrency) break;
      if (this.active.has(key)) continue;
      this.waiting.delete(key);
      this.active.add(key);
      void this.run(key, since);
    }
  }

  private async run(key: string, since: number): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = await this.handler(key, since);
    } catch (e) {
      outcome = { kind: "error", message: e instanceof Error ? e.message : String(e) };
    }
    this.active.delete(key);
    let next: number | undefined;
    if (!this.stopped) {
      if (outcome.kind === "error") {
        const n = (this.failures.get(key) ?? 0) + 1;
        this.failures.set(key, n);
        next = Math.min((this.opts.baseBackoffMs ?? 1000) * 2 ** (n - 1), this.opts.maxBackoffMs ?? 300_000);
      } else {
        this.failures.delete(key);
        if (outcome.kind === "requeue") next = outcome.afterMs;
      }
      if (next !== undefined) this.addAfter(key, next);
      const again = this.again.get(key);
      if (again !== undefined) {
        this.again.delete(key);
        this.waiting.set(key, Math.max(this.waiting.get(key) ?? -Infinity, again));
      }
    }
    this.opts.onOutcome?.(key, outcome, next);
    this.pump();
    if (this.active.size === 0 && this.waiting.size === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}
