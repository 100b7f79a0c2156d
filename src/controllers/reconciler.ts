// The reconcile pass: for every stack, observe → diff → act → report.
// Idempotent and resumable: each pass starts from what ECS and SSM say now,
// so a pass interrupted at any point is finished by the next one.
import type { Service } from "@aws-sdk/client-ecs";
import type { Parameter as SsmParameter } from "@aws-sdk/client-ssm";
import type { Logger } from "pino";
import type { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import type { SsmGateway } from "../aws/ssm-gateway.ts";
import type { WriteLimiter } from "../aws/write-limiter.ts";
import { canonicalJson } from "../resources/hash.ts";
import { isManaged } from "../resources/tags.ts";
import type { Issue } from "../resources/issues.ts";
import { desiredUnits, type DesiredUnit } from "../resources/render.ts";
import type { ResolvedStack } from "../resources/resolve.ts";
import { checkSchemaHistory } from "../resources/schema-history.ts";
import { validateText, type ValidationResult } from "../resources/validate.ts";
import { analyze, desiredTaskDefinition, isUnitOf, type StackObservation } from "./analyze.ts";
import { describeAction, execute } from "./execute.ts";
import { Observer, type ClusterObservation, type ObservedTaskDefinition, type TaskSnapshot } from "./observe.ts";
import { plan } from "./plan.ts";
import { buildStatus, parseStatus, statusText, type StackStatus } from "./status.ts";
import type { Action, Deferral, Drift } from "./types.ts";

export interface ReconcileMetrics {
  reconciled(stack: string, result: "success" | "error", seconds: number): void;
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
  observer?: Observer;
  /** False when this replica must not write (not the leader, shutting down). */
  canWrite?: () => boolean;
  now?: () => Date;
  metrics?: ReconcileMetrics;
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
  error?: string;
  status?: StackStatus;
  statusWritten: boolean;
}

export interface PassOptions {
  /** `plan` observes and decides but writes nothing, not even status. */
  mode: "apply" | "plan";
  /** Only these stacks (all when unset). */
  only?: readonly string[];
}

interface NamespaceObservation {
  /** Undefined when no namespace of that name exists. */
  id?: string;
  services: Map<string, string>;
}

interface StackInput {
  name: string;
  specParameter: string;
  spec?: SsmParameter;
  previous?: StackStatus;
  /** The spec to converge to (the newest valid generation), if any. */
  stack?: ResolvedStack;
  appliedGeneration?: number;
  errors: Issue[];
  warnings: Issue[];
  cluster?: string;
  units: DesiredUnit[];
}

const MAX_REMEMBERED_STOPS = 5000;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export class Reconciler {
  readonly observer: Observer;
  private readonly stoppedByOperator = new Set<string>();
  private readonly lastValid = new Map<string, ValidationResult>();
  private readonly validated = new Map<string, ValidationResult>();
  /** By stack name: the last render, reused while the validated spec object is the same. */
  private readonly rendered = new Map<string, { stack: ResolvedStack; units: DesiredUnit[] }>();
  private readonly now: () => Date;
  private readonly canWrite: () => boolean;

  constructor(private readonly opts: ReconcilerOptions) {
    this.observer = opts.observer ?? new Observer(opts.ecs);
    this.now = opts.now ?? (() => new Date());
    this.canWrite = opts.canWrite ?? (() => true);
  }

  async pass(options: PassOptions): Promise<StackResult[]> {
    const started = performance.now();
    const { prefix } = this.opts;
    const parameters = await this.opts.ssm.listByPath(prefix);
    const byName = new Map(parameters.map((p) => [p.Name!, p]));
    const names = new Set<string>();
    const pattern = new RegExp(`^${escapeRegExp(prefix)}/([^/]+)/(spec|status)$`);
    for (const p of parameters) {
      const m = pattern.exec(p.Name ?? "");
      if (m) names.add(m[1]!);
    }
    const selected = [...names].filter((n) => !options.only || options.only.includes(n)).sort();
    const inputs = await Promise.all(selected.map((name) => this.load(name, byName)));

    // Observe once per cluster, for every stack on it.
    const clusters = new Map<string, StackInput[]>();
    for (const s of inputs) if (s.cluster) clusters.set(s.cluster, [...(clusters.get(s.cluster) ?? []), s]);
    const observations = new Map(await Promise.all([...clusters].map(async ([cluster, stacks]) => [cluster, await this.observeCluster(cluster, stacks)] as const)));
    // Cloud Map: each discovery namespace's services, once per pass.
    const namespaces = new Map<string, NamespaceObservation>();
    const namespaceOf = (s: StackInput) => s.stack?.spec.discovery.namespace ?? (s.spec ? undefined : s.previous?.namespace);
    for (const name of new Set(inputs.flatMap((s) => namespaceOf(s) ?? []))) {
      const id = await this.opts.discovery.namespaceId(name);
      namespaces.set(name, id ? { id, services: await this.opts.discovery.listServices(id) } : { services: new Map() });
    }

    const results: StackResult[] = [];
    for (const s of inputs) {
      const t0 = performance.now();
      const ns = namespaceOf(s);
      const namespace = ns ? namespaces.get(ns) : undefined;
      const result = await this.reconcileStack(s, s.cluster ? observations.get(s.cluster) : undefined, namespace, byName, options);
      this.opts.metrics?.reconciled(s.name, result.error ? "error" : "success", (performance.now() - t0) / 1000);
      results.push(result);
    }
    // Stops older than the last few thousand have long been reported; keep memory bounded.
    for (const arn of this.stoppedByOperator) {
      if (this.stoppedByOperator.size <= MAX_REMEMBERED_STOPS) break;
      this.stoppedByOperator.delete(arn);
    }
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

  /** Reads and validates a stack's spec; an invalid generation falls back to the last valid one. */
  private async load(name: string, params: Map<string, SsmParameter>): Promise<StackInput> {
    const { prefix } = this.opts;
    const specParameter = `${prefix}/${name}/spec`;
    const spec = params.get(specParameter);
    const previous = parseStatus(params.get(`${prefix}/${name}/status`)?.Value);
    const base: StackInput = { name, specParameter, ...(spec ? { spec } : {}), ...(previous ? { previous } : {}), errors: [], warnings: [], units: [], ...(previous?.cluster ? { cluster: previous.cluster } : {}) };
    if (!spec) return base;
    const now = this.now();
    const result = this.validate(name, spec.Value ?? "", now);
    if (result.ok) {
      const history = checkSchemaHistory(previous?.schemas ?? [], result.stack.schemas, now);
      if (history.length === 0) return this.withStack(base, result.stack, spec.Version!, result.warnings);
      base.errors = history;
    } else {
      base.errors = result.errors;
    }
    // Keep converging to the last valid generation.
    const applied = previous?.appliedGeneration;
    if (applied !== undefined && applied !== spec.Version) {
      const key = `${name}:${applied}`;
      let old = this.lastValid.get(key);
      if (!old) {
        const text = (await this.opts.ssm.get(`${specParameter}:${applied}`))?.Value;
        if (text !== undefined) {
          old = this.validate(name, text, now);
          this.lastValid.set(key, old);
        }
      }
      if (old?.ok) return { ...this.withStack(base, old.stack, applied, old.warnings), errors: base.errors };
    }
    return base;
  }

  private validate(name: string, text: string, now: Date): ValidationResult {
    // The result depends on the text and, through the schema cutoff, on the day.
    const key = `${name}\n${now.toISOString().slice(0, 13)}\n${text}`;
    const cached = this.validated.get(key);
    if (cached) return cached;
    const result = this.validateUncached(name, text, now);
    if (this.validated.size > 1000) this.validated.clear();
    this.validated.set(key, result);
    return result;
  }

  private validateUncached(name: string, text: string, now: Date): ValidationResult {
    const result = validateText(text, { now });
    if (result.ok && result.stack.name !== name) {
      return { ok: false, errors: [{ path: "metadata.name", message: `must be '${name}', the name in the parameter path` }], warnings: result.warnings };
    }
    return result;
  }

  private withStack(base: StackInput, stack: ResolvedStack, generation: number, warnings: Issue[]): StackInput {
    // Rendering is pure: one render per generation, not one per pass.
    let units = this.rendered.get(base.name);
    if (!units || units.stack !== stack) {
      units = { stack, units: desiredUnits(stack, { parameterPrefix: this.opts.prefix }) };
      this.rendered.set(base.name, units);
    }
    return { ...base, stack, appliedGeneration: generation, warnings, cluster: stack.spec.cluster, units: units.units };
  }

  private async observeCluster(cluster: string, stacks: StackInput[]): Promise<ClusterObservation> {
    const names = new Set<string>();
    for (const s of stacks) {
      for (const u of s.units) names.add(u.unit.name);
      for (const n of s.previous?.inventory.services ?? []) names.add(n);
    }
    const watched = (t: TaskSnapshot) => stacks.some((s) => isUnitOf(s.name, t.group.replace(/^service:/, "")) || isUnitOf(s.name, t.family));
    const observation = await this.observer.observeCluster(cluster, [...names], watched);
    // Services of a stack that only its running tasks reveal (an orphan missing from the inventory).
    const extra = new Set<string>();
    for (const t of observation.running) {
      const service = t.group.replace(/^service:/, "");
      if (t.group.startsWith("service:") && !observation.services.has(service) && !names.has(service) && stacks.some((s) => isUnitOf(s.name, service))) extra.add(service);
    }
    if (extra.size > 0) for (const [k, v] of await this.opts.ecs.describeServices(cluster, [...extra])) observation.services.set(k, v);
    return observation;
  }

  private async observeStack(s: StackInput, cluster: ClusterObservation, namespace: NamespaceObservation | undefined, params: Map<string, SsmParameter>): Promise<StackObservation> {
    const mine = (t: TaskSnapshot) => isUnitOf(s.name, t.group.replace(/^service:/, "")) || isUnitOf(s.name, t.family);
    const services = new Map<string, Service>();
    for (const [name, svc] of cluster.services) if (isUnitOf(s.name, name)) services.set(name, svc);
    const taskDefinitions = new Map<string, ObservedTaskDefinition>();
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
      if (match) matchingTaskDefinitions.set(u.unit.name, match.arn);
    }
    const configs = new Map<string, string>();
    const configPrefix = `${this.opts.prefix}/${s.name}/config/`;
    for (const [name, p] of params) if (name.startsWith(configPrefix)) configs.set(name, p.Value ?? "");
    return {
      services,
      taskDefinitions,
      matchingTaskDefinitions,
      running: cluster.running.filter(mine),
      stopped: cluster.stopped.filter(mine),
      stopping: cluster.stopping.filter(mine),
      stoppedByOperator: this.stoppedByOperator,
      configs,
      registries: namespace?.services ?? new Map(),
    };
  }

  private async reconcileStack(
    s: StackInput,
    cluster: ClusterObservation | undefined,
    namespace: NamespaceObservation | undefined,
    params: Map<string, SsmParameter>,
    options: PassOptions,
  ): Promise<StackResult> {
    const log = this.opts.logger.child({ stack: s.name });
    const spec = s.stack?.spec;
    const deleted = !s.spec;
    const mode: StackMode = deleted
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
    const result: StackResult = { name: s.name, ...(s.spec?.Version !== undefined ? { generation: s.spec.Version } : {}), mode, errors: s.errors, warnings: s.warnings, drifts: [], planned: [], done: [], deferrals: [], statusWritten: false };
    if (s.errors.length > 0) {
      log.warn({ event: "spec.invalid", generation: s.spec?.Version, errors: s.errors.map((e) => `${e.path}: ${e.message}`), convergingTo: s.appliedGeneration ?? null }, "spec is invalid: nothing changes for it");
    }
    const writes = options.mode === "apply" && this.canWrite();

    if (mode === "retained") {
      log.info({ event: "stack.deleted", deletionPolicy: "retain", retained: s.previous?.inventory.services ?? [] }, "spec deleted: the stack's services are retained and no longer managed");
      if (writes) await this.opts.ssm.delete(`${this.opts.prefix}/${s.name}/status`);
      return result;
    }
    if (!cluster || (!s.stack && mode !== "deleted")) {
      // No valid generation to converge to: nothing to observe or decide; report why.
      // (Without a desired state every owned service would look orphaned.)
      return this.report(s, result, undefined, [], log, writes);
    }

    try {
      const observed = await this.observeStack(s, cluster, namespace, params);
      const analysis = analyze(s.name, s.units, observed);
      result.drifts = analysis.drifts;
      // Without its namespace a stack's components cannot find each other: build nothing for it.
      const missingNamespace = s.stack && !namespace?.id ? s.stack.spec.discovery.namespace : undefined;
      const decided = missingNamespace
        ? { actions: [], deferrals: [{ unit: s.name, reason: `Cloud Map namespace '${missingNamespace}' not found: create it (a private DNS namespace in the stack's VPC) first` }] }
        : plan(analysis, { cluster: cluster.cluster, namespaceId: namespace?.id ?? "", deleteOrphans: true });
      if (missingNamespace) result.error = decided.deferrals[0]!.reason;
      result.planned = decided.actions;
      result.deferrals = decided.deferrals;
      for (const d of analysis.drifts) {
        this.opts.metrics?.drift(d.kind);
        log.warn({ event: "drift", unit: d.unit, component: d.component, drift: d.kind, expected: d.expected, observed: d.observed, cause: d.cause }, `drift ${d.kind} ${d.unit}: ${d.cause}`);
      }
      const acting = writes && (mode === "repair" || mode === "deleted");
      if (acting) {
        const executed = await execute(decided.actions, {
          ecs: this.opts.ecs,
          ssm: this.opts.ssm,
          discovery: this.opts.discovery,
          observer: this.observer,
          limiter: this.opts.limiter,
          canWrite: this.canWrite,
          stoppedByOperator: this.stoppedByOperator,
          onAction: (a, r) => this.opts.metrics?.action(a.kind, r),
        }, log);
        result.done = executed.done;
        if (executed.error) result.error = executed.error;
      } else {
        const why = options.mode === "plan" ? "plan" : mode === "repair" ? "not the leader" : mode === "suspended" ? "spec.suspend" : mode === "report" ? "drift.policy report" : "invalid spec";
        for (const a of decided.actions) log.info({ event: "action", unit: a.unit, component: a.component, action: a.kind, repairs: a.repairs, result: "skipped", reason: why, ...describeAction(a) }, `would ${a.kind} ${a.unit}`);
      }
      for (const d of decided.deferrals) log.info({ event: "deferred", unit: d.unit, reason: d.reason }, `deferred ${d.unit}`);

      if (mode === "deleted" && analysis.orphans.length === 0 && [...observed.services.values()].every((svc) => svc.status !== "DRAINING")) {
        if (acting) await this.finishDeletion(s, namespace, params, log);
        return result;
      }
      const ready = new Set(analysis.units.filter((u) => u.ready).map((u) => u.desired.unit.name));
      return this.report(s, result, observed, analysis.orphans.map((o) => o.name), log, writes, ready);
    } catch (e) {
      result.error = e instanceof Error ? e.message : String(e);
      log.error({ event: "reconcile", result: "error", error: result.error }, "reconcile failed");
      return this.report(s, result, undefined, [], log, writes);
    }
  }

  private async finishDeletion(s: StackInput, namespace: NamespaceObservation | undefined, params: Map<string, SsmParameter>, log: Logger): Promise<void> {
    // Its Cloud Map services, once ECS has deregistered every task; only those carrying the ownership tag.
    for (const [name, arn] of namespace?.services ?? []) {
      if (!isUnitOf(s.name, name)) continue;
      const tags = await this.opts.discovery.tags(arn);
      if (!isManaged(tags)) continue;
      await this.opts.limiter.acquire("discovery");
      await this.opts.discovery.deleteService(arn);
      log.info({ event: "action", unit: name, action: "DeleteDiscoveryService", result: "ok" }, `DeleteDiscoveryService ${name}`);
    }
    const configPrefix = `${this.opts.prefix}/${s.name}/config/`;
    for (const name of params.keys()) if (name.startsWith(configPrefix)) await this.opts.ssm.delete(name);
    await this.opts.ssm.delete(`${this.opts.prefix}/${s.name}/status`);
    log.info({ event: "stack.deleted", deletionPolicy: "delete" }, "spec deleted: every owned service is gone");
  }

  private async report(s: StackInput, result: StackResult, observed: StackObservation | undefined, orphans: string[], log: Logger, writes: boolean, ready: ReadonlySet<string> = new Set()): Promise<StackResult> {
    const owned = [...(observed?.services.values() ?? [])]
      .filter((svc) => svc.status === "ACTIVE" && isManaged(svc.tags))
      .map((svc) => svc.serviceName!);
    const spec = s.stack?.spec;
    const status = buildStatus({
      ...(s.previous ? { previous: s.previous } : {}),
      generation: s.spec?.Version ?? s.previous?.observedGeneration ?? 0,
      ...(s.appliedGeneration !== undefined ? { appliedGeneration: s.appliedGeneration } : {}),
      ...(s.cluster ? { cluster: s.cluster } : {}),
      ...(spec ? { namespace: spec.discovery.namespace } : s.previous?.namespace ? { namespace: s.previous.namespace } : {}),
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
      units: s.units.map((u) => ({ name: u.unit.name, component: u.unit.component, desired: u.unit.desiredCount, ready: ready.has(u.unit.name), ...(observed?.services.get(u.unit.name) ? { service: observed.services.get(u.unit.name)! } : {}) })),
      owned: [...owned, ...orphans],
      now: this.now(),
    });
    result.status = status;
    if (writes && canonicalJson(status) !== canonicalJson(s.previous)) {
      try {
        await this.opts.limiter.acquire("parameter");
        await this.opts.ssm.put(`${this.opts.prefix}/${s.name}/status`, statusText(status));
        result.statusWritten = true;
      } catch (e) {
        result.error ??= `writing status: ${e instanceof Error ? e.message : String(e)}`;
      }
    }
    const busy = result.drifts.length > 0 || result.done.length > 0 || result.error !== undefined || result.statusWritten;
    log[busy ? "info" : "debug"](
      { event: "reconcile", generation: result.generation ?? null, mode: result.mode, drifts: result.drifts.length, actions: result.done.length, planned: result.planned.length, deferred: result.deferrals.length, result: result.error ? "error" : "ok", ...(result.error ? { error: result.error } : {}) },
      `reconciled ${s.name}`,
    );
    return result;
  }
}
