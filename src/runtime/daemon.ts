// `lokistack run`: the long-running operator. A node-cron resync (no
// overlapping passes), an immediate pass when a spec's version changes, retries
// with exponential backoff per stack, leader election, /healthz /readyz
// /metrics, and a graceful SIGTERM: finish the current action, release the
// lease, exit.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import cron, { type ScheduledTask } from "node-cron";
import type { Logger } from "pino";
import type { SsmGateway } from "../aws/ssm-gateway.ts";
import type { Reconciler, StackResult } from "../controllers/reconciler.ts";
import type { LeaderLease } from "./lease.ts";
import type { OperatorMetrics } from "./metrics.ts";

export interface DaemonOptions {
  reconciler: Reconciler;
  ssm: SsmGateway;
  prefix: string;
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
  /** Called after every pass (the demo narrates with it). */
  onPass?: (results: StackResult[]) => void;
}

export const DEFAULT_RESYNC = "*/30 * * * * *";

export class Daemon {
  private stopping = false;
  private server?: Server;
  private cronTask?: ScheduledTask;
  private timers: NodeJS.Timeout[] = [];
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  private readonly failures = new Map<string, number>();
  private readonly specVersions = new Map<string, number>();
  private queue: { all: boolean; stacks: Set<string> } = { all: false, stacks: new Set() };
  private running?: Promise<void>;
  private lastPassOk = false;
  private passes = 0;

  constructor(private readonly opts: DaemonOptions) {}

  /** Whether this replica may write now: it leads (or runs without a lease) and is not shutting down. */
  canWrite = (): boolean => !this.stopping && (this.opts.lease?.isLeader() ?? true);

  async start(): Promise<void> {
    const { logger, lease } = this.opts;
    if (this.opts.port !== undefined) await this.listen(this.opts.port);
    if (lease) {
      await lease.tick();
      this.opts.metrics.leader.set(lease.isLeader() ? 1 : 0);
      this.every(lease.renewMs, async () => {
        const wasLeader = lease.isLeader();
        const leader = await lease.tick();
        this.opts.metrics.leader.set(leader ? 1 : 0);
        if (leader && !wasLeader) this.enqueue();
      });
    } else {
      this.opts.metrics.leader.set(1);
    }
    const resync = this.opts.resync ?? DEFAULT_RESYNC;
    if (!cron.validate(resync)) throw new Error(`--resync: not a valid cron expression: ${resync}`);
    this.cronTask = cron.schedule(resync, () => this.enqueue(), { noOverlap: true, name: "resync" });
    this.every(this.opts.watchIntervalMs ?? 5_000, () => this.watchSpecs());
    logger.info({ event: "start", resync, lease: lease ? "s3" : "none", port: this.port ?? null }, "operator started");
    this.enqueue();
  }

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port;
  }

  get passCount(): number {
    return this.passes;
  }

  /** Asks for a pass over `stacks` (all when unset); passes never overlap. */
  enqueue(stacks?: readonly string[]): void {
    if (this.stopping) return;
    if (stacks) for (const s of stacks) this.queue.stacks.add(s);
    else this.queue.all = true;
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /** Resolves once the queue is empty. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    while (!this.stopping && (this.queue.all || this.queue.stacks.size > 0)) {
      const { all, stacks } = this.queue;
      this.queue = { all: false, stacks: new Set() };
      if (!this.canWrite()) {
        // A follower only watches the lease; the leader does the work.
        this.lastPassOk = true;
        continue;
      }
      try {
        const results = await this.opts.reconciler.pass({ mode: "apply", ...(all ? {} : { only: [...stacks] }) });
        this.passes += 1;
        this.opts.metrics.passes.inc();
        this.lastPassOk = results.every((r) => !r.error);
        for (const r of results) {
          if (r.generation !== undefined) this.specVersions.set(r.name, r.generation);
          this.scheduleRetry(r);
        }
        this.opts.onPass?.(results);
      } catch (e) {
        this.lastPassOk = false;
        this.opts.logger.error({ event: "pass", result: "error", error: e instanceof Error ? e.message : String(e) }, "reconcile pass failed");
        this.scheduleRetry({ name: "*", error: String(e) });
      }
    }
  }

  /** Exponential backoff per stack after an error: 1 s, 2 s, 4 s … up to maxBackoffMs. */
  private scheduleRetry(r: Pick<StackResult, "name" | "error">): void {
    const existing = this.retryTimers.get(r.name);
    if (!r.error) {
      this.failures.delete(r.name);
      return;
    }
    if (existing) return;
    const n = (this.failures.get(r.name) ?? 0) + 1;
    this.failures.set(r.name, n);
    const delay = Math.min(1000 * 2 ** (n - 1), this.opts.maxBackoffMs ?? 300_000);
    this.opts.logger.info({ event: "retry", stack: r.name, attempt: n, delayMs: delay }, `retrying ${r.name} in ${delay} ms`);
    const timer = setTimeout(() => {
      this.retryTimers.delete(r.name);
      this.enqueue(r.name === "*" ? undefined : [r.name]);
    }, delay);
    timer.unref();
    this.retryTimers.set(r.name, timer);
  }

  /** Between resyncs, a cheap check of the known specs' versions; a change triggers a pass for that stack. */
  private async watchSpecs(): Promise<void> {
    if (!this.canWrite() || this.specVersions.size === 0) return;
    try {
      const names = [...this.specVersions.keys()].map((n) => `${this.opts.prefix}/${n}/spec`);
      const found = await this.opts.ssm.getMany(names);
      const changed = [...this.specVersions].filter(([n, v]) => found.get(`${this.opts.prefix}/${n}/spec`)?.Version !== v).map(([n]) => n);
      if (changed.length > 0) {
        this.opts.logger.info({ event: "spec.changed", stacks: changed }, "spec changed: reconciling now");
        this.enqueue(changed);
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
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (path === "/readyz") {
        const ready = !this.stopping && this.lastPassOk;
        res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" }).end(ready ? "ready\n" : "not ready\n");
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

  /** Graceful stop: no new work, the current action finishes, the lease is released. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.cronTask?.destroy();
    for (const t of this.timers) clearInterval(t);
    for (const t of this.retryTimers.values()) clearTimeout(t);
    await this.running;
    await this.opts.lease?.release();
    this.opts.metrics.leader.set(0);
    const server = this.server;
    if (server) await new Promise<void>((r) => server.close(() => r()));
    this.opts.logger.info({ event: "stop" }, "operator stopped");
  }
}
