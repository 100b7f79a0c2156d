// Diff: desired units against what was observed, as typed drifts plus the
// per-unit facts the planner needs (readiness, tasks to stop, draining names).
// Pure: plain data in, plain data out.
import type { Service } from "@aws-sdk/client-ecs";
import { COMPONENTS } from "../resources/components.ts";
import { canonicalJson } from "../resources/hash.ts";
import { canonicalService, canonicalTaskDefinition, diffCanonical, parseTaskDefinitionRef, type Canonical, type FieldDiff } from "../resources/normalize.ts";
import type { DesiredUnit } from "../resources/render.ts";
import { isManaged, TAGS } from "../resources/tags.ts";
import type { ObservedTaskDefinition, TaskSnapshot } from "./observe.ts";
import type { Drift, DriftKind } from "./types.ts";

/** A desired unit's canonical task definition and its JSON, computed once per render (units are reused across passes). */
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

export interface StackObservation {
  /** Services by name: every desired name, plus owned names known from the inventory or from running tasks. */
  services: Map<string, Service>;
  /** Task definitions by ARN, for the services' current definitions. */
  taskDefinitions: Map<string, ObservedTaskDefinition>;
  /** For each family the operator may need: an ACTIVE revision whose content equals the desired one. */
  matchingTaskDefinitions: Map<string, string>;
  /** Tasks with desiredStatus RUNNING in the stack's cluster. */
  running: TaskSnapshot[];
  /** Tasks that stopped since the last pass. */
  stopped: TaskSnapshot[];
  /** Tasks the operator asked to stop that have not reached STOPPED yet. */
  stopping: TaskSnapshot[];
  /** ARNs the operator stopped itself: their stop is not a surprise. */
  stoppedByOperator: ReadonlySet<string>;
  /** Config parameter values by name. */
  configs: Map<string, string>;
  /** Cloud Map services of the stack's discovery namespace: name → ARN. */
  registries: Map<string, string>;
}

export interface UnitAnalysis {
  desired: DesiredUnit;
  state: "missing" | "draining" | "foreign" | "present";
  service?: Service;
  /** Canonical differences, after what autoscaling owns is set aside. */
  serviceDiffs: FieldDiff[];
  /** Whether the service runs a task definition with the desired content. */
  taskDefinitionCurrent: boolean;
  /** An existing ACTIVE revision with the desired content, if any. */
  matchingTaskDefinitionArn?: string;
  configCurrent: boolean;
  /** The unit's Cloud Map service, when it exists. */
  registryArn?: string;
  /** Whether the ECS service registers its tasks in that Cloud Map service. */
  discoveryCurrent: boolean;
  /** Its tasks that should not be running: extra singleton or ordinal tasks. */
  extraTasks: TaskSnapshot[];
  /** Tasks of this unit still on their way to STOPPED. */
  stoppingTasks: TaskSnapshot[];
  /** ACTIVE, running desiredCount settled tasks, no deployment in progress. */
  ready: boolean;
}

export interface OrphanAnalysis {
  name: string;
  component: string;
  ordinal?: number;
  service: Service;
  /** Running or pending tasks left. */
  tasks: number;
}

export interface StackAnalysis {
  units: UnitAnalysis[];
  orphans: OrphanAnalysis[];
  drifts: Drift[];
}

const SINGLE_TASK_ROLES = new Set(["singleton", "ordinal"]);
const UNIT_SUFFIX = /^(distributor|ingester-\d+|querier|query-frontend|compactor|index-gateway|ruler|monolithic)$/;

/** Whether an ECS service name is one of `stack`'s units (`<stack>-compactor`, `<stack>-ingester-3`, …). */
export function isUnitOf(stack: string, name: string): boolean {
  return name.startsWith(`${stack}-`) && UNIT_SUFFIX.test(name.slice(stack.length + 1));
}

export function componentOfUnit(stack: string, name: string): { component: string; ordinal?: number } {
  const suffix = name.slice(stack.length + 1);
  const m = /^ingester-(\d+)$/.exec(suffix);
  return m ? { component: "ingester", ordinal: Number(m[1]) } : { component: suffix };
}

function fieldKind(path: string): DriftKind {
  if (path === "desiredCount") return "DesiredCountChanged";
  if (path.startsWith("deploymentConfiguration")) return "DeploymentConfigurationWeakened";
  if (path === "taskDefinition") return "TaskDefinitionChanged";
  if (path.startsWith("tags")) return "TagDrift";
  return "ServiceSettingsChanged";
}

