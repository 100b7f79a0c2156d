// What the end-to-end tests share: a control plane whose tasks are real Loki
// processes, the operator guarding it in this process, a view of the process
// table that does not trust the control plane's bookkeeping, and Loki's own
// view of its ingester ring.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync, statSync } from "node:fs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { parseDocument } from "yaml";
import type { TaskState } from "../../src/local/ecs/model.ts";
import { findLokiBinary } from "../../src/local/tasks/runner.ts";
import { checkHost } from "../../src/local/tasks/host.ts";
import { runningTaskUrls } from "../../src/runtime/demo.ts";
import { seedStackText } from "../../src/runtime/local.ts";
import type { Operator } from "../../src/runtime/operator.ts";
import { convergedAtNewest, inProcessOperator, until } from "../helpers/daemon.ts";
import { harness, type Harness } from "../helpers/local.ts";
import type { LogLine } from "../helpers/operator.ts";
import type { LinePusher } from "../../src/runtime/pusher.ts";
import { CreateBucketCommand } from "@aws-sdk/client-s3";

/** The grafana/loki image tag of the Loki binary the tasks run: the configs are rendered for its version. */
export function lokiImage(): string {
  const out = execFileSync(findLokiBinary()!, ["-version"], { encoding: "utf8" });
  const version = /version v?(\d+\.\d+\.\d+)/.exec(out)?.[1];
  if (!version) throw new Error(`cannot tell the version of ${findLokiBinary()} from its -version output: ${out.slice(0, 200)}`);
  return `grafana/loki:${version}`;
}

/** Why the e2e tier cannot run here, or undefined when it can. */
export function e2eUnavailable(): string | undefined {
  const host = checkHost();
  const missing = host.ok ? [] : host.missing;
  if (!findLokiBinary()) missing.push("a Loki binary: set LOKI_BIN or put `loki` on PATH (download it from https://github.com/grafana/loki/releases)");
  return missing.length > 0 ? `e2e skipped: this machine lacks\n  ${missing.join("\n  ")}` : undefined;
}

export interface RealStack {
  h: Harness;
  op: Operator;
  logs: LogLine[];
  name: string;
  cluster: string;
  /** Puts a new generation of the spec (with the local S3 endpoint kept). */
  edit(change: (doc: ReturnType<typeof parseDocument>) => void): Promise<void>;
}

/** A control plane with real tasks, the stack seeded from `spec` and the operator (resync every 2 s) running. */
export async function realStack(spec: string): Promise<RealStack> {
  const h = await harness({ tasks: "real", tickMs: 250, attempts: 3, realTasks: { keepRunDir: process.env.E2E_KEEP === "1" } });
  const stack = await seedStackText(h.cp, spec, "e2e spec");
  await h.s3.send(new CreateBucketCommand({ Bucket: "lokistack-operator" }));
  const { op, logs } = inProcessOperator(h, { resync: "*/2 * * * * *", lease: "s3://lokistack-operator/leader", leaseMs: 6000, watchIntervalMs: 1000 });
  await op.daemon.start();
  const parameter = `/lokistack/${stack.name}/spec`;
  return {
    h,
    op,
    logs,
    name: stack.name,
    cluster: stack.spec.cluster,
    async edit(change) {
      const doc = parseDocument(h.cp.ssm.state.parameters[parameter]!.versions.at(-1)!.value);
      change(doc);
      await h.ssm.send(new PutParameterCommand({ Name: parameter, Value: doc.toString(), Type: "String", Overwrite: true }));
    },
  };
}

export const live = (t: TaskState) => t.lastStatus !== "STOPPED";

/** Live tasks of a service (or of a family started outside services). */
export function tasksOf(rs: RealStack, unit: string): TaskState[] {
  return Object.values(rs.h.cp.ecs.state.tasks).filter((t) => live(t) && (t.group === `service:${unit}` || t.family === unit));
}

/** Base URLs of a service's RUNNING tasks, as a load balancer in front of them would have. */
export const urlsOf = (rs: RealStack, service: string): string[] => runningTaskUrls(rs.h.cp, service);

/**
 * Converged for real: the status is Ready at the newest generation and every
 * service of the stack runs exactly its desiredCount tasks, all HEALTHY (the
 * Loki /ready check passing) where the image has a health check, and nothing
 * else of the stack is alive.
 */
