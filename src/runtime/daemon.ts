// `lokistack run`: the long-running operator. A node-cron resync refreshes
// the observation cache (never two at once), runs the safety guard on every
// cluster, and puts every stack in the work queue; workers reconcile stacks
// concurrently, each outcome deciding when that stack is looked at again. A
// 5-second spec watch (metadata of the known specs) puts changed stacks in
// the queue at once. A guard that could not finish (a throttled read, a
// failed StopTask) retries on its own short path, within seconds, not at the
// next resync. Leader election, /healthz /readyz /metrics, and a graceful
// SIGTERM: finish the current actions, release the lease, exit.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import type { GuardResult, Reconciler } from "../controllers/reconciler.ts";
import type { LeaderLease } from "./lease.ts";
import type { OperatorMetrics } from "./metrics.ts";
import { WorkQueue } from "./queue.ts";

export interface DaemonOptions {
  reconciler: Reconciler;
  logger: Logger;
  metrics: OperatorMetrics;
  /** Cron expression with seconds, e.g. every 30 s. */
  resync?: string;
  /** How often spec versions are checked between resyncs. */
  watchIntervalMs?: number;
  lease?: LeaderLease;
  /** Port for /healthz, /readyz and /metrics on all interfaces; undefined: no server. */
  port?: number;
  /** Listen address for the health server (0.0.0.0 in a task, 127.0.0.1 in tests). */
  host?: string;
  maxBackoffMs?: number;
  /** Stacks reconciled at once. */
  concurrency?: number;
}

export const DEFAULT_RESYNC = "*/30 * * * * *";
/** /healthz fails when no resync began for this many periods. */
const STALL_PERIODS = 3;
/** The guard's short path: first retry after this, doubling up to GUARD_RETRY_MAX_MS. */
const GUARD_RETRY_MS = 500;
const GUARD_RETRY_MAX_MS = 4_000;

/**
 * Why a resync schedule is refused, or undefined when it is fine. It has six
 * fields, seconds first: node-cron also takes five (minutes first), and
 * `*\/30 * * * *` would then resync every 30 minutes, not seconds.
 */
export function resyncProblem(expression: string): string | undefined {
  const fields = expression.trim().split(/\s+/);
  if (fields.length === 5 && cron.validate(expression)) {
    return `'${expression}' has five fields, minutes first; the resync takes six, seconds first: '0 ${expression}' runs at the same minutes, '${fields[0]} * * * * *' every ${fields[0]!.replace(/^\*\//, "")} seconds`;
  }
  if (fields.length !== 6 || !cron.validate(expression)) return `'${expression}' is not a cron expression with six fields, seconds first, such as '*/30 * * * * *' (every 30 seconds)`;
  return undefined;
}

/** The longest gap between two runs of a cron schedule, in seconds (its resync period). */
export function resyncSeconds(expression: string): number {
  // An invalid expression is refused by start(), with its own message.
  if (!cron.validate(expression)) return 30;
  const task = cron.createTask(expression, () => undefined);
  const runs = task.getNextRuns(8).map((d) => d.getTime());
  void task.destroy();
  let gap = 0;
  for (let i = 1; i < runs.length; i++) gap = Math.max(gap, runs[i]! - runs[i - 1]!);
  return Math.max(1, Math.round(gap / 1000));
}

export class Daemon {
  private stopping = false;
  private server?: Server;
  private cronTask?: ScheduledTask;
  private timers: NodeJS.Timeout[] = [];
  private readonly guardTimers = new Map<string, NodeJS.Timeout>();
  readonly queue: WorkQueue;
  private resyncing?: Promise<void>;
  private resyncAgain = false;
  private lastResyncOk = false;
  private resyncs = 0;
  /** Monotonic time the loop last ran (a resync began), for /healthz. */
  private lastTick = performance.now();
  private readonly resyncPeriodMs: number;

  constructor(private readonly opts: DaemonOptions) {
    this.resyncPeriodMs = resyncSeconds(opts.resync ?? DEFAULT_RESYNC) * 1000;
    this.queue = new WorkQueue((key, since) => this.reconcile(key, since), {
      concurrency: opts.concurrency ?? 4,
      ...(opts.maxBackoffMs ? { maxBackoffMs: opts.maxBackoffMs } : {}),
      onOutcome: (key, outcome, next) => {
        opts.metrics.queueDepth.set(this.queue.depth);
        if (outcome.kind === "error") opts.logger.info({ event: "retry", stack: key, delayMs: next }, `retrying ${key} in ${next} ms`);
      },
    });
  }

  /** Whether this replica may write now: it leads (or runs without a lease) and is not shutting down. */
  canWrite = (): boolean => !this.stopping && (this.opts.lease?.isLeader() ?? true);

  async start(): Promise<void> {
    const { logger, lease } = this.opts;
    const resync = this.opts.resync ?? DEFAULT_RESYNC;
    if (!cron.validate(resync)) throw new Error(`--resync: not a valid cron expression: ${resync}`);
    if (this.opts.port !== undefined) await this.listen(this.opts.port);
    if (lease) {
      // One election step, reported: whether this replica leads, and whether it can use its lease at all.
      const tick = async () => {
        const leader = await lease.tick();
        this.opts.metrics.leader.set(leader ? 1 : 0);
        this.opts.metrics.leaseOk.set(lease.problem ? 0 : 1);
        return leader;
      };
      await tick();
      this.every(lease.renewMs, async () => {
        const wasLeader = lease.isLeader();
        if ((await tick()) && !wasLeader) this.resync();
      });
    } else {
      this.opts.metrics.leader.set(1);
    }
    this.cronTask = cron.schedule(resync, () => this.resync(), { noOverlap: true, name: "resync" });
    this.every(this.opts.watchIntervalMs ?? 5_000, () => this.watchSpecs());
    logger.info({ event: "start", resync, lease: lease ? "s3" : "none", port: this.port ?? null }, "operator started");
    this.resync();
  }

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  /** Resyncs run so far. */
  get passCount(): number {
    return this.resyncs;
  }

