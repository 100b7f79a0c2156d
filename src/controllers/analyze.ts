// Diff: desired units against what was observed, as typed drifts plus the
// per-unit facts the planner needs (readiness, tasks to stop, draining names,
// what is left to clean up). Pure: plain data in, plain data out.
import type { Service, Tag } from "@aws-sdk/client-ecs";
import { COMPONENTS } from "../resources/components.ts";
import { canonicalJson } from "../resources/hash.ts";
import { canonicalService, canonicalTaskDefinition, diffCanonical, parseTaskDefinitionRef, type Canonical, type FieldDiff } from "../resources/normalize.ts";
import type { DesiredUnit } from "../resources/render.ts";
import { isManaged, TAGS } from "../resources/tags.ts";
import { fieldChanges } from "./drift.ts";
import { answers, isReady, type LokiView } from "./loki-view.ts";
import type { ObservedTaskDefinition, TaskSnapshot } from "./observe.ts";
import { componentOfUnit, extraTasks, isTaskOf, isUnitOf, serviceOfTask, unitOfTask } from "./singletons.ts";
import type { Drift, FieldChange } from "./types.ts";

/** A desired unit's canonical task definition and its JSON, computed once per render (units are reused across reconciles). */
const desiredCanonical = new WeakMap<DesiredUnit, { canonical: Canonical; json: string }>();
export function desiredTaskDefinition(u: DesiredUnit): { canonical: Canonical; json: string } {
  let c = desiredCanonical.get(u);
  if (!c) {
    const canonical = canonicalTaskDefinition(u.taskDefinition);
    c = { canonical, json: canonicalJson(canonical) };
    desiredCanonical.set(u, c);
  }
  return c;
}

/** The SSM parameter a unit's task reads its Loki config from. */
export function configParameterOf(u: DesiredUnit): string | undefined {
  return u.taskDefinition.containerDefinitions?.flatMap((c) => c.secrets ?? []).find((s) => s.name === "LOKI_CONFIG")?.valueFrom;
}

export interface StackObservation {
  /** Services by name: every desired name, plus owned names known from the inventory or from running tasks. */
  services: Map<string, Service>;
  /** Task definitions by ARN, for the services' current definitions. */
  taskDefinitions: Map<string, ObservedTaskDefinition>;
  /** For each unit that needs another revision: an ACTIVE revision whose content equals the desired one. */
  matchingTaskDefinitions: Map<string, string>;
  /** Tasks with desiredStatus RUNNING in the stack's cluster. */
  running: TaskSnapshot[];
  /** The stack's tasks that stopped since its last reconcile. */
  stopped: TaskSnapshot[];
  /** Tasks asked to stop that have not reached STOPPED yet. */
  stopping: TaskSnapshot[];
  /** ARNs the operator stopped itself: their stop is not a surprise. */
  stoppedByOperator: ReadonlySet<string>;
  /** The stack's config parameters: name → value. */
  configs: Map<string, string>;
  /** Config parameters not protected like the SecureString spec (a String, or another KMS key): they hold spec values. */
  unprotectedConfigs?: ReadonlySet<string>;
  /** The stack's Cloud Map services in its namespace: name → ARN. */
  registries: Map<string, string>;
  /** Tags of Cloud Map services that are candidates for deletion, by ARN. */
  registryTags: Map<string, Tag[]>;
  /** Units the stack had before (its last inventory): a missing one was deleted, not yet to be created. */
  existed: ReadonlySet<string>;
  /** Loki's own view (each ordinal task's readiness, the ring), when it was asked. */
  loki?: LokiView;
  /** Tasks whose ingester flushed and left the ring when the operator asked. */
  flushed?: ReadonlySet<string>;
  /** epoch ms: how long tasks have run, for the ring's grace period. */
  now?: number;
  /**
   * The units as the generation the stack last converged at rendered them,
   * when a newer generation is being rolled out: a unit whose desired state
   * changed since is being updated, and its differences are the update, not drift.
   */
  baseline?: ReadonlyMap<string, DesiredUnit>;
}