export function settled(rs: RealStack): boolean {
  const { cp } = rs.h;
  if (!convergedAtNewest(rs.h, rs.name)) return false;
  const services = Object.values(cp.ecs.state.services).filter((s) => s.cluster === rs.cluster && s.status === "ACTIVE" && s.name.startsWith(`${rs.name}-`));
  const stackTasks = Object.values(cp.ecs.state.tasks).filter((t) => live(t) && t.family.startsWith(`${rs.name}-`));
  let expected = 0;
  for (const s of services) {
    const tasks = tasksOf(rs, s.name);
    const healthy = (t: TaskState) => t.lastStatus === "RUNNING" && (!t.hasHealthCheck || t.healthStatus === "HEALTHY"); // 3.6 images have no check
    if (tasks.length !== s.desiredCount || !tasks.every((t) => healthy(t) && t.taskDefinitionArn === s.taskDefinition)) return false;
    expected += s.desiredCount;
  }
  return stackTasks.length === expected;
}

/** Waits (a count of 1-second polls) until the stack is settled. */
export function untilSettled(rs: RealStack, polls = 600): Promise<true> {
  return until(() => settled(rs), polls, 1000);
}

/** One moment of the process table: Loki processes by target and by the task whose network namespace holds them. */
interface Sample {
  phase: string;
  compactors: number;
  /** Loki processes per ingester ordinal family. */
  ordinals: Map<string, number>;
}

/**
 * The invariants measured from what really runs: every 200 ms, every process
 * whose command is `loki`, its -target, and (through its network namespace)
 * which task it belongs to.
 */
export class ProcessTable {
  phase = "steady";
  readonly samples: Sample[] = [];
  private timer?: NodeJS.Timeout;
  private readonly netnsInodes = new Map<string, number>();

  constructor(
    private readonly rs: RealStack,
    /** The -target values that make a process a compactor (`all` for monolithic). */
    private readonly compactorTargets: string[],
  ) {}

  start(): void {
    this.timer = setInterval(() => this.samples.push(this.sample()), 200);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private inodeOf(task: TaskState): number | undefined {
    const ns = this.rs.h.cp.runner!.namespaceOf(task);
    if (!this.netnsInodes.has(ns)) {
      try {
        this.netnsInodes.set(ns, statSync(`/run/netns/${ns}`).ino);
      } catch {
        return undefined;
      }
    }
    return this.netnsInodes.get(ns);
  }

  private sample(): Sample {
    const familyByInode = new Map<number, string>();
    for (const t of Object.values(this.rs.h.cp.ecs.state.tasks)) {
      const ino = this.inodeOf(t);
      if (ino !== undefined) familyByInode.set(ino, t.family);
    }
    let compactors = 0;
    const ordinals = new Map<string, number>();
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "loki") continue;
        // Only this control plane's tasks: another run on the machine has its own compactors.
        const ino = Number(/net:\[(\d+)\]/.exec(readlinkSync(`/proc/${pid}/ns/net`))?.[1]);
        const family = familyByInode.get(ino);
        if (!family) continue;
        const target = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").find((a) => a.startsWith("-target="))?.slice(8);
        if (target && this.compactorTargets.includes(target)) compactors += 1;
        if (/-ingester-\d+$/.test(family)) ordinals.set(family, (ordinals.get(family) ?? 0) + 1);
      } catch {
        // the process ended while we looked
      }
    }
    return { phase: this.phase, compactors, ordinals };
  }

  /** Moments (200 ms samples) when two compactor processes were alive, by phase. */
  compactorOverlaps(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const s of this.samples) if (s.compactors > 1) out[s.phase] = (out[s.phase] ?? 0) + 1;
    return out;
  }

  /** Moments when one ingester ordinal had two Loki processes. */
  ordinalOverlaps(): number {
    return this.samples.filter((s) => [...s.ordinals.values()].some((n) => n > 1)).length;
  }
}

export interface RingMember {
  id: string;
  state: string;
  address: string;
}

