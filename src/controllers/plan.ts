// Act, decided: the smallest safe writes that repair the drifts, create what
// is missing and remove what is no longer wanted, in a safe order.
//   1. stop extra compactor / monolithic / ingester-ordinal tasks, before anything else;
//   2. write config parameters (tasks read them at start), create Cloud Map services;
//   3. register task definitions whose content is new (never when an equal revision exists);
//   4. create and update services: stateless ones freely, singletons only while no extra
//      task is still stopping, ingester ordinals one at a time and only when the others
//      are running and ready (created lowest first, rolled highest first);
//   5. scale orphaned services to 0 (ingester ordinals highest first, each after the
//      one above it is gone), each ingester (and a monolithic task) first asked to
//      flush and leave the ring, then delete them once their tasks are gone;
//   6. delete what removed units leave behind: their Cloud Map services and config
//      parameters, once ECS has let go of them, and forget their ghosts in the ring;
//   7. restore ownership tags.
// Every UpdateService of a single-task unit carries its 0/100 deployment
// configuration, so ECS can never roll it under anything weaker, whatever
// someone changed since it was observed. One write per drift. Pure.
import type { DeploymentConfiguration, UpdateServiceCommandInput } from "@aws-sdk/client-ecs";
import { COMPONENTS, type Component } from "../resources/components.ts";
import { deploymentConfigurationFor } from "../resources/service.ts";
import { TAGS } from "../resources/tags.ts";
import type { OrphanAnalysis, StackAnalysis, UnitAnalysis } from "./analyze.ts";
import { fieldChanges } from "./drift.ts";
import type { Action, Deferral, Purpose } from "./types.ts";

export interface PlanContext {
  cluster: string;
  /** The stack's Cloud Map namespace id (services are created in it). */
  namespaceId: string;
  /** Whether owned objects that are no longer desired may be deleted (false under deletionPolicy retain for a deleted spec). */
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

/** Prefix of a registry ARN still to be created in this reconcile: `cloudmap:<unit>`. */
export const PENDING_REGISTRY = "cloudmap:";

function purposeOf(field: string): Purpose {
  if (field === "desiredCount") return "DesiredCountChanged";
  if (field === "serviceRegistries") return "ServiceDiscoveryMissing";
  if (field === "deploymentConfiguration") return "DeploymentConfigurationWeakened";
  if (field === "taskDefinition") return "TaskDefinitionChanged";
  return "ServiceSettingsChanged";
}

const singleTask = (component: string) => COMPONENTS[component as Component]?.role !== "stateless";

/** The deployment configuration every UpdateService of a single-task unit carries. */
function guardedDeployment(component: string): { deploymentConfiguration?: DeploymentConfiguration } {
  return singleTask(component) ? { deploymentConfiguration: deploymentConfigurationFor({ component: component as Component }) } : {};
}

export function plan(analysis: StackAnalysis, ctx: PlanContext): Plan {
  const actions: Action[] = [];
  const deferrals: Deferral[] = [];
  const defer = (unit: string, reason: string) => deferrals.push({ unit, reason });
  const units = analysis.units;
  const created = (u: UnitAnalysis): Purpose[] => (u.creating ? ["Create"] : []);

  // 1. Extra singleton and ordinal tasks: stop them first.
  for (const u of units) {
    for (const t of u.extraTasks) {
      const { name, component } = u.desired.unit;
      actions.push({ kind: "StopTask", unit: name, component, cluster: ctx.cluster, taskArn: t.arn, reason: `lokistack: extra ${component} task for ${name}`, repairs: [component === "ingester" ? "DuplicateOrdinalTask" : "ExtraSingletonTask"] });
    }
  }

  // 2. Config parameters, then Cloud Map services: DNS names for every unit, before any ECS service needs one.
  for (const u of units) {
    if (u.configCurrent || u.state === "foreign" || !u.configParameter) continue;
    actions.push({ kind: "PutConfig", unit: u.desired.unit.name, component: u.desired.unit.component, parameter: u.configParameter, value: u.desired.lokiConfig, repairs: u.creating ? ["Create"] : u.updating ? ["Update"] : ["ConfigChanged"] });
  }
  for (const u of units) {
    if (u.registryArn || u.state === "foreign") continue;
    const name = u.desired.unit.name;
    const tags = (u.desired.service.tags ?? []).filter((t) => t.key !== TAGS.specHash);
    actions.push({ kind: "CreateDiscoveryService", unit: name, component: u.desired.unit.component, name, namespaceId: ctx.namespaceId, tags, repairs: u.creating ? ["Create"] : ["ServiceDiscoveryMissing"] });
  }

  // Decide which units change now, then register only what they need.
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
    // Switching between microservices and monolithic: the new unit that runs the compactor
    // starts only once the old one (an orphan now) has no task left.
    const oldCompactor = RUNS_COMPACTOR.has(u.desired.unit.component) && startsTasks(u) ? analysis.orphans.find((o) => RUNS_COMPACTOR.has(o.component) && (o.tasks > 0 || (o.service.desiredCount ?? 0) > 0)) : undefined;
    if (oldCompactor) {
      defer(name, `waiting for ${oldCompactor.name} to stop: one compactor per store`);
      continue;
    }
    changes.set(u, u.state === "missing" ? "create" : "update");
  }

