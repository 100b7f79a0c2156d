// The ECS half of the observation cache ("informer"). Per cluster it keeps
// the live tasks and the services it was asked about, each stamped with when
// it was read, and refreshes only what is older than a reconcile needs:
// DescribeServices in batches of 10, ListTasks once (100 a page), and
// DescribeTasks only for task ARNs not seen before (or not settled yet, or
// gone since the last look). Concurrent requests for one cluster share one
// read, and a failed read (a missing cluster) is remembered for the same
// freshness, so fifty stacks on a missing cluster cost one call, not fifty.
// Task definitions are immutable per ARN: each is described once.
import type { Service, Task, TaskDefinition, Tag } from "@aws-sdk/client-ecs";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import { contentHash, canonicalJson } from "../resources/hash.ts";
import { canonicalTaskDefinition, type Canonical } from "../resources/normalize.ts";

export interface TaskSnapshot {
  arn: string;
  group: string;
  family: string;
  taskDefinitionArn: string;
  startedBy?: string;
  lastStatus: string;
  desiredStatus: string;
  healthStatus: string;
  /** epoch ms */
  createdAt: number;
  /** epoch ms, once RUNNING */
  startedAt?: number;
  privateIp?: string;
  stopCode?: string;
  stoppedReason?: string;
}

export interface ObservedTaskDefinition {
  arn: string;
  canonical: Canonical;
  /** canonicalJson(canonical), for equality checks. */
  canonicalJson: string;
  tags: Tag[];
  hasHealthCheck: boolean;
}

/** A task that left the running set, numbered so each reconcile reports it once. */
export interface StopEvent {
  seq: number;
  task: TaskSnapshot;
}

function familyOf(taskDefinitionArn: string): string {
  const tail = taskDefinitionArn.slice(taskDefinitionArn.lastIndexOf("/") + 1);
  return tail.replace(/:\d+$/, "");
}

export function snapshotOf(t: Task): TaskSnapshot {
  const ip = t.attachments?.flatMap((a) => a.details ?? []).find((d) => d.name === "privateIPv4Address")?.value;
  return {
    arn: t.taskArn ?? "",
    group: t.group ?? "",
    family: familyOf(t.taskDefinitionArn ?? ""),
    taskDefinitionArn: t.taskDefinitionArn ?? "",
    ...(t.startedBy ? { startedBy: t.startedBy } : {}),
    lastStatus: t.lastStatus ?? "UNKNOWN",
    desiredStatus: t.desiredStatus ?? "UNKNOWN",
    healthStatus: t.healthStatus ?? "UNKNOWN",
    createdAt: t.createdAt ? t.createdAt.getTime() : 0,
    ...(t.startedAt ? { startedAt: t.startedAt.getTime() } : {}),
    ...(ip ? { privateIp: ip } : {}),
    ...(t.stopCode ? { stopCode: t.stopCode } : {}),
    ...(t.stoppedReason ? { stoppedReason: t.stoppedReason } : {}),
  };
}

interface Stamped<T> {
  value: T;
  at: number;
}

interface ClusterState {
  services: Map<string, Stamped<Service | undefined>>;
  tasksAt: number;
  running: string[];
  /** Tasks followed until they reach STOPPED: asked to stop, or gone from the running set. */
  stopping: Set<string>;
  stops: StopEvent[];
  tasksInFlight?: { started: number; promise: Promise<void> };
  /** The last failed read of the cluster, remembered for the same freshness as a success. */
  failure?: Stamped<unknown>;
}

const MAX_STOP_EVENTS = 2000;
/** Revisions of a family compared when looking for one with equal content (the newest first). */
export const REVISIONS_SCANNED = 100;

export class Observer {
  private readonly clusters = new Map<string, ClusterState>();
  private readonly tasks = new Map<string, TaskSnapshot>();
  private readonly taskDefinitions = new Map<string, ObservedTaskDefinition>();
  /** Content hashes of revisions described while looking for an equal one: ARN → hash. */
  private readonly revisionHashes = new Map<string, string>();
  /** Families listed with no equal revision since the last resync, by family and content hash. */
  private readonly noMatch = new Set<string>();
  /** Tasks the operator stopped, until ECS reports them STOPPED. */
  private readonly stoppedHere = new Set<string>();
  private seq = 0;

  constructor(
    private readonly ecs: EcsGateway,
    /** Whether a task belongs to a stack the operator manages: only those are described again until settled. */
    private readonly watched: (t: TaskSnapshot) => boolean = () => true,
    readonly clock: () => number = () => performance.now(),
  ) {}

  private state(cluster: string): ClusterState {
    let s = this.clusters.get(cluster);
    if (!s) {
      s = { services: new Map(), tasksAt: -Infinity, running: [], stopping: new Set(), stops: [] };
      this.clusters.set(cluster, s);
    }
    return s;
  }

