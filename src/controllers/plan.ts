// Act, decided: the smallest safe writes that repair the drifts, in a safe order.
//   1. stop extra compactor / monolithic / ingester-ordinal tasks, before anything else;
//   2. write config parameters (tasks read them at start);
//   3. register task definitions whose content is new (never when an equal revision exists);
//   4. create and update services: stateless ones freely, singletons only while no extra
//      task is still stopping, ingester ordinals one at a time and only when every other
//      ordinal is running and healthy (scale-up lowest ordinal first, scale-down highest);
//   5. scale orphaned services to 0, then delete them once their tasks are gone;
//   6. restore ownership tags.
// One write per drift, at most one write per service per pass. Pure.
import type { UpdateServiceCommandInput } from "@aws-sdk/client-ecs";
import { COMPONENTS } from "../resources/components.ts";
import type { OrphanAnalysis, StackAnalysis, UnitAnalysis } from "./analyze.ts";
import type { Action, Deferral, DriftKind } from "./types.ts";

export interface PlanContext {
  cluster: string;
  /** The stack's Cloud Map namespace id (services are created in it). */
  namespaceId: string;
  /** Whether owned services that are no longer desired may be deleted (false under deletionPolicy retain for a deleted spec). */
  deleteOrphans: boolean;
}

export interface Plan {
  actions: Action[];
  deferrals: Deferral[];
}

/** Top-level UpdateService fields ECS can change in place. */
const UPDATABLE = new Set([
  "desiredCount",
  "taskDefinition",
  "deploymentConfiguration",
  "networkConfiguration",
  "platformVersion",
  "availabilityZoneRebalancing",
  "propagateTags",
  "enableECSManagedTags",
  "enableExecuteCommand",
  "healthCheckGracePeriodSeconds",
  "placementConstraints",
  "placementStrategy",
  "capacityProviderStrategy",
]);

const CLEARED: Record<string, unknown> = {
  placementConstraints: [],
  placementStrategy: [],
  capacityProviderStrategy: [],
  healthCheckGracePeriodSeconds: 0,
};