  // Ingester ordinals. Safety fixes (a weakened deployment configuration, a count
  // above 1) go ahead on every ordinal at once: they never start a task. Any other
  // change picks one ordinal: a missing one (lowest first), else an orphan to scale
  // down (highest first), else one to update (highest first).
  const ordinalOrphans = analysis.orphans.filter((o) => o.component === "ingester").sort((a, b) => (b.ordinal ?? 0) - (a.ordinal ?? 0));
  const safetyOnly = (u: UnitAnalysis) =>
    u.state === "present" &&
    u.serviceDiffs.every((d) => topField(d.path) === "tags" || topField(d.path) === "deploymentConfiguration" || (d.path === "desiredCount" && Number(d.observed) > 1)) &&
    u.taskDefinitionCurrent &&
    u.discoveryCurrent;
  for (const u of ordinals) if (needsChange(u) && safetyOnly(u)) changes.set(u, "update");
  const busy = (u: UnitAnalysis) => u.extraTasks.length > 0 || u.stoppingTasks.length > 0;
  // A desired ordinal changes only while every other desired ordinal is running and ready.
  const unready = (except: string) => ordinals.find((o) => o.desired.unit.name !== except && o.state !== "missing" && !o.ready);
  const othersReady = (except: string) => unready(except) === undefined;
  const waitingFor = (except: string) => {
    const u = unready(except)!;
    return u.notReady ? `: ${u.desired.unit.name} is ${u.notReady}` : "";
  };
  // An orphan is scaled down only after every orphan above it is gone: never waits on one below.
  const aboveGone = (o: OrphanAnalysis) => ordinalOrphans.every((x) => (x.ordinal ?? 0) <= (o.ordinal ?? 0) || (x.tasks === 0 && x.service.desiredCount === 0));
  const pendingOrdinal = ordinals.filter((u) => u.state === "missing").sort((a, b) => (a.desired.unit.ordinal ?? 0) - (b.desired.unit.ordinal ?? 0))[0];
  const orphanToScale = ctx.deleteOrphans ? ordinalOrphans.find((o) => o.service.desiredCount! > 0) : undefined;
  const updateOrdinal = ordinals
    .filter((u) => u.state === "present" && needsChange(u) && !changes.has(u))
    .sort((a, b) => (b.desired.unit.ordinal ?? 0) - (a.desired.unit.ordinal ?? 0))[0];
  let ordinalChange: UnitAnalysis | OrphanAnalysis | undefined = pendingOrdinal ?? orphanToScale ?? updateOrdinal;
  if (ordinalChange) {
    const name = "desired" in ordinalChange ? ordinalChange.desired.unit.name : ordinalChange.name;
    const reason =
      "desired" in ordinalChange
        ? busy(ordinalChange)
          ? "waiting for this ordinal's other task to stop"
          : !othersReady(name)
            ? `waiting until every other ingester ordinal is running and ready${waitingFor(name)}`
            : undefined
        : !othersReady(name)
          ? `waiting until every desired ingester ordinal is running and ready${waitingFor(name)}`
          : !aboveGone(ordinalChange)
            ? "waiting for the ordinal above it to be gone"
            : undefined;
    // The wait is on an ordinal whose tasks do not even run and that would itself change (a crash
    // loop the new spec fixes): that one goes first, or nothing would ever move. One that runs
    // but is not ready yet (replaying its WAL, joining the ring) is waited for, never restarted.
    const blocker = reason?.startsWith("waiting until every")
      ? ordinals.filter((o) => o.state === "present" && !o.running && needsChange(o) && !changes.has(o) && !busy(o)).sort((a, b) => (b.desired.unit.ordinal ?? 0) - (a.desired.unit.ordinal ?? 0))[0]
      : undefined;
    if (blocker) {
      defer(name, `waiting for ${blocker.desired.unit.name}, which is not ready, to change first`);
      ordinalChange = blocker;
      changes.set(blocker, "update");
    } else if (reason) {
      defer(name, reason);
      ordinalChange = undefined;
    } else if ("desired" in ordinalChange) {
      changes.set(ordinalChange, ordinalChange.state === "missing" ? "create" : "update");
    }
    for (const u of ordinals) {
      if (needsChange(u) && !changes.has(u) && u !== ordinalChange && u.state !== "foreign" && u.desired.unit.name !== name) defer(u.desired.unit.name, "one ingester ordinal changes at a time");
    }
  }

