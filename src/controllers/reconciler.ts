// Reconcile, on controller-runtime's contract: `reconcile(stack)` looks at
// one stack through the observation cache, decides, acts and reports, and
// returns a typed outcome; it is idempotent and level-triggered (each call
// starts from what the cache says now, refreshed to be at least as new as the
// reason it was called). One stack's failure (its cluster, its namespace, a
// rejected call) never touches another's.
//
// `refresh()` is the resync: it reads everything once, at the batched lower
// bound, and runs the safety guard on every cluster before any stack is
// reconciled: an extra compactor or monolithic task, or a second task of an
// ingester ordinal, is stopped ahead of every other action of every stack.
import type { Service } from "@aws-sdk/client-ecs";
import type { Logger } from "pino";
import type { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import { AwsCallError } from "../aws/errors.ts";
import type { SsmGateway } from "../aws/ssm-gateway.ts";
import type { WriteLimiter } from "../aws/write-limiter.ts";
import { LokiCallError, LokiGateway } from "../loki/gateway.ts";
import type { Issue } from "../resources/issues.ts";
import { desiredUnits, specParameterName, statusParameterName, type DesiredUnit } from "../resources/render.ts";
import type { ResolvedStack } from "../resources/resolve.ts";
import { checkSchemaHistory } from "../resources/schema-history.ts";
import { isManaged, TAGS } from "../resources/tags.ts";
import { validateText, type ValidationResult } from "../resources/validate.ts";
import { analyze, desiredTaskDefinition, type StackObservation } from "./analyze.ts";
import { describeDrift } from "./drift.ts";
import { describeAction, execute, type ExecuteFailure } from "./execute.ts";
import { observeLoki, type LokiView } from "./loki-view.ts";
import { NamespaceCache, type NamespaceView } from "./namespaces.ts";
import { Observer, type TaskSnapshot } from "./observe.ts";
import { ParameterCache } from "./parameters.ts";
import { plan } from "./plan.ts";
import { componentOfUnit, extraTasks, isSingleTaskUnit, isUnitOf, serviceOfTask, unitOfTask } from "./singletons.ts";
import { buildStatus, parseStatus, statusNeedsWrite, statusText, type StackStatus } from "./status.ts";
import { DegradedError, type Action, type Deferral, type DegradedReason, type Drift, type Outcome } from "./types.ts";

export interface ReconcileMetrics {
  reconciled(stack: string, outcome: Outcome["kind"], seconds: number): void;
  drift(kind: string): void;
  action(kind: string, result: "ok" | "failed"): void;
}

export interface ReconcilerOptions {
  prefix: string;
  ecs: EcsGateway;
  ssm: SsmGateway;
  discovery: DiscoveryGateway;
  limiter: WriteLimiter;
  logger: Logger;
  /** False when this replica must not write (not the leader, shutting down). */
  canWrite?: () => boolean;
  now?: () => Date;
  /** Monotonic milliseconds, for the cache's freshness. */
  clock?: () => number;
  metrics?: ReconcileMetrics;
  /** Who writes the status (the replica's id). */
  replica?: string;
  /** The resync period, recorded in status so readers can judge its age. */
  resyncSeconds?: number;
  /** Stacks reconciled at once by `pass()`. */
  concurrency?: number;
  /** Loki's HTTP API on the stack's tasks (default: direct to each task's private IP). */
  loki?: LokiGateway;
}

export type StackMode = "repair" | "report" | "suspended" | "invalid" | "deleted" | "retained";

export interface StackResult {
  name: string;
  generation?: number;
  mode: StackMode;
  errors: Issue[];
  warnings: Issue[];
  drifts: Drift[];
  planned: Action[];
  done: Action[];
  deferrals: Deferral[];
  /** Units created for the first time (not drift). */
  creating: string[];
  /** Units being rolled to a newer generation (not drift). */
  updating: string[];
  error?: string;
  outcome: Outcome;
  status?: StackStatus;
  statusWritten: boolean;
}

export interface ReconcileOptions {
  /** `plan` observes and decides but writes nothing, not even status. */
  mode: "apply" | "plan";
  /** The observation must be at least this new (monotonic ms); default: now. */
  since?: number;
}

export interface PassOptions {
  mode: "apply" | "plan";
  /** Only these stacks (all when unset). */
  only?: readonly string[];
}

export interface RefreshResult {
  since: number;
  stacks: string[];
  guards: GuardResult[];
  /** Set when the specs could not be read: nothing is reconciled, only the known clusters are guarded. */
  error?: string;
  /** What was thrown then. */
  cause?: unknown;
}

/** The result of the safety guard on one cluster. */
export interface GuardResult {
  cluster: string;
  stopped: string[];
  /** Set when the guard could not finish. */
  error?: string;
  /** Whether trying again soon may help (throttling, 5xx): the daemon's short path does. */
  retry?: boolean;
}

interface StackInput {
  name: string;
  specParameter: string;
  /** `keyId`: the KMS key of a SecureString spec, which its config parameters use too. */
  spec?: { value: string; version: number; secure: boolean; keyId?: string };
  previous?: StackStatus;
  /** The spec to converge to (the newest valid generation), if any. */
  stack?: ResolvedStack;
  appliedGeneration?: number;
  errors: Issue[];
  warnings: Issue[];
  cluster?: string;
  namespace?: string;
  units: DesiredUnit[];
  /** The units of the generation the stack last converged at, when a newer one is being rolled out. */
  baseline?: Map<string, DesiredUnit>;
}

/** The guard's own retries within one call: rounds, and the first backoff (doubling, jittered). */
const GUARD_ROUNDS = 4;
const GUARD_BACKOFF_MS = 100;
/**
 * How old the Cloud Map view may be when nothing is to be created or deleted in
 * it. Filtered ListServices pages through every service of the account (Cloud
 * Map filters after paging), and Cloud Map refuses to delete a service that
 * still has instances, so out-of-band drift there is rare: a full read every
 * five minutes, and a fresh one before any Cloud Map write.
 */
export const DISCOVERY_MAX_AGE_MS = 300_000;
/** A reconcile that made progress or waits on ECS looks again this soon. */
export const REQUEUE_MS = 5_000;
const MAX_REMEMBERED_STOPS = 5000;

export class Reconciler {
  readonly observer: Observer;
  readonly parameters: ParameterCache;
  readonly namespaces: NamespaceCache;
  private readonly stoppedByOperator = new Set<string>();
  /** Tasks whose ingester flushed and left the ring when asked. */
  private readonly flushed = new Set<string>();
  private readonly loki: LokiGateway;
  /** Validated specs of past generations, by `<stack>:<generation>` (a generation never changes). */
  private readonly generations = new Map<string, ValidationResult>();
  private readonly validated = new Map<string, ValidationResult>();
  /** Renders of converged generations, by `<stack>:<generation>`. */
  private readonly baselines = new Map<string, Map<string, DesiredUnit>>();
  /** By stack name: the last render, reused while the validated spec object is the same. */
  private readonly rendered = new Map<string, { stack: ResolvedStack; units: DesiredUnit[] }>();
  /** Per stack: the last stop event it reported, and the problem it last logged. */
  private readonly memory = new Map<string, { lastStop: number; problem?: string }>();
  /** What the guard did for a stack since its last reconcile: reported in that stack's result. */
  private readonly guarded = new Map<string, { drifts: Drift[]; done: Action[] }>();
  /** Clusters by the stacks last seen on them, for the safety guard. */
  private readonly stacksOnCluster = new Map<string, Set<string>>();
  private readonly now: () => Date;
  private readonly clock: () => number;
  private readonly canWrite: () => boolean;

  constructor(private readonly opts: ReconcilerOptions) {
    this.now = opts.now ?? (() => new Date());
    this.clock = opts.clock ?? (() => performance.now());
    this.canWrite = opts.canWrite ?? (() => true);
    this.loki = opts.loki ?? new LokiGateway();
    this.observer = new Observer(opts.ecs, (t) => this.isWatched(t), this.clock);
    this.parameters = new ParameterCache(opts.ssm, opts.prefix);
    this.namespaces = new NamespaceCache(opts.discovery, this.clock);
  }

  private isWatched(t: TaskSnapshot): boolean {
    const unit = unitOfTask(t);
    for (const stacks of this.stacksOnCluster.values()) for (const s of stacks) if (isUnitOf(s, unit)) return true;
    return false;
  }

  /** Stacks known to the cache: those with a spec or a status. */
  stacks(): string[] {
    return this.parameters.stackNames();
  }

  /** Whether a stack still has a spec or a status. */
  knows(name: string): boolean {
    return this.parameters.get(specParameterName(this.opts.prefix, name)) !== undefined || this.parameters.get(this.statusParameter(name)) !== undefined;
  }

  /**
   * The resync: parameters (metadata by path, values only for new versions),
   * then per cluster the task list, the safety guard, and the services; per
   * namespace its Cloud Map services. Per-cluster and per-namespace failures
   * are remembered for the stacks that need them. When the specs cannot be
   * read, only the known clusters are guarded and `error` says why.
   */
  async refresh(options: PassOptions): Promise<RefreshResult> {
    const since = this.clock();
    this.observer.forgetMisses();
    try {
      await this.parameters.refresh();
    } catch (e) {
      // Without the specs nothing new is decided, but the clusters already known are still guarded.
      const guards = options.mode === "apply" ? await Promise.all([...this.stacksOnCluster.keys()].map((c) => this.guard(c, since))) : [];
      return { since, stacks: [], guards, error: e instanceof Error ? e.message : String(e), cause: e };
    }
    const stacks = this.stacks().filter((n) => !options.only || options.only.includes(n));
    // A stack that cannot be loaded (its last valid generation unreadable) is left to its own reconcile to report.
    const inputs = (await Promise.all(stacks.map((n) => this.load(n).catch(() => undefined)))).filter((s): s is StackInput => s !== undefined);
    const byCluster = new Map<string, StackInput[]>();
    for (const s of inputs) if (s.cluster) byCluster.set(s.cluster, [...(byCluster.get(s.cluster) ?? []), s]);
    for (const [cluster, list] of byCluster) this.stacksOnCluster.set(cluster, new Set([...(this.stacksOnCluster.get(cluster) ?? []), ...list.map((s) => s.name)]));
    const guards: GuardResult[] = [];
    await Promise.all([
      ...[...byCluster].map(async ([cluster, list]) => {
        const guard = options.mode === "apply" ? await this.guard(cluster, since) : undefined;
        if (guard) guards.push(guard);
        await this.observer.ensureServices(cluster, list.flatMap((s) => this.serviceNames(s)), since).catch(() => undefined);
      }),
      ...[...new Set(inputs.flatMap((s) => s.namespace ?? []))].map((ns) => this.namespaces.ensure(ns, since - DISCOVERY_MAX_AGE_MS).catch(() => undefined)),
    ]);
    return { since, stacks, guards };
  }

  /**
   * The safety guard of one cluster: a fresh task list, then every extra task of
   * a single-task unit of a known stack is stopped, before anything else; only
   * tasks that are the stack's (ownedTask). Throttled reads and stops are
   * retried here, GUARD_ROUNDS times; `retry` tells the caller whether more
   * tries could help.
   */
  async guard(cluster: string, since = this.clock()): Promise<GuardResult> {
    const result: GuardResult = { cluster, stopped: [] };
    for (let round = 1; ; round++) {
      try {
        await this.guardOnce(cluster, since, result);
        delete result.error;
        delete result.retry;
        return result;
      } catch (e) {
        result.error = e instanceof Error ? e.message : String(e);
        result.retry = !(e instanceof AwsCallError) || e.retryable;
        if (!result.retry || round >= GUARD_ROUNDS || !this.canWrite()) return result;
        // A throttled read or stop: try again at once from a fresh read, not at the next resync.
        await new Promise((r) => setTimeout(r, GUARD_BACKOFF_MS * 2 ** (round - 1) * (0.5 + Math.random() / 2)));
        since = this.clock();
      }
    }
  }

  private async guardOnce(cluster: string, since: number, result: GuardResult): Promise<void> {
    const stacks = [...(this.stacksOnCluster.get(cluster) ?? [])];
    await this.observer.ensureTasks(cluster, since);
    const byUnit = new Map<string, { stack: string; tasks: TaskSnapshot[] }>();
    for (const t of this.observer.running(cluster)) {
      const unit = unitOfTask(t);
      const stack = stacks.find((s) => isSingleTaskUnit(s, unit));
      if (stack) byUnit.set(unit, { stack, tasks: [...(byUnit.get(unit)?.tasks ?? []), t] });
    }
    for (const [unit, { stack, tasks }] of byUnit) {
      if (tasks.length < 2) continue;
      const service = this.observer.service(cluster, unit);
      const owned = await this.ownedTasks(stack, cluster, tasks);
      const found = extraTasks(unit, owned, service?.deployments?.find((d) => d.status === "PRIMARY")?.id);
      if (!found) continue;
      const log = this.opts.logger.child({ stack, component: "guard" });
      const { component } = componentOfUnit(stack, unit);
      const kind = component === "ingester" ? "DuplicateOrdinalTask" : "ExtraSingletonTask";
      for (const t of found.extras) {
        const drift: Drift = { kind, stack, unit, component, task: t.arn, keep: found.keep.arn, group: t.group, ...(t.startedBy ? { startedBy: t.startedBy } : {}) };
        this.opts.metrics?.drift(kind);
        log.warn({ event: "drift", unit, drift: kind, ...driftFields(drift) }, `drift ${kind} ${unit}: ${describeDrift(drift)}`);
        const action: Action = { kind: "StopTask", unit, component, cluster, taskArn: t.arn, reason: `lokistack: extra ${component} task for ${unit}`, repairs: [kind] };
        const done = await execute([action], this.executeDeps(undefined), log);
        if (done.failure) throw done.failure.kind === "call" ? done.failure.error : new Error(done.failure.kind === "lease" ? "lost the lease" : done.failure.reason);
        result.stopped.push(t.arn);
        const g = this.guarded.get(stack) ?? { drifts: [], done: [] };
        g.drifts.push(drift);
        g.done.push(action);
        this.guarded.set(stack, g);
      }
    }
  }

  /**
   * Whether a task is the stack's to stop. A task of a service belongs to that
   * service: the stack's when the service carries its ownership tags. A task
   * started outside any service belongs to its family, which is the unit of
   * the same name: the stack's when that unit's service carries its tags (a
   * hand-registered revision of the compactor's family still runs a compactor
   * on the stack's store). Without a known service, the revision's own tags
   * decide. The guard and the full reconcile use this one rule.
   */
  private async ownedTask(stack: string, cluster: string, t: TaskSnapshot): Promise<boolean> {
    const ours = (tags: { key?: string; value?: string }[] | undefined) => isManaged(tags) && tags?.find((x) => x.key === TAGS.stack)?.value === stack;
    const unit = unitOfTask(t);
    const svc = this.observer.service(cluster, unit);
    if (svc && svc.status === "ACTIVE") return ours(svc.tags);
    const td = await this.observer.taskDefinition(t.taskDefinitionArn);
    return td !== undefined && ours(td.tags);
  }

  /** The tasks of `tasks` that are the stack's (ownedTask). */
  private async ownedTasks(stack: string, cluster: string, tasks: readonly TaskSnapshot[]): Promise<TaskSnapshot[]> {
    const owned: TaskSnapshot[] = [];
    for (const t of tasks) if (await this.ownedTask(stack, cluster, t)) owned.push(t);
    return owned;
  }

  /** The spec watch: known specs' metadata by name; returns the stacks whose spec changed or disappeared. */
  async watchSpecs(): Promise<string[]> {
    const names = this.stacks().map((n) => specParameterName(this.opts.prefix, n)).filter((n) => this.parameters.get(n));
    const { changed, removed } = await this.parameters.refreshNames(names);
    return [...new Set([...changed, ...removed].map((n) => this.parameters.stackOf(n)!))].sort();
  }

  /** A whole pass, for `plan`, `apply --once` and tests: refresh, then reconcile every stack. */
  async pass(options: PassOptions): Promise<StackResult[]> {
    const started = performance.now();
    const { since, stacks, error, cause } = await this.refresh(options);
    if (error) throw new Error(`cannot read the specs under ${this.opts.prefix}: ${error}`, { cause });
    const results: StackResult[] = [];
    const queue = [...stacks];
    const worker = async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) results.push(await this.reconcile(name, { mode: options.mode, since }));
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency ?? 4) }, worker));
    results.sort((a, b) => a.name.localeCompare(b.name));
    const busy = results.some((r) => r.drifts.length > 0 || r.done.length > 0 || r.error);
    // A quiet pass is a debug line: steady state should not flood CloudWatch.
    this.opts.logger[busy ? "info" : "debug"](
      {
        event: "pass",
        mode: options.mode,
        stacks: results.length,
        drifts: results.reduce((n, r) => n + r.drifts.length, 0),
        actions: results.reduce((n, r) => n + r.done.length, 0),
        errors: results.filter((r) => r.error).length,
        durationMs: Math.round(performance.now() - started),
      },
      "reconcile pass",
    );
    return results;
  }

  /** Reconciles one stack against the cache, made at least as new as `since`. */
  async reconcile(name: string, options: ReconcileOptions): Promise<StackResult> {
    const t0 = performance.now();
    const since = options.since ?? this.clock();
    const log = this.opts.logger.child({ stack: name });
    let s: StackInput;
    try {
      s = await this.load(name);
    } catch (e) {
      const outcome = this.outcomeOf(e);
      this.logProblem(name, outcome, log);
      return this.finish({ ...this.result({ name, specParameter: "", errors: [], warnings: [], units: [] }), outcome, ...(outcome.kind === "error" ? { error: outcome.message } : {}) }, t0);
    }
    const result = this.result(s);
    // Neither spec nor status: nothing of the stack is known any more (a late timer, a finished deletion).
    if (!s.spec && !s.previous) return this.finish(result, t0);
    const writes = options.mode === "apply" && this.canWrite();
    let observed: StackObservation | undefined;
    let ready = new Set<string>();
    try {
      if (result.mode === "retained") {
        log.info({ event: "stack.deleted", deletionPolicy: "retain", retained: s.previous?.inventory.services ?? [] }, "spec deleted: the stack's services are retained and no longer managed");
        await this.act(s, result, [this.deleteStatus(s)], writes, log);
        this.forget(name);
        result.outcome = { kind: "done" };
        return this.finish(result, t0);
      }
      if (s.errors.length > 0) {
        log.warn({ event: "spec.invalid", generation: s.spec?.version, errors: s.errors.map((e) => `${e.path}: ${e.message}`), convergingTo: s.appliedGeneration ?? null }, "spec is invalid: nothing changes for it");
      }
      if (!s.cluster || (!s.stack && result.mode !== "deleted")) {
        // No valid generation to converge to: nothing to observe or decide; the spec watch brings the fix.
        // (Without a desired state every owned service would look orphaned.)
        await this.report(s, result, undefined, log, writes);
        result.outcome = { kind: "done" };
        return this.finish(result, t0);
      }
      const namespace = s.namespace ? await this.namespaceFor(s, since) : undefined;
      if (s.stack && !namespace?.id) {
        throw new DegradedError("NamespaceNotFound", `Cloud Map namespace '${s.namespace}' not found: create it (a private DNS namespace in the stack's VPC) first`);
      }
      observed = await this.observe(s, since, namespace);
      observed.loki = await this.observeLoki(s, observed);
      const analysis = analyze(s.name, s.units, observed);
      ready = new Set(analysis.units.filter((u) => u.ready).map((u) => u.desired.unit.name));
      // What the guard already stopped for this stack is part of this reconcile's report.
      const guarded = this.guarded.get(name) ?? { drifts: [], done: [] };
      this.guarded.delete(name);
      result.creating = analysis.units.filter((u) => u.creating).map((u) => u.desired.unit.name);
      result.updating = analysis.units.filter((u) => u.updating && (!u.ready || !u.taskDefinitionCurrent || !u.configCurrent || u.serviceDiffs.length > 0)).map((u) => u.desired.unit.name);
      const decided = plan(analysis, { cluster: s.cluster, namespaceId: namespace?.id ?? "", deleteOrphans: true });
      for (const d of analysis.drifts) {
        this.opts.metrics?.drift(d.kind);
        log.warn({ event: "drift", unit: d.unit, component: d.component, drift: d.kind, ...driftFields(d) }, `drift ${d.kind} ${d.unit}: ${describeDrift(d)}`);
      }
      if (result.mode === "deleted" && decided.actions.length === 0) {
        const tasks = [...observed.running, ...(await this.ownedTasks(s.name, s.cluster, observed.stopping))];
        if (tasks.length > 0) decided.deferrals.push({ unit: s.name, reason: `the status is deleted once the stack's last tasks have stopped: ${tasks.map((t) => `${unitOfTask(t)} ${t.lastStatus}`).join(", ")}` });
        else if (this.nothingLeft(observed)) decided.actions.push(this.deleteStatus(s));
      }
      result.deferrals = decided.deferrals;
      for (const d of decided.deferrals) log.debug({ event: "deferred", unit: d.unit, reason: d.reason }, `deferred ${d.unit}`);
      const failure = await this.act(s, result, decided.actions, writes, log);
      result.drifts = [...guarded.drifts, ...analysis.drifts];
      result.planned = [...guarded.done, ...result.planned];
      result.done = [...guarded.done, ...result.done];
      if (failure) this.raise(failure, result);
      if (result.done.some((a) => a.kind === "DeleteParameter" && a.parameter === this.statusParameter(name))) {
        log.info({ event: "stack.deleted", deletionPolicy: "delete" }, "spec deleted: every owned object is gone");
        this.forget(name);
        result.outcome = { kind: "done" };
        return this.finish(result, t0);
      }
      const collisions = analysis.drifts.filter((d) => d.kind === "NameCollision");
      const unreachable = this.lokiUnreachable(observed);
      result.outcome =
        collisions.length > 0
          ? { kind: "degraded", reason: "ResourceNotOwned", message: `${collisions.map((c) => c.unit).join(", ")} exist without the ownership tag` }
          : unreachable
            ? { kind: "degraded", reason: "LokiUnreachable", message: `${unreachable}. ${REACH_LOKI}` }
          : result.planned.length > 0 || result.deferrals.length > 0 || analysis.units.some((u) => !u.ready)
            ? { kind: "requeue", afterMs: REQUEUE_MS, reason: result.done.length > 0 ? "verify the repair" : "waiting for ECS" }
            : { kind: "done" };
    } catch (e) {
      result.outcome = this.outcomeOf(e);
      if (result.outcome.kind !== "degraded") result.error = result.outcome.kind === "error" ? result.outcome.message : undefined;
    }
    this.logProblem(name, result.outcome, log);
    await this.report(s, result, observed, log, writes, ready);
    return this.finish(result, t0);
  }

  /** Loki's view of the stack: the readiness of its ingester ordinals' tasks and the ring. */
  private async observeLoki(s: StackInput, observed: StackObservation): Promise<LokiView | undefined> {
    const ordinals = new Set(s.units.filter((u) => u.unit.component === "ingester").map((u) => `service:${u.unit.name}`));
    if (ordinals.size === 0) return undefined;
    const distributor = s.units.find((u) => u.unit.component === "distributor")?.unit.name;
    return observeLoki(
      this.loki,
      observed.running.filter((t) => ordinals.has(t.group)),
      observed.running.filter((t) => t.group === `service:${distributor}`),
    );
  }

  /** Which task's Loki did not answer at all, long after it started: the network, not its start-up. */
  private lokiUnreachable(observed: StackObservation): string | undefined {
    const now = this.now().getTime();
    for (const t of observed.running) {
      const r = observed.loki?.readiness.get(t.arn);
      if (r instanceof LokiCallError && r.unreachable && t.startedAt !== undefined && now - t.startedAt > LOKI_STARTUP_MS) return `${unitOfTask(t)}: ${r.message}`;
    }
    return undefined;
  }

  private finish(result: StackResult, t0: number): StackResult {
    this.opts.metrics?.reconciled(result.name, result.outcome.kind, (performance.now() - t0) / 1000);
    return result;
  }

  private result(s: StackInput): StackResult {
    const spec = s.stack?.spec;
    const mode: StackMode = !s.spec
      ? s.previous?.deletionPolicy === "delete"
        ? "deleted"
        : "retained"
      : !s.stack
        ? "invalid"
        : spec!.suspend
          ? "suspended"
          : spec!.drift.policy === "report"
            ? "report"
            : "repair";
    return { name: s.name, ...(s.spec ? { generation: s.spec.version } : {}), mode, errors: s.errors, warnings: s.warnings, drifts: [], planned: [], done: [], deferrals: [], creating: [], updating: [], outcome: { kind: "done" }, statusWritten: false };
  }

  /** Executes planned actions when this reconcile may act; logs them as skipped otherwise. */
  private async act(s: StackInput, result: StackResult, actions: Action[], writes: boolean, log: Logger): Promise<ExecuteFailure | undefined> {
    result.planned = actions;
    if (!writes || !(result.mode === "repair" || result.mode === "deleted" || result.mode === "retained")) {
      const why = !writes ? (this.canWrite() ? "plan" : "not the leader") : result.mode === "suspended" ? "spec.suspend" : result.mode === "report" ? "drift.policy report" : "invalid spec";
      for (const a of actions) log.info({ event: "action", unit: a.unit, component: a.component, action: a.kind, repairs: a.repairs, result: "skipped", reason: why, ...describeAction(a) }, `would ${a.kind} ${a.unit}`);
      return undefined;
    }
    const executed = await execute(actions, this.executeDeps(s.namespace, s.spec?.secure ? { keyId: s.spec.keyId } : undefined), log);
    result.done = executed.done;
    // Stops older than the last few thousand have long been reported; keep memory bounded.
    for (const remembered of [this.stoppedByOperator, this.flushed]) {
      for (const arn of remembered) {
        if (remembered.size <= MAX_REMEMBERED_STOPS) break;
        remembered.delete(arn);
      }
    }
    return executed.failure;
  }

  /** `secureConfig`: the stack's spec is a SecureString, so its config parameters are too, under the same key. */
  private executeDeps(namespace: string | undefined, secureConfig?: { keyId?: string | undefined }) {
    return {
      ...(secureConfig ? { secureConfig } : {}),
      ecs: this.opts.ecs,
      ssm: this.opts.ssm,
      discovery: this.opts.discovery,
      observer: this.observer,
      parameters: this.parameters,
      namespaces: this.namespaces,
      ...(namespace ? { namespace } : {}),
      limiter: this.opts.limiter,
      canWrite: this.canWrite,
      stoppedByOperator: this.stoppedByOperator,
      loki: this.loki,
      flushed: this.flushed,
      onAction: (a: Action, r: "ok" | "failed") => this.opts.metrics?.action(a.kind, r),
    };
  }

  /** Turns an execution failure into the outcome's terms: thrown, caught by reconcile. */
  private raise(failure: ExecuteFailure, result: StackResult): void {
    if (failure.kind === "lease") throw new TransientProblem("lost the lease or shutting down");
    if (failure.kind === "busy") {
      result.deferrals.push({ unit: failure.action.unit, reason: failure.reason });
      return;
    }
    if (failure.error instanceof LokiCallError) {
      const a = failure.action;
      if (a.kind === "FlushIngester") {
        throw new DegradedError("IngesterFlushFailed", `${a.unit}: ${failure.error.message}; the ordinal stays until its ingester has flushed${failure.error.unreachable ? `. ${REACH_LOKI}` : ""}`);
      }
      if (failure.error.unreachable) throw new DegradedError("LokiUnreachable", `${a.kind} ${a.unit}: ${failure.error.message}. ${REACH_LOKI}`);
    }
    if (failure.staleTaskDefinition) throw new TransientProblem(`${failure.action.kind} ${failure.action.unit}: ${failure.staleTaskDefinition} is no longer ACTIVE; an equal revision is registered next`);
    throw Object.assign(failure.error, { action: failure.action });
  }

  /** What a thrown problem means for the work queue. */
  private outcomeOf(e: unknown): Outcome {
    if (e instanceof DegradedError) return { kind: "degraded", reason: e.reason, message: e.message };
    const where = (e as { action?: Action }).action;
    const prefix = where ? `${where.kind} ${where.unit}: ` : "";
    if (e instanceof AwsCallError) {
      const degraded = degradedReasonOf(e);
      if (degraded) return { kind: "degraded", reason: degraded, message: `${prefix}${e.message}` };
      return { kind: "error", message: `${prefix}${e.message}` };
    }
    return { kind: "error", message: `${prefix}${e instanceof Error ? e.message : String(e)}` };
  }

  /** A problem is logged when it appears or changes, not at every reconcile. */
  private logProblem(name: string, outcome: Outcome, log: Logger): void {
    const memory = this.memoryOf(name);
    const key = outcome.kind === "degraded" ? `${outcome.reason}: ${outcome.message}` : outcome.kind === "error" ? `error: ${outcome.message}` : undefined;
    if (key === memory.problem) return;
    if (outcome.kind === "degraded") log.warn({ event: "degraded", reason: outcome.reason, error: outcome.message }, `degraded: ${outcome.reason}`);
    else if (outcome.kind === "error") log.error({ event: "reconcile", result: "error", error: outcome.message }, "reconcile failed");
    else if (memory.problem) log.info({ event: "recovered", was: memory.problem }, "recovered");
    memory.problem = key;
  }

  private memoryOf(name: string) {
    let m = this.memory.get(name);
    if (!m) this.memory.set(name, (m = { lastStop: this.observer.lastStop }));
    return m;
  }

  private forget(name: string): void {
    this.memory.delete(name);
    this.rendered.delete(name);
    this.guarded.delete(name);
    for (const stacks of this.stacksOnCluster.values()) stacks.delete(name);
  }

  private statusParameter(name: string): string {
    return statusParameterName(this.opts.prefix, name);
  }

  private deleteStatus(s: StackInput): Action {
    return { kind: "DeleteParameter", unit: s.name, component: "status", parameter: this.statusParameter(s.name), repairs: ["Delete"] };
  }

  /**
   * A deleted stack is finished when ECS, Cloud Map and SSM hold nothing of it but its status,
   * and none of its tasks runs or is stopping (the caller checks): ECS makes a service INACTIVE
   * once its tasks are STOPPING (an ingester may still be shutting down).
   */
  private nothingLeft(observed: StackObservation): boolean {
    return [...observed.services.values()].every((svc) => svc.status === "INACTIVE" || !isManaged(svc.tags)) && observed.registries.size === 0 && observed.configs.size === 0;
  }

  /**
   * The stack's Cloud Map namespace. A view up to DISCOVERY_MAX_AGE_MS old is
   * enough while it holds exactly the stack's desired services; a reconcile
   * that would create or delete one reads it fresh first, so no Cloud Map
   * write is ever decided on an old view.
   */
  private async namespaceFor(s: StackInput, since: number): Promise<NamespaceView> {
    let view: NamespaceView;
    try {
      view = await this.namespaces.ensure(s.namespace!, since - DISCOVERY_MAX_AGE_MS);
    } catch (e) {
      // A shared read that failed (throttled) is not this stack's verdict: one read of its own.
      if (!(e instanceof AwsCallError && e.retryable)) throw e;
      return this.namespaces.ensure(s.namespace!, this.clock());
    }
    const desired = new Set(s.units.map((u) => u.unit.name));
    const mine = [...view.services.keys()].filter((n) => isUnitOf(s.name, n));
    const exact = view.id !== undefined && mine.length === desired.size && mine.every((n) => desired.has(n));
    return exact ? view : this.namespaces.ensure(s.namespace!, since);
  }

  /** Service names the stack needs described: its units and its last inventory. */
  private serviceNames(s: StackInput): string[] {
    return [...new Set([...s.units.map((u) => u.unit.name), ...(s.previous?.inventory.services ?? [])])];
  }

  /** Those, and the stack's services that only its running tasks reveal (an orphan missing from the inventory). */
  private observedServiceNames(s: StackInput, cluster: string): string[] {
    const fromTasks = this.observer.running(cluster).flatMap((t) => {
      const service = serviceOfTask(t);
      return service && isUnitOf(s.name, service) ? [service] : [];
    });
    return [...new Set([...this.serviceNames(s), ...fromTasks])];
  }

  private async observe(s: StackInput, since: number, namespace: NamespaceView | undefined): Promise<StackObservation> {
    const cluster = s.cluster!;
    // A shared read that failed (throttled) is not this stack's verdict: it tries once more with a read of its own.
    const withRetry = async (read: (since: number) => Promise<void>) => {
      try {
        await read(since);
      } catch (e) {
        if (!(e instanceof AwsCallError && e.retryable)) throw e;
        await read(this.clock());
      }
    };
    let serviceNames: string[];
    try {
      await withRetry((at) => this.observer.ensureTasks(cluster, at));
      serviceNames = this.observedServiceNames(s, cluster);
      await withRetry((at) => this.observer.ensureServices(cluster, serviceNames, at));
    } catch (e) {
      if (e instanceof AwsCallError && e.code === "ClusterNotFoundException") throw new DegradedError("ClusterNotFound", `ECS cluster '${cluster}' not found: create it, or correct spec.cluster`);
      throw e;
    }
    const mine = (t: TaskSnapshot) => isUnitOf(s.name, unitOfTask(t));
    const services = new Map<string, Service>();
    for (const [name, svc] of this.observer.services(cluster, serviceNames)) if (isUnitOf(s.name, name)) services.set(name, svc);
    const taskDefinitions = new Map<string, Awaited<ReturnType<Observer["taskDefinition"]>> & object>();
    for (const svc of services.values()) {
      if (!svc.taskDefinition || svc.status !== "ACTIVE") continue;
      const td = await this.observer.taskDefinition(svc.taskDefinition);
      if (td) taskDefinitions.set(td.arn, td);
    }
    // For units that need another revision: is there already an ACTIVE one with the desired content?
    const matchingTaskDefinitions = new Map<string, string>();
    for (const u of s.units) {
      const svc = services.get(u.unit.name);
      const current = svc?.taskDefinition ? taskDefinitions.get(svc.taskDefinition) : undefined;
      const desired = desiredTaskDefinition(u).json;
      if (current?.canonicalJson === desired) continue;
      const match = await this.observer.findTaskDefinition(u.unit.name, desired);
      if (match) matchingTaskDefinitions.set(u.unit.name, match);
    }
    const configs = new Map<string, string>();
    const unprotectedConfigs = new Set<string>();
    for (const p of this.parameters.under(`${this.opts.prefix}/${s.name}/config/`)) {
      configs.set(p.name, p.value);
      if (s.spec?.secure && (p.type !== "SecureString" || (s.spec.keyId !== undefined && p.keyId !== s.spec.keyId))) unprotectedConfigs.add(p.name);
    }
    const registries = new Map<string, string>();
    for (const [name, arn] of namespace?.services ?? []) if (isUnitOf(s.name, name)) registries.set(name, arn);
    const desiredNames = new Set(s.units.map((u) => u.unit.name));
    const registryTags = new Map<string, Awaited<ReturnType<NamespaceCache["tags"]>>>();
    for (const [name, arn] of registries) if (!desiredNames.has(name)) registryTags.set(arn, await this.namespaces.tags(arn));
    const memory = this.memoryOf(s.name);
    const { stops, last } = this.observer.stopsSince(cluster, memory.lastStop);
    memory.lastStop = last;
    const running = await this.ownedTasks(s.name, cluster, this.observer.running(cluster).filter(mine));
    return {
      services,
      taskDefinitions,
      matchingTaskDefinitions,
      running,
      stopped: stops.filter(mine),
      // Owned or not, a task still stopping holds its unit's slot.
      stopping: this.observer.stopping(cluster).filter(mine),
      stoppedByOperator: this.stoppedByOperator,
      flushed: this.flushed,
      now: this.now().getTime(),
      configs,
      unprotectedConfigs,
      registries,
      registryTags,
      existed: new Set(s.previous?.inventory.services ?? []),
      ...(s.baseline ? { baseline: s.baseline } : {}),
    };
  }

  /** Reads and validates a stack's spec from the cache; an invalid generation falls back to the last valid one. */
  private async load(name: string): Promise<StackInput> {
    const { prefix } = this.opts;
    const specParameter = specParameterName(prefix, name);
    const cached = this.parameters.get(specParameter);
    const spec = cached ? { value: cached.value, version: cached.version, secure: cached.type === "SecureString", ...(cached.keyId ? { keyId: cached.keyId } : {}) } : undefined;
    const previous = parseStatus(this.parameters.get(this.statusParameter(name))?.value);
    const base: StackInput = {
      name,
      specParameter,
      ...(spec ? { spec } : {}),
      ...(previous ? { previous } : {}),
      errors: [],
      warnings: [],
      units: [],
      ...(previous?.cluster ? { cluster: previous.cluster } : {}),
      ...(previous?.namespace ? { namespace: previous.namespace } : {}),
    };
    if (!spec) return base;
    const now = this.now();
    const result = this.validate(name, spec.value, now);
    if (result.ok) {
      const history = checkSchemaHistory(previous?.schemas ?? [], result.stack.schemas, now);
      if (history.length === 0) return this.withBaseline(this.withStack(base, result.stack, spec.version, result.warnings), now);
      base.errors = history;
    } else {
      base.errors = result.errors;
    }
    // Keep converging to the last valid generation.
    const applied = previous?.appliedGeneration;
    if (applied !== undefined && applied !== spec.version) {
      const old = await this.generation(name, applied, now);
      if (old?.ok) return this.withBaseline({ ...this.withStack(base, old.stack, applied, old.warnings), errors: base.errors }, now);
    }
    return base;
  }

  /** A generation's spec, validated; cached, since a generation never changes. */
  private async generation(name: string, version: number, now: Date): Promise<ValidationResult | undefined> {
    const key = `${name}:${version}`;
    let found = this.generations.get(key);
    if (!found) {
      const text = (await this.opts.ssm.get(`${this.opts.prefix}/${name}/spec:${version}`))?.Value;
      if (text === undefined) return undefined;
      found = this.validate(name, text, now);
      this.generations.set(key, found);
    }
    return found;
  }

  /** The units of the generation the stack last converged at, when the one being applied is newer. */
  private async withBaseline(s: StackInput, now: Date): Promise<StackInput> {
    const converged = s.previous?.convergedGeneration;
    if (converged === undefined || s.appliedGeneration === undefined || converged === s.appliedGeneration) return s;
    // A generation SSM no longer keeps (100 versions) gives no baseline: differences then read as drift.
    const key = `${s.name}:${converged}`;
    let baseline = this.baselines.get(key);
    if (!baseline) {
      const old = await this.generation(s.name, converged, now).catch(() => undefined);
      if (!old?.ok) return s;
      baseline = new Map(desiredUnits(old.stack, { parameterPrefix: this.opts.prefix }).map((u) => [u.unit.name, u]));
      if (this.baselines.size > 100) this.baselines.clear();
      this.baselines.set(key, baseline);
    }
    return { ...s, baseline };
  }

  private validate(name: string, text: string, now: Date): ValidationResult {
    // The result depends on the text and, through the schema cutoff, on the day.
    const key = `${name}\n${now.toISOString().slice(0, 13)}\n${text}`;
    const cached = this.validated.get(key);
    if (cached) return cached;
    let result = validateText(text, { now });
    if (result.ok && result.stack.name !== name) {
      result = { ok: false, errors: [{ path: "metadata.name", message: `must be '${name}', the name in the parameter path` }], warnings: result.warnings };
    }
    if (this.validated.size > 1000) this.validated.clear();
    this.validated.set(key, result);
    return result;
  }

  private withStack(base: StackInput, stack: ResolvedStack, generation: number, warnings: Issue[]): StackInput {
    // Rendering is pure: one render per generation, not one per reconcile.
    let units = this.rendered.get(base.name);
    if (!units || units.stack !== stack) {
      units = { stack, units: desiredUnits(stack, { parameterPrefix: this.opts.prefix }) };
      this.rendered.set(base.name, units);
    }
    return { ...base, stack, appliedGeneration: generation, warnings, cluster: stack.spec.cluster, namespace: stack.spec.discovery.namespace, units: units.units };
  }

  private async report(s: StackInput, result: StackResult, observed: StackObservation | undefined, log: Logger, writes: boolean, ready: ReadonlySet<string> = new Set()): Promise<void> {
    // The units the operator has created: those it owns now, and desired ones that existed before (a deleted one is drift, not a creation).
    const desiredNames = new Set(s.units.map((u) => u.unit.name));
    const owned = [
      ...[...(observed?.services.values() ?? [])].filter((svc) => svc.status === "ACTIVE" && isManaged(svc.tags)).map((svc) => svc.serviceName!),
      ...(s.previous?.inventory.services ?? []).filter((n) => desiredNames.has(n)),
    ];
    const spec = s.stack?.spec;
    const outcome = result.outcome;
    const status = buildStatus({
      ...(s.previous ? { previous: s.previous } : {}),
      generation: s.spec?.version ?? s.previous?.observedGeneration ?? 0,
      ...(s.appliedGeneration !== undefined ? { appliedGeneration: s.appliedGeneration } : {}),
      ...(s.cluster ? { cluster: s.cluster } : {}),
      ...(s.namespace ? { namespace: s.namespace } : {}),
      ...(spec ? { deletionPolicy: spec.deletionPolicy } : s.previous?.deletionPolicy ? { deletionPolicy: s.previous.deletionPolicy } : {}),
      invalid: s.errors,
      warnings: s.warnings,
      suspended: spec?.suspend ?? false,
      reportOnly: spec?.drift.policy === "report",
      schemas: s.stack ? s.stack.schemas.map((x) => ({ from: x.from, version: x.version, store: x.store })) : (s.previous?.schemas ?? []),
      drifts: result.drifts,
      actionsTaken: result.done.length,
      deferrals: result.deferrals,
      errors: result.error ? [result.error] : [],
      ...(outcome.kind === "degraded" ? { degraded: { reason: outcome.reason, message: outcome.message } } : {}),
      creating: result.creating.length > 0,
      updating: result.updating.length > 0,
      units: s.units.map((u) => {
        const service = observed?.services.get(u.unit.name);
        const range = u.unit.resources.autoscaling;
        // Autoscaling owns the count within its range: ready means running what it asked for.
        const desired = range && service?.desiredCount !== undefined ? Math.min(Math.max(service.desiredCount, range.min), range.max) : u.unit.desiredCount;
        return { name: u.unit.name, component: u.unit.component, desired, ready: ready.has(u.unit.name), ...(service ? { service } : {}) };
      }),
      owned,
      now: this.now(),
      ...(this.opts.replica ? { replica: this.opts.replica } : {}),
      ...(this.opts.resyncSeconds ? { resyncSeconds: this.opts.resyncSeconds } : {}),
    });
    result.status = status;
    if (writes && statusNeedsWrite(s.previous, status, this.now())) {
      try {
        await this.opts.limiter.acquire("parameter");
        const text = statusText(status);
        this.parameters.noteWrite(this.statusParameter(s.name), text, await this.opts.ssm.put(this.statusParameter(s.name), text));
        result.statusWritten = true;
      } catch (e) {
        result.error ??= `writing status: ${e instanceof Error ? e.message : String(e)}`;
        if (result.outcome.kind === "done") result.outcome = { kind: "error", message: result.error };
      }
    }
    const busy = result.drifts.length > 0 || result.done.length > 0 || result.error !== undefined || result.statusWritten;
    log[busy ? "info" : "debug"](
      { event: "reconcile", generation: result.generation ?? null, mode: result.mode, outcome: result.outcome.kind, drifts: result.drifts.length, actions: result.done.length, planned: result.planned.length, deferred: result.deferrals.length, creating: result.creating.length, result: result.error ? "error" : "ok", ...(result.error ? { error: result.error } : {}) },
      `reconciled ${s.name}`,
    );
  }
}

/** What a person must make true when Loki cannot be reached. */
const REACH_LOKI = "The operator must reach its stack's tasks on TCP 3100: allow it in their security group from the operator's (see the README, 'Reaching Loki')";

/** How long a task may run before Loki not answering on it is the network's fault, not its start-up. */
const LOKI_STARTUP_MS = 120_000;

/** A failure worth another try soon (lost lease, a stale revision): an error outcome with backoff. */
class TransientProblem extends Error {}

/** AWS errors a user must act on: they degrade the stack instead of being retried with backoff. */
function degradedReasonOf(e: AwsCallError): DegradedReason | undefined {
  if (e.code === "ClusterNotFoundException") return "ClusterNotFound";
  if (e.code === "AccessDeniedException" || e.code === "AccessDenied") return "AccessDenied";
  if (!e.retryable && ["InvalidParameterException", "ClientException", "ValidationException", "InvalidInput"].includes(e.code)) return "RequestRejected";
  return undefined;
}

/** Structured fields of a drift for its log line (field changes, never hidden values); the line's text describes it. */
function driftFields(d: Drift): Record<string, unknown> {
  const { kind: _kind, stack: _stack, unit: _unit, component: _component, ...rest } = d;
  return rest;
}