  /** Asks for a resync; one runs at a time, and a request during one runs another after it. */
  resync(): void {
    if (this.stopping) return;
    this.lastTick = performance.now();
    if (this.resyncing) {
      this.resyncAgain = true;
      return;
    }
    this.resyncing = this.runResync().finally(() => {
      this.resyncing = undefined;
      if (this.resyncAgain) {
        this.resyncAgain = false;
        this.resync();
      }
    });
  }

  /** Resolves once no resync runs and the queue is empty. */
  async idle(): Promise<void> {
    while (this.resyncing) await this.resyncing;
    await this.queue.idle();
  }

  private async runResync(): Promise<void> {
    if (!this.canWrite()) {
      // A follower only watches the lease; the leader does the work.
      this.lastResyncOk = true;
      return;
    }
    const { reconciler, logger, metrics } = this.opts;
    const { since, stacks, guards, error } = await reconciler.refresh({ mode: "apply" });
    for (const g of guards) this.afterGuard(g, 0);
    this.lastResyncOk = error === undefined;
    if (error) {
      logger.error({ event: "resync", result: "error", error }, "resync failed: cannot read the specs; known clusters were guarded");
      return;
    }
    this.resyncs += 1;
    metrics.passes.inc();
    for (const name of stacks) this.queue.add(name, since);
    metrics.queueDepth.set(this.queue.depth);
  }

  private async reconcile(name: string, since: number) {
    const result = await this.opts.reconciler.reconcile(name, { mode: this.canWrite() ? "apply" : "plan", since });
    // A stack with neither spec nor status is gone: no timer of its may bring it back.
    if (!this.opts.reconciler.knows(name)) {
      this.queue.forget(name);
      return { kind: "done" as const };
    }
    return result.outcome;
  }

  /** The guard's short path: a guard that did not finish runs again within seconds. */
  private afterGuard(g: GuardResult, attempt: number): void {
    this.opts.metrics.guardStops.inc(g.stopped.length);
    if (!g.retry || this.stopping || this.guardTimers.has(g.cluster)) return;
    const delay = Math.min(GUARD_RETRY_MS * 2 ** attempt, GUARD_RETRY_MAX_MS);
    this.opts.logger.info({ event: "guard.retry", cluster: g.cluster, attempt: attempt + 1, delayMs: delay, error: g.error }, `safety guard on ${g.cluster} retries in ${delay} ms`);
    const timer = setTimeout(() => {
      this.guardTimers.delete(g.cluster);
      if (!this.canWrite()) return;
      void this.opts.reconciler.guard(g.cluster).then((next) => this.afterGuard(next, attempt + 1));
    }, delay);
    timer.unref();
    this.guardTimers.set(g.cluster, timer);
  }

  /** Between resyncs, a cheap look at the known specs' versions; a changed or deleted spec is reconciled now. */
  private async watchSpecs(): Promise<void> {
    if (!this.canWrite()) return;
    try {
      const changed = await this.opts.reconciler.watchSpecs();
      if (changed.length > 0) {
        this.opts.logger.info({ event: "spec.changed", stacks: changed }, "spec changed: reconciling now");
        for (const name of changed) this.queue.add(name);
      }
    } catch (e) {
      this.opts.logger.warn({ event: "spec.watch", error: e instanceof Error ? e.message : String(e) }, "spec watch failed");
    }
  }

  private every(ms: number, fn: () => Promise<void>): void {
    let busy = false;
    const timer = setInterval(() => {
      if (busy || this.stopping) return;
      busy = true;
      fn().finally(() => (busy = false));
    }, ms);
    this.timers.push(timer);
  }

  private async listen(port: number): Promise<void> {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (path === "/healthz") {
        // Alive while the loop runs: a resync began within the last three periods.
        const stalled = performance.now() - this.lastTick > STALL_PERIODS * this.resyncPeriodMs;
        res.writeHead(stalled ? 503 : 200, { "content-type": "text/plain" }).end(stalled ? "the reconcile loop has not run for three resync periods\n" : "ok\n");
      } else if (path === "/readyz") {
        // Ready when the operator can read its specs and its lease: one stack's problem is that stack's status, not the operator's health.
        const problem = this.stopping ? "shutting down" : this.opts.lease?.problem ?? (this.lastResyncOk ? undefined : "cannot read the specs");
        res.writeHead(problem ? 503 : 200, { "content-type": "text/plain" }).end(problem ? `not ready: ${problem}\n` : "ready\n");
      } else if (path === "/metrics") {
        this.opts.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { "content-type": this.opts.metrics.registry.contentType }).end(text),
          (e: unknown) => res.writeHead(500).end(String(e)),
        );
      } else {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, this.opts.host ?? "0.0.0.0", resolve);
    });
  }

  /** Graceful stop: no new work, the current actions finish, the lease is released. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.cronTask?.destroy();
    for (const t of this.timers) clearInterval(t);
    for (const t of this.guardTimers.values()) clearTimeout(t);
    await this.resyncing;
    await this.queue.stop();
    await this.opts.lease?.release();
    this.opts.metrics.leader.set(0);
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    this.opts.logger.info({ event: "stop" }, "operator stopped");
  }
}