export interface UnitAnalysis {
  desired: DesiredUnit;
  state: "missing" | "draining" | "foreign" | "present";
  /** Missing and never created: creation, not drift. */
  creating: boolean;
  /** Its desired state changed with a newer generation: its differences are the rollout of that generation. */
  updating: boolean;
  service?: Service;
  /** Canonical service differences, after what autoscaling owns is set aside. */
  serviceDiffs: FieldDiff[];
  /** Whether the service runs a task definition with the desired content. */
  taskDefinitionCurrent: boolean;
  /** How the running task definition differs from the desired one, field by field (empty when current). */
  taskDefinitionChanges: FieldChange[];
  /** An existing ACTIVE revision with the desired content, if any. */
  matchingTaskDefinitionArn?: string;
  configParameter?: string;
  configCurrent: boolean;
  /** The unit's Cloud Map service, when it exists. */
  registryArn?: string;
  /** Whether the ECS service registers its tasks in that Cloud Map service. */
  discoveryCurrent: boolean;
  /** Its tasks that should not be running: extra singleton or ordinal tasks. */
  extraTasks: TaskSnapshot[];
  /** Tasks of this unit still on their way to STOPPED. */
  stoppingTasks: TaskSnapshot[];
  /** ECS's view: ACTIVE, running desiredCount settled tasks, no deployment in progress. */
  running: boolean;
  /** Running, and for an ingester ordinal, its Loki answers GET /ready. */
  ready: boolean;
  /** Why a running ordinal is not ready, in Loki's words. */
  notReady?: string;
}

export interface OrphanAnalysis {
  name: string;
  component: string;
  ordinal?: number;
  service: Service;
  /** Running or pending tasks left. */
  tasks: number;
  /** Running tasks whose ingester holds data and has not flushed yet (ingester ordinals, monolithic). */
  unflushed: { arn: string; address: string }[];
}

/** A ring member to forget: not desired, no task of the stack behind it, heartbeat stale. */
export interface RingGhost {
  member: string;
  /** The address of a live component to ask. */
  via: string;
}

/** Something of the stack's that no desired unit needs any more, left once its ECS service is gone. */
export interface Leftover {
  unit: string;
  component: string;
  /** Whether the unit's ECS service is gone (absent or INACTIVE) and none of its tasks run. */
  serviceGone: boolean;
}

export interface StackAnalysis {
  units: UnitAnalysis[];
  orphans: OrphanAnalysis[];
  /** Cloud Map services of units no longer desired, carrying the ownership tag. */
  leftoverRegistries: (Leftover & { arn: string })[];
  /** Config parameters of units no longer desired. */
  leftoverConfigs: (Leftover & { parameter: string })[];
  /** The stack's own tasks that no service started (RunTask), of units it no longer has: no service stops them. */
  strayTasks: { unit: string; component: string; taskArn: string }[];
  ghosts: RingGhost[];
  drifts: Drift[];
}

/** How long an ordinal's task may run before an ingester that is not ACTIVE in the ring is drift (a long WAL replay is not). */
export const RING_GRACE_MS = 10 * 60_000;

const SPEC_HASH_PATH = `tags[key=${TAGS.specHash}].value`;

/** Whether the newer generation changed what a drift is about: then the difference is its rollout, not drift. */
function explainedByGeneration(d: Drift, before: DesiredUnit, after: DesiredUnit): boolean {
  const service = (u: DesiredUnit) => canonicalJson(canonicalService(u.service));
  switch (d.kind) {
    case "DesiredCountChanged":
      return before.unit.desiredCount !== after.unit.desiredCount || canonicalJson(before.unit.resources.autoscaling) !== canonicalJson(after.unit.resources.autoscaling);
    case "TaskDefinitionChanged":
      return desiredTaskDefinition(before).json !== desiredTaskDefinition(after).json;
    case "ConfigChanged":
      return before.lokiConfig !== after.lokiConfig;
    case "DeploymentConfigurationWeakened":
      return canonicalJson(before.service.deploymentConfiguration) !== canonicalJson(after.service.deploymentConfiguration);
    case "ServiceSettingsChanged":
    case "TagDrift":
      return service(before) !== service(after);
    default:
      // Safety, deletions and collisions are never a generation's doing.
      return false;
  }
}