  // 3. Task definitions the changing units need and ECS does not have yet.
  for (const [u, change] of changes) {
    const needsRegistration = (change === "create" || !u.taskDefinitionCurrent) && !u.matchingTaskDefinitionArn;
    if (needsRegistration) actions.push({ kind: "RegisterTaskDefinition", unit: u.desired.unit.name, component: u.desired.unit.component, input: u.desired.taskDefinition, repairs: change === "create" ? (u.creating ? ["Create"] : ["MissingService"]) : u.updating ? ["Update"] : ["TaskDefinitionChanged"] });
  }

  // 4. Create and update services. A family without a revision means "the one registered above".
  for (const [u, change] of changes) {
    const name = u.desired.unit.name;
    const component = u.desired.unit.component;
    const taskDefinition = u.matchingTaskDefinitionArn ?? name;
    // A registry not created yet is named by the unit; the executor pins the ARN it gets.
    const registryArn = u.registryArn ?? `${PENDING_REGISTRY}${name}`;
    if (change === "create") {
      actions.push({ kind: "CreateService", unit: name, component, input: { ...u.desired.service, taskDefinition, serviceRegistries: [{ registryArn }] }, repairs: u.creating ? ["Create"] : ["MissingService"] });
      continue;
    }
    const fields = new Set(u.serviceDiffs.map((d) => topField(d.path)).filter((f) => f !== "tags" && UPDATABLE.has(f)));
    if (!u.taskDefinitionCurrent) fields.add("taskDefinition");
    if (!u.discoveryCurrent) fields.add("serviceRegistries");
    // Weakened deployment safety is restored on its own first; a rollout waits for the next reconcile.
    if (fields.has("deploymentConfiguration") && singleTask(component)) {
      for (const f of [...fields]) if (f !== "deploymentConfiguration" && f !== "desiredCount") fields.delete(f);
    }
    if (fields.size === 0) continue;
    const input: Record<string, unknown> = { cluster: u.desired.service.cluster, service: name, ...guardedDeployment(component) };
    const desired: Record<string, unknown> = { ...u.desired.service };
    for (const f of fields) {
      if (f === "taskDefinition") input.taskDefinition = taskDefinition;
      // Registries someone else attached stay; the unit's own is added.
      else if (f === "serviceRegistries") input.serviceRegistries = [...(u.service?.serviceRegistries ?? []).filter((r) => r.registryArn !== registryArn), { registryArn }];
      else if (f === "desiredCount") input.desiredCount = clampToAutoscaling(u);
      // A field the spec leaves unset but someone set (a placement rule) is cleared.
      else input[f] = desired[f] ?? CLEARED[f];
    }
    // What changes, attribute by attribute: the service's fields (the count as restored, within an
    // autoscaling range), and the task definition's content it rolls to.
    const changes = [
      ...(fields.has("desiredCount") ? [{ path: "desiredCount", from: u.service?.desiredCount, to: input.desiredCount }] : []),
      ...fieldChanges(u.serviceDiffs.filter((d) => fields.has(topField(d.path)) && !["taskDefinition", "desiredCount"].includes(d.path))),
      ...(fields.has("taskDefinition") ? u.taskDefinitionChanges : []),
      ...(fields.has("serviceRegistries") ? [{ path: "serviceRegistries", to: "(the unit's Cloud Map service)" }] : []),
    ];
    actions.push({
      kind: "UpdateService",
      unit: name,
      component,
      input: input as unknown as UpdateServiceCommandInput,
      fields: [...fields].sort(),
      repairs: u.updating ? ["Update"] : [...new Set([...fields].map(purposeOf)), ...created(u)],
      ...(changes.length > 0 ? { changes } : {}),
    });
  }
  const nonUpdatable = units.flatMap((u) => u.serviceDiffs.filter((d) => topField(d.path) !== "tags" && !UPDATABLE.has(topField(d.path))).map((d) => ({ u, d })));
  for (const { u, d } of nonUpdatable) defer(u.desired.unit.name, `${d.path} cannot be changed in place; delete the service and the operator recreates it`);