export function analyze(stack: string, units: readonly DesiredUnit[], observed: StackObservation): StackAnalysis {
  const drifts: Drift[] = [];
  const drift = (kind: DriftKind, unit: string, component: string, expected: unknown, observedValue: unknown, cause: string) =>
    drifts.push({ kind, stack, unit, component, expected, observed: observedValue, cause });

  const analyses = units.map((desired): UnitAnalysis => {
    const name = desired.unit.name;
    const component = desired.unit.component;
    const role = COMPONENTS[component].role;
    const service = observed.services.get(name);
    // A service of this name that the operator does not own: neither it nor its tasks are ever touched.
    const foreign = service !== undefined && service.status === "ACTIVE" && !isManaged(service.tags);
    const tasksOfUnit = foreign ? [] : observed.running.filter((t) => t.group === `service:${name}` || t.family === name);
    const stoppingTasks = observed.stopping.filter((t) => t.group === `service:${name}` || t.family === name);

    // Tasks that must not run: a second compactor, a second task for one ingester ordinal.
    let extraTasks: TaskSnapshot[] = [];
    if (SINGLE_TASK_ROLES.has(role) && tasksOfUnit.length > 1) {
      const primaryId = service?.deployments?.find((d) => d.status === "PRIMARY")?.id;
      const rank = (t: TaskSnapshot) =>
        (t.group === `service:${name}` ? 0 : 4) + (t.startedBy === primaryId ? 0 : 2) + (t.lastStatus === "RUNNING" ? 0 : 1);
      const [keep, ...rest] = [...tasksOfUnit].sort((a, b) => rank(a) - rank(b) || a.createdAt - b.createdAt);
      extraTasks = rest;
      for (const t of rest) {
        drift(
          component === "ingester" ? "DuplicateOrdinalTask" : "ExtraSingletonTask",
          name,
          component,
          { tasks: 1, keep: keep!.arn },
          { tasks: tasksOfUnit.length, extra: t.arn, group: t.group, startedBy: t.startedBy ?? null },
          t.group === `service:${name}` ? "a second task of the service" : `a task started outside the service (${t.group}${t.startedBy ? `, startedBy ${t.startedBy}` : ""})`,
        );
      }
    }

    for (const t of observed.stopped) {
      if ((t.group === `service:${name}` || t.family === name) && !observed.stoppedByOperator.has(t.arn) && t.stopCode !== "ServiceSchedulerInitiated") {
        drift("UnexpectedTaskReplacement", name, component, "RUNNING", t.stopCode ?? "STOPPED", `${t.stopCode ?? "stopped"}: ${t.stoppedReason ?? "no reason given"}`);
      }
    }

    const configParameter = desired.taskDefinition.containerDefinitions?.flatMap((c) => c.secrets ?? []).find((s) => s.name === "LOKI_CONFIG")?.valueFrom;
    const configValue = configParameter ? observed.configs.get(configParameter) : undefined;
    const configCurrent = configValue === desired.lokiConfig;
    if (!configCurrent && !foreign) {
      drift("ConfigChanged", name, component, "rendered config", configValue === undefined ? "missing" : "edited", `${configParameter} ${configValue === undefined ? "does not exist" : "differs from the rendered Loki config"}`);
    }

    const registryArn = observed.registries.get(name);
    if (!registryArn && !foreign) {
      drift("ServiceDiscoveryMissing", name, component, `Cloud Map service ${name}`, "missing", "no Cloud Map service of this name in the discovery namespace: its DNS name does not resolve");
    }
    const matchingTaskDefinitionArn = observed.matchingTaskDefinitions.get(name);
    const base = {
      desired,
      serviceDiffs: [],
      configCurrent,
      extraTasks,
      stoppingTasks,
      discoveryCurrent: false,
      ...(matchingTaskDefinitionArn ? { matchingTaskDefinitionArn } : {}),
      ...(registryArn ? { registryArn } : {}),
    };
    if (!service || service.status === "INACTIVE") {
      drift("MissingService", name, component, "ACTIVE", "missing", "no such ECS service");
      return { ...base, state: "missing", taskDefinitionCurrent: false, ready: false };
    }
    if (service.status === "DRAINING") {
      drift("MissingService", name, component, "ACTIVE", "DRAINING", "the service was deleted and is draining; it is recreated once INACTIVE");
      return { ...base, state: "draining", service, taskDefinitionCurrent: false, ready: false };
    }
    if (foreign) {
      drift("NameCollision", name, component, `tag ${TAGS.managedBy}`, "absent", "a service with this name exists but is not owned by the operator; it is left alone");
      return { ...base, state: "foreign", service, taskDefinitionCurrent: true, ready: false };
    }

    const autoscaling = desired.unit.resources.autoscaling;
    const serviceDiffs = diffCanonical(canonicalService(desired.service), canonicalService(service)).filter(
      (d) => !(d.path === "desiredCount" && autoscaling && typeof d.observed === "number" && d.observed >= autoscaling.min && d.observed <= autoscaling.max),
    );
    // The spec-hash tag follows the object: when something else changed too, its
    // update is part of that repair, not a drift of its own.
    const specHashPath = `tags[key=${TAGS.specHash}].value`;
    const onlyHash = serviceDiffs.every((d) => d.path === specHashPath);
    for (const d of serviceDiffs) {
      if (d.path === specHashPath && !onlyHash) continue;
      drift(fieldKind(d.path), name, component, d.expected ?? null, d.observed ?? null, `${d.path} differs`);
    }

    const currentTd = service.taskDefinition ? observed.taskDefinitions.get(service.taskDefinition) : undefined;
    const desiredTd = desiredTaskDefinition(desired).canonical;
    const tdDiffs = currentTd ? diffCanonical(desiredTd, currentTd.canonical) : [];
    const sameFamily = service.taskDefinition !== undefined && parseTaskDefinitionRef(service.taskDefinition).family === name;
    const taskDefinitionCurrent = currentTd !== undefined && tdDiffs.length === 0;
    if (sameFamily && !taskDefinitionCurrent) {
      drift(
        "TaskDefinitionChanged",
        name,
        component,
        desired.taskDefinition.tags?.find((t) => t.key === TAGS.specHash)?.value ?? null,
        service.taskDefinition,
        currentTd ? `the running revision differs in ${[...new Set(tdDiffs.map((d) => d.path.split(".")[0]))].join(", ")}` : "the running revision could not be described",
      );
    }

    const discoveryCurrent = registryArn !== undefined && (service.serviceRegistries ?? []).some((r) => r.registryArn === registryArn);
    if (registryArn && !discoveryCurrent) {
      drift("ServiceDiscoveryMissing", name, component, registryArn, (service.serviceRegistries ?? []).map((r) => r.registryArn), "the service does not register its tasks in its Cloud Map service");
    }

    const deployment = service.deployments?.find((d) => d.status === "PRIMARY");
    const settled = (t: TaskSnapshot) => t.lastStatus === "RUNNING" && (!currentTd?.hasHealthCheck || t.healthStatus === "HEALTHY");
    const ready =
      service.runningCount === service.desiredCount &&
      (service.pendingCount ?? 0) === 0 &&
      (service.deployments?.length ?? 0) <= 1 &&
      (deployment?.rolloutState ?? "COMPLETED") === "COMPLETED" &&
      tasksOfUnit.filter((t) => t.group === `service:${name}`).every(settled);
    return { ...base, state: "present", service, serviceDiffs, taskDefinitionCurrent, discoveryCurrent, ready };
  });

  const desiredNames = new Set(units.map((u) => u.unit.name));
  const orphans: OrphanAnalysis[] = [];
  for (const [name, service] of observed.services) {
    if (desiredNames.has(name) || !isUnitOf(stack, name) || service.status !== "ACTIVE") continue;
    if (!isManaged(service.tags) || service.tags?.find((t) => t.key === TAGS.stack)?.value !== stack) continue;
    const { component, ordinal } = componentOfUnit(stack, name);
    const tasks = observed.running.filter((t) => t.group === `service:${name}`).length;
    orphans.push({ name, component, ...(ordinal !== undefined ? { ordinal } : {}), service, tasks });
    drift("OrphanedService", name, component, "absent", `ACTIVE, desiredCount ${service.desiredCount}`, ordinal !== undefined ? "an ingester ordinal above the desired count" : "no longer part of the stack");
  }
  return { units: analyses, orphans, drifts };
}