  /** Makes the cluster's task list at least as new as `since` (one shared read per cluster). */
  async ensureTasks(cluster: string, since: number): Promise<void> {
    const s = this.state(cluster);
    if (s.failure && s.failure.at >= since) throw s.failure.value;
    if (s.tasksAt >= since) return;
    if (s.tasksInFlight && s.tasksInFlight.started >= since) return s.tasksInFlight.promise;
    const started = this.clock();
    const promise = this.refreshTasks(cluster, s, started).finally(() => {
      if (s.tasksInFlight?.promise === promise) delete s.tasksInFlight;
    });
    s.tasksInFlight = { started, promise };
    return promise;
  }

  private async refreshTasks(cluster: string, s: ClusterState, started: number): Promise<void> {
    let listed: string[];
    // The first read also asks for the tasks told to stop: one still stopping holds its slot (an
    // ordinal's, the compactor's) although its service may already be INACTIVE, and an operator
    // that has just started has not seen it leave the running list.
    let toldToStop: string[] = [];
    try {
      listed = await this.ecs.listTaskArns(cluster);
      if (s.tasksAt === -Infinity) toldToStop = await this.ecs.listTaskArns(cluster, "STOPPED");
    } catch (e) {
      s.failure = { value: e, at: started };
      throw e;
    }
    const current = new Set(listed);
    const gone = s.running.filter((a) => !current.has(a));
    const unsettled = listed.filter((a) => {
      const known = this.tasks.get(a);
      return !known || (this.watched(known) && !this.settled(known));
    });
    const toDescribe = [...new Set([...unsettled, ...gone, ...s.stopping, ...toldToStop])];
    const stillStopping = new Set(toldToStop);
    const described = toDescribe.length > 0 ? await this.ecs.describeTasks(cluster, toDescribe) : [];
    // A newer read finished first: this one's answer is older than what is known.
    if (started < s.tasksAt) return;
    const seen = new Set<string>();
    for (const t of described) {
      if (!t.taskArn) continue;
      seen.add(t.taskArn);
      const snapshot = snapshotOf(t);
      if (stillStopping.has(t.taskArn) && !current.has(t.taskArn)) {
        // Found by the first read's STOPPED listing: followed until it has stopped, if it matters.
        if (snapshot.lastStatus === "STOPPED" || !this.watched(snapshot)) continue;
        s.stopping.add(t.taskArn);
      }
      // A stop the operator asked for stands, even when a read that began before it says RUNNING.
      this.tasks.set(t.taskArn, this.stoppedHere.has(t.taskArn) ? { ...snapshot, desiredStatus: "STOPPED" } : snapshot);
    }
    const running = [...listed];
    for (const a of gone) {
      const t = this.tasks.get(a);
      if (!t) continue;
      // Left out of one listing (pages can shift while they are read) but still meant to run: still running.
      if (seen.has(a) && t.desiredStatus === "RUNNING") {
        running.push(a);
        continue;
      }
      s.stops.push({ seq: ++this.seq, task: t });
      if (t.lastStatus !== "STOPPED") s.stopping.add(a);
    }
    if (s.stops.length > MAX_STOP_EVENTS) s.stops.splice(0, s.stops.length - MAX_STOP_EVENTS);
    for (const a of [...s.stopping]) {
      const t = this.tasks.get(a);
      const described = t !== undefined && seen.has(a);
      if (described && t.lastStatus !== "STOPPED" && t.desiredStatus === "STOPPED") continue;
      s.stopping.delete(a);
      this.stoppedHere.delete(a);
      // Meant to run after all (a listing had left it out): it counts as running again.
      if (described && t.desiredStatus === "RUNNING") {
        if (!running.includes(a)) running.push(a);
        continue;
      }
      // STOPPED, or no longer described (purged): certainly stopped.
      if (!current.has(a)) this.tasks.delete(a);
    }
    for (const a of gone) if (!s.stopping.has(a) && !running.includes(a)) this.tasks.delete(a);
    s.running = running;
    s.tasksAt = started;
    delete s.failure;
  }

  /** Makes the named services at least as new as `since`: DescribeServices, 10 names a call, only for stale names. */
  async ensureServices(cluster: string, names: readonly string[], since: number): Promise<void> {
    const s = this.state(cluster);
    if (s.failure && s.failure.at >= since) throw s.failure.value;
    const stale = [...new Set(names)].filter((n) => (s.services.get(n)?.at ?? -Infinity) < since);
    if (stale.length === 0) return;
    const started = this.clock();
    let found: Map<string, Service>;
    try {
      found = await this.ecs.describeServices(cluster, stale);
    } catch (e) {
      s.failure = { value: e, at: started };
      throw e;
    }
    for (const n of stale) {
      // A write's answer noted while this read was under way is newer: it stays.
      if ((s.services.get(n)?.at ?? -Infinity) > started) continue;
      s.services.set(n, { value: found.get(n), at: started });
    }
    delete s.failure;
  }

  /** The services known for these names (absent: ECS does not know the name). */
  services(cluster: string, names: Iterable<string>): Map<string, Service> {
    const out = new Map<string, Service>();
    for (const n of names) {
      const v = this.service(cluster, n);
      if (v) out.set(n, v);
    }
    return out;
  }

  /** One service as last seen, or undefined when ECS does not know the name. */
  service(cluster: string, name: string): Service | undefined {
    return this.state(cluster).services.get(name)?.value;
  }