  // 5. Orphaned services: flush, scale to 0, then delete once no task is left. The flush comes
  // first in the same plan: when it fails, the executor stops there and the ordinal stays.
  for (const o of analysis.orphans) {
    if (!ctx.deleteOrphans) {
      defer(o.name, "kept: deletionPolicy retain");
      continue;
    }
    // A unit the newer generation removed is its update; any other owned leftover was drift.
    const repairs: Purpose[] = [analysis.drifts.some((d) => d.unit === o.name) ? "OrphanedService" : "Update"];
    if (o.service.desiredCount! > 0) {
      if (o.component === "ingester" && ordinalChange !== o) {
        if (o !== orphanToScale) defer(o.name, "ingester ordinals are removed one at a time, highest first");
        continue;
      }
      for (const t of o.unflushed) {
        actions.push({ kind: "FlushIngester", unit: o.name, component: o.component, taskArn: t.arn, address: t.address, member: o.name, repairs });
      }
      const input = { cluster: ctx.cluster, service: o.name, desiredCount: 0, ...guardedDeployment(o.component) };
      actions.push({ kind: "UpdateService", unit: o.name, component: o.component, input, fields: ["desiredCount"], repairs, changes: [{ path: "desiredCount", from: o.service.desiredCount, to: 0 }] });
    } else if (o.tasks === 0 && (o.service.runningCount ?? 0) === 0 && (o.service.pendingCount ?? 0) === 0) {
      actions.push({ kind: "DeleteService", unit: o.name, component: o.component, cluster: ctx.cluster, service: o.name, repairs });
    } else {
      defer(o.name, "waiting for its tasks to stop before deleting it");
    }
  }

  // 6. What removed units leave behind, once ECS has deregistered their tasks, and their tasks
  // that no service started (run by hand), which nothing else stops.
  if (ctx.deleteOrphans) {
    for (const r of analysis.leftoverRegistries) {
      if (r.serviceGone) actions.push({ kind: "DeleteDiscoveryService", unit: r.unit, component: r.component, name: r.unit, arn: r.arn, repairs: ["Delete"] });
      else defer(r.unit, "its Cloud Map service is deleted once the ECS service is gone");
    }
    for (const c of analysis.leftoverConfigs) {
      if (c.serviceGone) actions.push({ kind: "DeleteParameter", unit: c.unit, component: c.component, parameter: c.parameter, repairs: ["Delete"] });
    }
    for (const t of analysis.strayTasks) {
      actions.push({ kind: "StopTask", ...t, cluster: ctx.cluster, reason: `lokistack: ${t.unit} is no longer part of the stack`, repairs: ["StrayTask"] });
    }
  }
  for (const g of analysis.ghosts) {
    actions.push({ kind: "ForgetRingMember", unit: g.member, component: "ingester", member: g.member, via: g.via, repairs: ["RingMemberNotDesired"] });
  }

  // 7. Ownership tags.
  for (const u of units) {
    if (u.state !== "present" || !u.service?.serviceArn) continue;
    if (!u.serviceDiffs.some((d) => topField(d.path) === "tags")) continue;
    const tags = (u.desired.service.tags ?? []).filter((t) => t.key?.startsWith("lokistack.io/"));
    actions.push({ kind: "TagResource", unit: u.desired.unit.name, component: u.desired.unit.component, arn: u.service.serviceArn, tags, repairs: ["TagDrift"] });
  }
  return { actions, deferrals };
}

/** Units whose Loki runs the compactor: never two of them at once on one store. */
const RUNS_COMPACTOR = new Set(["compactor", "monolithic"]);

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