/** The ingester ring as a distributor sees it (Loki's /ring page, as JSON). */
export async function ingesterRing(baseUrl: string): Promise<RingMember[]> {
  const res = await fetch(`${baseUrl}/ring`, { headers: { accept: "application/json" }, signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`/ring: HTTP ${res.status}`);
  const body = (await res.json()) as { shards: { id: string; state: string; address: string }[] };
  return body.shards.map((s) => ({ id: s.id, state: s.state, address: s.address }));
}

/** The most index files one table had at any second while watched (uploads and compacted ones): what the compactor had to merge. */
export function watchIndex(rs: RealStack, bucket: string): { most(): number; stop(): void } {
  let most = 0;
  const timer = setInterval(() => {
    const perTable = new Map<string, number>();
    for (const [group, files] of indexFiles(rs, bucket)) perTable.set(group.split("/")[0]!, (perTable.get(group.split("/")[0]!) ?? 0) + files.length);
    for (const n of perTable.values()) most = Math.max(most, n);
  }, 1000);
  return { most: () => most, stop: () => clearInterval(timer) };
}

/**
 * The stack's TSDB index in S3, file names grouped by where they lie: ingesters upload
 * multi-tenant files per table (`index/<table>/<file>`, grouped as `<table>`), the
 * compactor writes one file per table and tenant (`index/<table>/<tenant>/<file>`).
 */
export function indexFiles(rs: RealStack, bucket: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const objects = rs.h.cp.s3.state.buckets[bucket]?.objects ?? {};
  for (const key of Object.keys(objects)) {
    const m = /^index\/([^/]+)\/(?:([^/]+)\/)?([^/]+)$/.exec(key);
    if (!m) continue;
    const group = m[2] ? `${m[1]}/${m[2]}` : m[1]!;
    out.set(group, [...(out.get(group) ?? []), m[3]!]);
  }
  return out;
}

/** Compacted: no uploaded multi-tenant file left, one file per table and tenant. */
export function compacted(index: Map<string, string[]>): boolean {
  return index.size > 0 && [...index].every(([group, files]) => group.includes("/") && files.length === 1);
}

/**
 * How long acknowledged lines stay invisible to queries. Every `everyMs` it
 * reads back the lines acknowledged in the last `windowMs` (older than
 * `graceMs`, so a line in flight is not counted) through the query frontend,
 * and every line still missing; a line missing from one read and back in a
 * later one was invisible for the time between.
 */
export class VisibilityWatch {
  /** Line → when it was first seen missing (ms). */
  private readonly missingSince = new Map<number, number>();
  private longestMs = 0;
  private timer?: NodeJS.Timeout;
  private busy = false;
  reads = 0;
  failedReads = 0;

  constructor(
    private readonly pusher: LinePusher,
    private readonly frontend: () => string | undefined,
    private readonly options: { everyMs?: number; windowMs?: number; graceMs?: number } = {},
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.look(), this.options.everyMs ?? 3000);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The longest time a line was invisible, counting lines still missing up to now. */
  longestInvisibleMs(): number {
    const now = Date.now();
    return Math.max(this.longestMs, ...[...this.missingSince.values()].map((since) => now - since));
  }

  stillMissing(): number {
    return this.missingSince.size;
  }

  private async look(): Promise<void> {
    const url = this.frontend();
    if (this.busy || !url) return;
    this.busy = true;
    try {
      const now = Date.now();
      const from = BigInt(now - (this.options.windowMs ?? 240_000)) * 1_000_000n;
      const until = BigInt(now - (this.options.graceMs ?? 3000)) * 1_000_000n;
      // The window, and every line still missing, however old: it is read again until it is back.
      const lines = [...this.pusher.acknowledged].filter(([n, ts]) => (ts >= from && ts <= until) || this.missingSince.has(n));
      const found = await this.pusher.find(url, lines.map(([, ts]) => ts));
      this.reads += 1;
      const seen = Date.now();
      for (const [n] of lines) {
        const since = this.missingSince.get(n);
        if (found.has(n)) {
          if (since !== undefined) this.longestMs = Math.max(this.longestMs, seen - since);
          this.missingSince.delete(n);
        } else if (since === undefined) {
          this.missingSince.set(n, now);
        }
      }
    } catch {
      // A query frontend being replaced: this read does not count.
      this.failedReads += 1;
    } finally {
      this.busy = false;
    }
  }
}