  /** A service as the operator's own write returned it: as fresh as a read. */
  noteService(cluster: string, service: Service): void {
    if (service.serviceName) this.state(cluster).services.set(service.serviceName, { value: service, at: this.clock() });
  }

  /** Live tasks (desiredStatus RUNNING) of the cluster, as last listed, minus those the operator has since stopped. */
  running(cluster: string): TaskSnapshot[] {
    const s = this.state(cluster);
    return s.running.filter((a) => !s.stopping.has(a)).map((a) => this.tasks.get(a)).filter((t): t is TaskSnapshot => t !== undefined);
  }

  /** Tasks on their way to STOPPED: they still hold their slot. */
  stopping(cluster: string): TaskSnapshot[] {
    return [...this.state(cluster).stopping].map((a) => this.tasks.get(a)).filter((t): t is TaskSnapshot => t !== undefined);
  }

  /** Tasks that left the running set after event `after`, and the number to pass next time. */
  stopsSince(cluster: string, after: number): { stops: TaskSnapshot[]; last: number } {
    const s = this.state(cluster);
    return { stops: s.stops.filter((e) => e.seq > after).map((e) => e.task), last: s.stops.at(-1)?.seq ?? after };
  }

  /** The sequence number of the newest stop event: a new reader starts after it. */
  get lastStop(): number {
    return this.seq;
  }

  /** Follows a task the operator stopped until ECS reports it STOPPED; it no longer counts as running. */
  followStop(cluster: string, arn: string): void {
    this.state(cluster).stopping.add(arn);
    this.stoppedHere.add(arn);
    const t = this.tasks.get(arn);
    if (t) this.tasks.set(arn, { ...t, desiredStatus: "STOPPED" });
  }

  /** A task is settled once RUNNING and, when its definition has a health check, HEALTHY. */
  private settled(t: TaskSnapshot): boolean {
    if (t.lastStatus !== "RUNNING") return false;
    const td = this.taskDefinitions.get(t.taskDefinitionArn);
    return !td?.hasHealthCheck || t.healthStatus === "HEALTHY";
  }

  /** A task definition by ARN; cached by ARN, so each revision is described once. */
  async taskDefinition(ref: string): Promise<ObservedTaskDefinition | undefined> {
    const cached = this.taskDefinitions.get(ref);
    if (cached) return cached;
    const found = await this.ecs.describeTaskDefinition(ref);
    if (!found) return undefined;
    return this.remember(found.taskDefinition, found.tags);
  }

  /**
   * An ACTIVE revision of `family` whose canonical content is `canonical`, also
   * after a restart: revisions already seen first, then the family's ACTIVE
   * revisions, newest first (at most REVISIONS_SCANNED), each described once.
   */
  async findTaskDefinition(family: string, canonical: string): Promise<string | undefined> {
    const hash = contentHash(canonical);
    const prefix = `:task-definition/${family}:`;
    for (const td of this.taskDefinitions.values()) if (td.arn.includes(prefix) && td.canonicalJson === canonical) return td.arn;
    for (const [arn, h] of this.revisionHashes) if (h === hash && arn.includes(prefix)) return arn;
    const key = `${family}\n${hash}`;
    if (this.noMatch.has(key)) return undefined;
    const arns = (await this.ecs.listActiveRevisions(family, REVISIONS_SCANNED)).filter((a) => familyOf(a) === family);
    for (const arn of arns) {
      let h = this.revisionHashes.get(arn);
      if (h === undefined) {
        const found = await this.ecs.describeTaskDefinition(arn);
        if (!found) continue;
        h = contentHash(canonicalJson(canonicalTaskDefinition(found.taskDefinition, found.tags)));
        this.revisionHashes.set(arn, h);
      }
      if (h === hash) return arn;
    }
    this.noMatch.add(key);
    return undefined;
  }

  /** A new resync looks for equal revisions again: another replica may have registered one meanwhile. */
  forgetMisses(): void {
    this.noMatch.clear();
  }

  /** Forgets a revision ECS refused (deregistered since it was seen). */
  forgetTaskDefinition(arn: string): void {
    this.taskDefinitions.delete(arn);
    this.revisionHashes.delete(arn);
  }

  /** Records a definition (described, or just registered by the operator). */
  remember(td: TaskDefinition, tags: Tag[]): ObservedTaskDefinition {
    const observed = toObserved(td, tags);
    this.taskDefinitions.set(observed.arn, observed);
    for (const key of this.noMatch) if (key.startsWith(`${familyOf(observed.arn)}\n`)) this.noMatch.delete(key);
    return observed;
  }
}

function toObserved(td: TaskDefinition, tags: Tag[]): ObservedTaskDefinition {
  const canonical = canonicalTaskDefinition(td, tags);
  return {
    arn: td.taskDefinitionArn ?? "",
    canonical,
    canonicalJson: canonicalJson(canonical),
    tags,
    hasHealthCheck: (td.containerDefinitions ?? []).some((c) => (c.essential ?? true) && c.healthCheck !== undefined),
  };
}