function topField(path: string): string {
  return path.split(/[.[]/)[0]!;
}

/** Prefix of a registry ARN still to be created in this pass: `cloudmap:<unit>`. */
export const PENDING_REGISTRY = "cloudmap:";

function kindOf(field: string): DriftKind {
  if (field === "desiredCount") return "DesiredCountChanged";
  if (field === "serviceRegistries") return "ServiceDiscoveryMissing";
  if (field === "deploymentConfiguration") return "DeploymentConfigurationWeakened";
  if (field === "taskDefinition") return "TaskDefinitionChanged";
  return "ServiceSettingsChanged";
}

export function plan(analysis: StackAnalysis, ctx: PlanContext): Plan {
  const actions: Action[] = [];
  const deferrals: Deferral[] = [];
  const defer = (unit: string, reason: string) => deferrals.push({ unit, reason });
  const units = analysis.units;

  // 1. Extra singleton and ordinal tasks: stop them first.
  for (const u of units) {
    for (const t of u.extraTasks) {
      actions.push({
        kind: "StopTask",
        unit: u.desired.unit.name,
        component: u.desired.unit.component,
        cluster: ctx.cluster,
        taskArn: t.arn,
        reason: `lokistack: extra ${u.desired.unit.component} task for ${u.desired.unit.name}`,
        repairs: [u.desired.unit.component === "ingester" ? "DuplicateOrdinalTask" : "ExtraSingletonTask"],
      });
    }
  }

  // 2. Config parameters.
  for (const u of units) {
    if (u.configCurrent || u.state === "foreign") continue;
    const parameter = u.desired.taskDefinition.containerDefinitions?.flatMap((c) => c.secrets ?? []).find((s) => s.name === "LOKI_CONFIG")?.valueFrom;
    if (parameter) actions.push({ kind: "PutConfig", unit: u.desired.unit.name, component: u.desired.unit.component, parameter, value: u.desired.lokiConfig, repairs: ["ConfigChanged"] });
  }

  // 2b. Cloud Map services: DNS names for every unit, before any ECS service needs one.
  for (const u of units) {
    if (u.registryArn || u.state === "foreign") continue;
    const name = u.desired.unit.name;
    const tags = (u.desired.service.tags ?? []).filter((t) => t.key !== "lokistack.io/spec-hash");
    actions.push({ kind: "CreateDiscoveryService", unit: name, component: u.desired.unit.component, name, namespaceId: ctx.namespaceId, tags, repairs: ["ServiceDiscoveryMissing"] });
  }

  // Decide which units change this pass, then register only what they need.
  const changes = new Map<UnitAnalysis, "create" | "update">();
  const ordinals = units.filter((u) => u.desired.unit.component === "ingester");
  const needsChange = (u: UnitAnalysis) =>
    u.state === "missing" || (u.state === "present" && (u.serviceDiffs.some((d) => topField(d.path) !== "tags") || !u.taskDefinitionCurrent || !u.discoveryCurrent));

  for (const u of units) {
    const name = u.desired.unit.name;
    if (u.state === "foreign") continue;
    if (u.state === "draining") {
      defer(name, "the old service is still draining; it is recreated once INACTIVE");
      continue;
    }
    if (!needsChange(u) || u.desired.unit.component === "ingester") continue;
    // A singleton must never start a task while another of its tasks is still alive.
    if ((u.extraTasks.length > 0 || u.stoppingTasks.length > 0) && COMPONENTS[u.desired.unit.component].role === "singleton" && startsTasks(u)) {
      defer(name, "waiting for extra tasks to stop before starting a new one");
      continue;
    }
    changes.set(u, u.state === "missing" ? "create" : "update");
  }

  // Ingester ordinals. Safety fixes (a weakened deployment configuration, a count
  // above 1) go ahead on every ordinal at once: they never start a task. Any other
  // change picks one ordinal: a missing one (lowest first), else an orphan to scale
  // down (highest first), else one to update (highest first), and only while every
  // other ordinal is running and healthy.
  const ordinalOrphans = analysis.orphans.filter((o) => o.component === "ingester").sort((a, b) => (b.ordinal ?? 0) - (a.ordinal ?? 0));
  const safetyOnly = (u: UnitAnalysis) =>
    u.state === "present" &&
    u.serviceDiffs.every((d) => topField(d.path) === "tags" || topField(d.path) === "deploymentConfiguration" || (d.path === "desiredCount" && Number(d.observed) > 1)) &&
    u.taskDefinitionCurrent &&
    u.discoveryCurrent;
  for (const u of ordinals) if (needsChange(u) && safetyOnly(u)) changes.set(u, "update");
  const allOthersReady = (except: string) =>
    ordinals.every((o) => o.desired.unit.name === except || o.state === "missing" || o.ready) && ordinalOrphans.every((o) => o.name === except || o.tasks === 0 || o.service.desiredCount === 0);
  const busy = (u: UnitAnalysis) => u.extraTasks.length > 0 || u.stoppingTasks.length > 0;
  const pendingOrdinal = ordinals.filter((u) => u.state === "missing").sort((a, b) => (a.desired.unit.ordinal ?? 0) - (b.desired.unit.ordinal ?? 0))[0];
  const orphanToScale = ctx.deleteOrphans ? ordinalOrphans.find((o) => o.service.desiredCount! > 0) : undefined;
  const updateOrdinal = ordinals
    .filter((u) => u.state === "present" && needsChange(u) && !changes.has(u))
    .sort((a, b) => (b.desired.unit.ordinal ?? 0) - (a.desired.unit.ordinal ?? 0))[0];
  let ordinalChange: UnitAnalysis | OrphanAnalysis | undefined = pendingOrdinal ?? orphanToScale ?? updateOrdinal;
  if (ordinalChange) {
    const name = "desired" in ordinalChange ? ordinalChange.desired.unit.name : ordinalChange.name;
    const blocked = "desired" in ordinalChange && busy(ordinalChange);
    if (blocked || !allOthersReady(name)) {
      defer(name, blocked ? "waiting for this ordinal's other task to stop" : "waiting until every other ingester ordinal is running and healthy");
      ordinalChange = undefined;
    } else if ("desired" in ordinalChange) {
      changes.set(ordinalChange, ordinalChange.state === "missing" ? "create" : "update");
    }
    for (const u of ordinals) {
      if (needsChange(u) && !changes.has(u) && u !== ordinalChange && u.state !== "foreign") defer(u.desired.unit.name, "one ingester ordinal changes at a time");
    }
  }

  // 3. Task definitions the changing units need and ECS does not have yet.
  const registered = new Set<string>();
  for (const [u, change] of changes) {
    const family = u.desired.unit.name;
    const needsRegistration = (change === "create" || !u.taskDefinitionCurrent) && !u.matchingTaskDefinitionArn;
    if (needsRegistration && !registered.has(family)) {
      registered.add(family);
      actions.push({ kind: "RegisterTaskDefinition", unit: family, component: u.desired.unit.component, input: u.desired.taskDefinition, repairs: [change === "create" ? "MissingService" : "TaskDefinitionChanged"] });
    }
  }

  // 4. Create and update services. A family without a revision means "the one registered above".
  for (const [u, change] of changes) {
    const name = u.desired.unit.name;
    const component = u.desired.unit.component;
    const taskDefinition = u.matchingTaskDefinitionArn ?? name;
    // A registry not created yet is named by the unit; the executor pins the ARN it gets.
    const registryArn = u.registryArn ?? `${PENDING_REGISTRY}${name}`;
    if (change === "create") {
      actions.push({ kind: "CreateService", unit: name, component, input: { ...u.desired.service, taskDefinition, serviceRegistries: [{ registryArn }] }, repairs: ["MissingService"] });
      continue;
    }
    const fields = new Set(u.serviceDiffs.map((d) => topField(d.path)).filter((f) => f !== "tags" && UPDATABLE.has(f)));
    if (!u.taskDefinitionCurrent) fields.add("taskDefinition");
    if (!u.discoveryCurrent) fields.add("serviceRegistries");
    // Weakened deployment safety is restored on its own first; a rollout waits for the next pass.
    const role = COMPONENTS[component].role;
    if (fields.has("deploymentConfiguration") && role !== "stateless") {
      for (const f of [...fields]) if (f !== "deploymentConfiguration" && f !== "desiredCount") fields.delete(f);
    }
    if (fields.size === 0) continue;
    const input: Record<string, unknown> = { cluster: u.desired.service.cluster, service: name };
    const desired: Record<string, unknown> = { ...u.desired.service };
    for (const f of fields) {
      if (f === "taskDefinition") input.taskDefinition = taskDefinition;
      // Registries someone else attached stay; the unit's own is added.
      else if (f === "serviceRegistries") input.serviceRegistries = [...(u.service?.serviceRegistries ?? []).filter((r) => r.registryArn !== registryArn), { registryArn }];
      else if (f === "desiredCount") input.desiredCount = clampToAutoscaling(u);
      // A field the spec leaves unset but someone set (a placement rule) is cleared.
      else input[f] = desired[f] ?? CLEARED[f];
    }
    actions.push({
      kind: "UpdateService",
      unit: name,
      component,
      input: input as unknown as UpdateServiceCommandInput,
      fields: [...fields].sort(),
      repairs: [...new Set([...fields].map(kindOf))],
    });
  }
  const nonUpdatable = units.flatMap((u) => u.serviceDiffs.filter((d) => topField(d.path) !== "tags" && !UPDATABLE.has(topField(d.path))).map((d) => ({ u, d })));
  for (const { u, d } of nonUpdatable) defer(u.desired.unit.name, `${d.path} cannot be changed in place; delete the service and the operator recreates it`);

  // 5. Orphaned services: scale to 0, then delete once no task is left.
  for (const o of analysis.orphans) {
    if (!ctx.deleteOrphans) {
      defer(o.name, "kept: deletionPolicy retain");
      continue;
    }
    if (o.service.desiredCount! > 0) {
      if (o.component === "ingester" && ordinalChange !== o) {
        if (o !== orphanToScale) defer(o.name, "one ingester ordinal changes at a time");
        continue;
      }
      actions.push({ kind: "UpdateService", unit: o.name, component: o.component, input: { cluster: ctx.cluster, service: o.name, desiredCount: 0 }, fields: ["desiredCount"], repairs: ["OrphanedService"] });
    } else if (o.tasks === 0 && (o.service.runningCount ?? 0) === 0 && (o.service.pendingCount ?? 0) === 0) {
      actions.push({ kind: "DeleteService", unit: o.name, component: o.component, cluster: ctx.cluster, service: o.name, repairs: ["OrphanedService"] });
    } else {
      defer(o.name, "waiting for its tasks to stop before deleting it");
    }
  }

  // 6. Ownership tags.
  for (const u of units) {
    if (u.state !== "present" || !u.service?.serviceArn) continue;
    if (!u.serviceDiffs.some((d) => topField(d.path) === "tags")) continue;
    const tags = (u.desired.service.tags ?? []).filter((t) => t.key?.startsWith("lokistack.io/"));
    actions.push({ kind: "TagResource", unit: u.desired.unit.name, component: u.desired.unit.component, arn: u.service.serviceArn, tags, repairs: ["TagDrift"] });
  }
  return { actions, deferrals };
}

/** Fields whose change makes ECS start a new task (a deployment or a scale-up). */
const DEPLOYING = new Set(["taskDefinition", "networkConfiguration", "platformVersion"]);

/** Whether repairing the unit would make ECS start a task. */
function startsTasks(u: UnitAnalysis): boolean {
  if (u.state === "missing" || !u.taskDefinitionCurrent || !u.discoveryCurrent) return true;
  return u.serviceDiffs.some((d) => DEPLOYING.has(topField(d.path)) || (d.path === "desiredCount" && Number(d.observed) < Number(d.expected)));
}

/** The desiredCount to restore: the spec's, or the nearest edge of the autoscaling range. */
function clampToAutoscaling(u: UnitAnalysis): number {
  const range = u.desired.unit.resources.autoscaling;
  const observed = u.service?.desiredCount ?? u.desired.unit.desiredCount;
  if (!range) return u.desired.unit.desiredCount;
  return Math.min(Math.max(observed, range.min), range.max);
}