/** Whether a unit's desired state differs between two renders. */
function desiredChanged(before: DesiredUnit, after: DesiredUnit): boolean {
  return (
    before.lokiConfig !== after.lokiConfig ||
    desiredTaskDefinition(before).json !== desiredTaskDefinition(after).json ||
    canonicalJson(canonicalService(before.service)) !== canonicalJson(canonicalService(after.service))
  );
}

export function analyze(stack: string, units: readonly DesiredUnit[], observed: StackObservation): StackAnalysis {
  const drifts: Drift[] = [];
  const baseline = observed.baseline;
  const updating = new Set(units.filter((u) => baseline?.get(u.unit.name) && desiredChanged(baseline.get(u.unit.name)!, u)).map((u) => u.unit.name));

  const analyses = units.map((desired): UnitAnalysis => {
    const name = desired.unit.name;
    const component = desired.unit.component;
    const base0 = { stack, unit: name, component };
    const role = COMPONENTS[component].role;
    const service = observed.services.get(name);
    const existed = observed.existed.has(name);
    // A service of this name that the operator does not own: neither it nor its tasks are ever touched.
    const foreign = service !== undefined && service.status === "ACTIVE" && !isManaged(service.tags);
    const tasksOfUnit = foreign ? [] : observed.running.filter((t) => isTaskOf(name, t));
    const stoppingTasks = observed.stopping.filter((t) => isTaskOf(name, t));

    // Tasks that must not run: a second compactor, a second task for one ingester ordinal.
    const found = role === "stateless" ? undefined : extraTasks(name, tasksOfUnit, service?.deployments?.find((d) => d.status === "PRIMARY")?.id);
    for (const t of found?.extras ?? []) {
      drifts.push({ ...base0, kind: component === "ingester" ? "DuplicateOrdinalTask" : "ExtraSingletonTask", task: t.arn, keep: found!.keep.arn, group: t.group, ...(t.startedBy ? { startedBy: t.startedBy } : {}) });
    }

    for (const t of observed.stopped) {
      if (isTaskOf(name, t) && !observed.stoppedByOperator.has(t.arn) && t.stopCode !== "ServiceSchedulerInitiated") {
        drifts.push({ ...base0, kind: "UnexpectedTaskReplacement", task: t.arn, stopCode: t.stopCode ?? "STOPPED", reason: t.stoppedReason ?? "no reason given" });
      }
    }

    const configParameter = configParameterOf(desired);
    const configValue = configParameter ? observed.configs.get(configParameter) : undefined;
    const plaintext = configParameter !== undefined && (observed.unprotectedConfigs?.has(configParameter) ?? false);
    const configCurrent = configValue === desired.lokiConfig && !plaintext;
    // A config that was never written is part of creating the unit; one that was edited, deleted or left in plain text is drift.
    if (!configCurrent && !foreign && configParameter && (configValue !== undefined || existed)) {
      drifts.push({ ...base0, kind: "ConfigChanged", parameter: configParameter, state: configValue === undefined ? "missing" : configValue !== desired.lokiConfig ? "edited" : "plaintext" });
    }

    const registryArn = observed.registries.get(name);
    if (!registryArn && !foreign && existed) drifts.push({ ...base0, kind: "ServiceDiscoveryMissing", missing: "service" });
    const matchingTaskDefinitionArn = observed.matchingTaskDefinitions.get(name);
    const base = {
      desired,
      taskDefinitionChanges: [] as FieldChange[],
      creating: false,
      updating: updating.has(name),
      serviceDiffs: [],
      configCurrent,
      extraTasks: found?.extras ?? [],
      stoppingTasks,
      discoveryCurrent: false,
      ...(configParameter ? { configParameter } : {}),
      ...(matchingTaskDefinitionArn ? { matchingTaskDefinitionArn } : {}),
      ...(registryArn ? { registryArn } : {}),
    };
    if (!service || service.status === "INACTIVE") {
      if (existed) drifts.push({ ...base0, kind: "MissingService", state: "absent" });
      return { ...base, state: "missing", creating: !existed, taskDefinitionCurrent: false, running: false, ready: false };
    }
    if (service.status === "DRAINING") {
      drifts.push({ ...base0, kind: "MissingService", state: "DRAINING" });
      return { ...base, state: "draining", service, taskDefinitionCurrent: false, running: false, ready: false };
    }
    if (foreign) {
      drifts.push({ ...base0, kind: "NameCollision" });
      return { ...base, state: "foreign", service, taskDefinitionCurrent: true, running: false, ready: false };
    }

    const autoscaling = desired.unit.resources.autoscaling;
    const serviceDiffs = diffCanonical(canonicalService(desired.service), canonicalService(service)).filter(
      (d) => !(d.path === "desiredCount" && autoscaling && typeof d.observed === "number" && d.observed >= autoscaling.min && d.observed <= autoscaling.max),
    );
    // The spec-hash tag follows the object: when something else changed too, its
    // update is part of that repair, not a drift of its own.
    const onlyHash = serviceDiffs.every((d) => d.path === SPEC_HASH_PATH);
    const shown = serviceDiffs.filter((d) => onlyHash || d.path !== SPEC_HASH_PATH);
    const count = shown.find((d) => d.path === "desiredCount");
    if (count) {
      const from = Number(count.observed);
      // Under autoscaling the repair goes to the nearest edge of the range, not to the spec's count.
      const to = autoscaling ? Math.min(Math.max(from, autoscaling.min), autoscaling.max) : Number(count.expected);
      drifts.push({ ...base0, kind: "DesiredCountChanged", from, to, ...(autoscaling ? { range: { min: autoscaling.min, max: autoscaling.max } } : {}) });
    }
    const group = (prefix: string) => fieldChanges(shown.filter((d) => d.path.startsWith(prefix)));
    const weakened = group("deploymentConfiguration");
    if (weakened.length > 0) drifts.push({ ...base0, kind: "DeploymentConfigurationWeakened", changes: weakened });
    const tagChanges = group("tags");
    if (tagChanges.length > 0) drifts.push({ ...base0, kind: "TagDrift", changes: tagChanges });
    const settings = fieldChanges(shown.filter((d) => !/^(desiredCount|deploymentConfiguration|tags|taskDefinition)/.test(d.path)));
    if (settings.length > 0) drifts.push({ ...base0, kind: "ServiceSettingsChanged", changes: settings });

    const currentTd = service.taskDefinition ? observed.taskDefinitions.get(service.taskDefinition) : undefined;
    const tdDiffs = currentTd ? diffCanonical(desiredTaskDefinition(desired).canonical, currentTd.canonical) : [];
    const sameFamily = service.taskDefinition !== undefined && parseTaskDefinitionRef(service.taskDefinition).family === name;
    const taskDefinitionCurrent = currentTd !== undefined && tdDiffs.length === 0;
    let taskDefinitionChanges: FieldChange[] = [];
    if (!taskDefinitionCurrent) {
      const revision = service.taskDefinition?.slice(service.taskDefinition.lastIndexOf("/") + 1) ?? "(none)";
      const contentChanges = tdDiffs.filter((d) => d.path !== SPEC_HASH_PATH);
      taskDefinitionChanges = !sameFamily
        ? [{ path: "taskDefinition", from: revision, to: `${name}:<revision with the desired content>` }]
        : currentTd
          ? fieldChanges(contentChanges.length > 0 ? contentChanges : tdDiffs)
          : [{ path: "taskDefinition", from: revision, to: "(the revision could not be described)" }];
      drifts.push({ ...base0, kind: "TaskDefinitionChanged", revision, changes: taskDefinitionChanges });
    }

    const discoveryCurrent = registryArn !== undefined && (service.serviceRegistries ?? []).some((r) => r.registryArn === registryArn);
    if (registryArn && !discoveryCurrent) drifts.push({ ...base0, kind: "ServiceDiscoveryMissing", missing: "registration" });

    const deployment = service.deployments?.find((d) => d.status === "PRIMARY");
    const settled = (t: TaskSnapshot) => t.lastStatus === "RUNNING" && (!currentTd?.hasHealthCheck || t.healthStatus === "HEALTHY");
    const serviceTasks = tasksOfUnit.filter((t) => t.group === `service:${name}`);
    const running =
      service.runningCount === service.desiredCount &&
      (service.pendingCount ?? 0) === 0 &&
      (service.deployments?.length ?? 0) <= 1 &&
      (deployment?.rolloutState ?? "COMPLETED") === "COMPLETED" &&
      serviceTasks.every(settled);
    // RUNNING and HEALTHY (the liveness check) is not ready for an ingester: it may still be
    // replaying its WAL or joining the ring. Its own GET /ready says; no answer is not ready.
    const notReady = running && component === "ingester" && observed.loki ? lokiNotReady(serviceTasks, observed.loki) : undefined;
    return { ...base, state: "present", service, serviceDiffs, taskDefinitionCurrent, taskDefinitionChanges, discoveryCurrent, running, ready: running && notReady === undefined, ...(notReady ? { notReady } : {}) };
  });

  const desiredNames = new Set(units.map((u) => u.unit.name));
  const orphans: OrphanAnalysis[] = [];
  for (const [name, service] of observed.services) {
    if (desiredNames.has(name) || !isUnitOf(stack, name) || service.status !== "ACTIVE") continue;
    if (!isManaged(service.tags) || service.tags?.find((t) => t.key === TAGS.stack)?.value !== stack) continue;
    const { component, ordinal } = componentOfUnit(stack, name);
    const orphanTasks = observed.running.filter((t) => t.group === `service:${name}`);
    const holdsData = component === "ingester" || component === "monolithic";
    const unflushed = holdsData
      ? orphanTasks.filter(answers).filter((t) => !observed.flushed?.has(t.arn)).map((t) => ({ arn: t.arn, address: t.privateIp }))
      : [];
    orphans.push({ name, component, ...(ordinal !== undefined ? { ordinal } : {}), service, tasks: orphanTasks.length, unflushed });
    // A unit the newer generation removed is part of its rollout; any other owned leftover is drift.
    if (!baseline?.has(name)) drifts.push({ stack, unit: name, component, kind: "OrphanedService", desiredCount: service.desiredCount ?? 0, ...(ordinal !== undefined ? { ordinal } : {}) });
  }

  // What a removed unit leaves behind: its Cloud Map service and its config parameter.
  const gone = (unit: string) => {
    const svc = observed.services.get(unit);
    return (!svc || svc.status === "INACTIVE") && !observed.running.some((t) => t.group === `service:${unit}`);
  };
  const leftoverRegistries: StackAnalysis["leftoverRegistries"] = [];
  for (const [name, arn] of observed.registries) {
    if (desiredNames.has(name) || !isUnitOf(stack, name) || !isManaged(observed.registryTags.get(arn))) continue;
    leftoverRegistries.push({ unit: name, component: componentOfUnit(stack, name).component, arn, serviceGone: gone(name) });
  }
  const leftoverConfigs: StackAnalysis["leftoverConfigs"] = [];
  const desiredParameters = new Set(analyses.map((u) => u.configParameter));
  for (const parameter of observed.configs.keys()) {
    const unit = parameter.slice(parameter.lastIndexOf("/") + 1);
    // Only a unit's own config: anything else under the path is not the operator's to delete.
    if (desiredParameters.has(parameter) || !isUnitOf(stack, unit)) continue;
    leftoverConfigs.push({ unit, component: componentOfUnit(stack, unit).component, parameter, serviceGone: gone(unit) });
  }
  // A monolithic task run by hand after the switch to microservices is a second compactor.
  const strayTasks: StackAnalysis["strayTasks"] = [];
  for (const t of observed.running) {
    const unit = unitOfTask(t);
    if (serviceOfTask(t) !== undefined || desiredNames.has(unit)) continue;
    const { component } = componentOfUnit(stack, unit);
    strayTasks.push({ unit, component, taskArn: t.arn });
    drifts.push({ stack, unit, component, kind: "StrayTask", task: t.arn, group: t.group, ...(t.startedBy ? { startedBy: t.startedBy } : {}) });
  }
  const ghosts = observed.loki?.ring ? ringDrifts(stack, analyses, orphans, observed, drifts) : [];
  // Differences a newer generation explains are its rollout: the unit is updating, not drifted.
  const byName = new Map(units.map((u) => [u.unit.name, u]));
  const drift = drifts.filter((d) => !(updating.has(d.unit) && explainedByGeneration(d, baseline!.get(d.unit)!, byName.get(d.unit)!)));
  return { units: analyses, orphans, leftoverRegistries, leftoverConfigs, strayTasks, ghosts, drifts: drift };
}

/** Why an ordinal's running tasks are not ready, from their own GET /ready; undefined when all are. */
function lokiNotReady(tasks: readonly TaskSnapshot[], loki: LokiView): string | undefined {
  for (const t of tasks) {
    const r = loki.readiness.get(t.arn);
    if (isReady(r)) continue;
    return r === undefined ? "its readiness was not asked yet" : r instanceof Error ? `not reachable: ${r.message}` : `not ready: ${r.message.split("\n")[0]}`;
  }
  return undefined;
}

/**
 * Loki's view against the desired ordinals: a ring member no desired ordinal
 * (nor an ordinal being removed) accounts for is drift, and a ghost to forget
 * when its heartbeat is stale (nothing runs under its name any more); an
 * ordinal whose task has run past the grace period without an ACTIVE member
 * is drift, reported only (a restart would not make it ACTIVE sooner).
 */
function ringDrifts(stack: string, units: readonly UnitAnalysis[], orphans: readonly OrphanAnalysis[], observed: StackObservation, drifts: Drift[]): RingGhost[] {
  const { ring, ringVia } = observed.loki!;
  const ordinals = units.filter((u) => u.desired.unit.component === "ingester");
  const accounted = new Set([...ordinals.map((u) => u.desired.unit.name), ...orphans.filter((o) => o.tasks > 0).map((o) => o.name)]);
  const ghosts: RingGhost[] = [];
  for (const m of ring!) {
    if (accounted.has(m.id)) continue;
    drifts.push({ stack, unit: m.id, component: "ingester", kind: "RingMemberNotDesired", member: m.id, state: m.state, address: m.address });
    if (m.state === "UNHEALTHY" && ringVia) ghosts.push({ member: m.id, via: ringVia });
  }
  const now = observed.now ?? Date.now();
  for (const u of ordinals) {
    const name = u.desired.unit.name;
    const member = ring!.find((m) => m.id === name);
    if (member?.state === "ACTIVE") continue;
    for (const t of observed.running) {
      if (t.group !== `service:${name}` || t.lastStatus !== "RUNNING" || t.startedAt === undefined || now - t.startedAt < RING_GRACE_MS) continue;
      drifts.push({ stack, unit: name, component: "ingester", kind: "IngesterNotActive", task: t.arn, state: member?.state ?? "absent", runningSeconds: Math.round((now - t.startedAt) / 1000) });
    }
  }
  return ghosts;
}
