// The ECS service scheduler, one tick at a time: tasks walk their lifecycle,
// services keep desiredCount tasks of their primary deployment, and
// deployments honor minimumHealthyPercent / maximumPercent as ECS does:
// maximumPercent caps every task that is not yet STOPPED (a stopping task still
// holds its slot), minimumHealthyPercent is the floor of healthy tasks while
// old ones are stopped. With 0/100 the old task is gone before the new one
// starts; with 100/200 they overlap until the new one is healthy.
import type { EcsService } from "./ecs.ts";
import { isHealthy, moveTask, serviceKey, type ServiceState, type TaskDefinitionState, type TaskState } from "./model.ts";

export interface SchedulerTiming {
  /** Ticks a task spends in each phase before moving on. */
  provisioning: number;
  pending: number;
  /** Ticks after RUNNING until a task with a health check reports HEALTHY. */
  healthy: number;
  stopping: number;
  /** Seconds a STOPPED task stays visible (ECS: at least an hour). */
  stoppedRetentionSeconds: number;
  /** Seconds an INACTIVE service stays describable. */
  inactiveRetentionSeconds: number;
}

export const DEFAULT_TIMING: SchedulerTiming = {
  provisioning: 1,
  pending: 1,
  healthy: 2,
  stopping: 1,
  stoppedRetentionSeconds: 3600,
  inactiveRetentionSeconds: 3600,
};

export interface TaskLifecycle {
  /** Moves one task a step along PROVISIONING → PENDING → RUNNING (→ HEALTHY) → STOPPING → DEPROVISIONING → STOPPED. */
  advance(task: TaskState, taskDefinition: TaskDefinitionState | undefined, now: number): void;
}

/**
 * What a container health check command gets from the simulated container:
 * pass, fail, or undefined when the simulator cannot tell (it then passes).
 */
export type HealthProbe = (task: TaskState, command: readonly string[]) => boolean | undefined;

interface HealthCheckSettings {
  command: string[];
  interval?: number;
  retries?: number;
  startPeriod?: number;
}

/**
 * Tasks that spend a few ticks in each phase. A task with a health check runs
 * it from `timing.healthy` ticks after RUNNING on: a pass makes it HEALTHY; a
 * failure counts as Docker counts it (ignored during startPeriod unless the
 * check passed before), and `retries` intervals of failures make it UNHEALTHY.
 */
export class SimulatedLifecycle implements TaskLifecycle {
  constructor(
    private readonly timing: SchedulerTiming,
    private readonly probe: HealthProbe = () => undefined,
  ) {}

  advance(t: TaskState, td: TaskDefinitionState | undefined, now: number): void {
    if (t.lastStatus === "STOPPED") return;
    t.ticks += 1;
    if (t.desiredStatus === "STOPPED") {
      if (t.lastStatus === "PROVISIONING" || t.lastStatus === "PENDING") {
        moveTask(t, "STOPPED");
      } else if (t.lastStatus !== "STOPPING" && t.lastStatus !== "DEPROVISIONING") {
        moveTask(t, "STOPPING");
        return;
      } else if (t.lastStatus === "STOPPING" && t.ticks >= this.timing.stopping) {
        t.executionStoppedAt = now;
        moveTask(t, "DEPROVISIONING");
        return;
      } else if (t.lastStatus === "DEPROVISIONING") {
        moveTask(t, "STOPPED");
      } else return;
      t.stoppedAt = now;
      t.executionStoppedAt ??= now;
      return;
    }
    if (t.lastStatus === "PROVISIONING" && t.ticks >= this.timing.provisioning) {
      t.pullStartedAt = now;
      moveTask(t, "PENDING");
    } else if (t.lastStatus === "PENDING" && t.ticks >= this.timing.pending) {
      t.pullStoppedAt = now;
      t.startedAt = now;
      t.connectivityAt = now;
      moveTask(t, "RUNNING");
    } else if (t.lastStatus === "RUNNING" && t.hasHealthCheck && t.ticks >= this.timing.healthy) {
      this.checkHealth(t, td, now);
    }
  }

  private checkHealth(t: TaskState, td: TaskDefinitionState | undefined, now: number): void {
    const containers = (td?.body as { containerDefinitions?: { essential?: boolean; healthCheck?: HealthCheckSettings }[] } | undefined)?.containerDefinitions ?? [];
    const hc = containers.find((c) => (c.essential ?? true) && c.healthCheck)?.healthCheck;
    const passes = hc ? (this.probe(t, hc.command) ?? true) : true;
    let status = t.healthStatus;
    if (passes) {
      status = "HEALTHY";
      delete t.healthFailingSince;
    } else if (t.healthStatus === "HEALTHY" || now - (t.startedAt ?? now) >= (hc?.startPeriod ?? 0)) {
      t.healthFailingSince ??= now;
      if (now - t.healthFailingSince >= (hc?.retries ?? 3) * (hc?.interval ?? 30)) status = "UNHEALTHY";
    }
    if (status !== t.healthStatus) {
      t.healthStatus = status;
      t.version += 1;
    }
  }
}

export class Scheduler {
  constructor(
    private readonly ecs: EcsService,
    private readonly timing: SchedulerTiming,
    private readonly now: () => number,
  ) {
    this.lifecycle = new SimulatedLifecycle(timing);
  }

  /** How tasks move through their lifecycle: by ticks (simulated, the default) or by real processes. */
  lifecycle: TaskLifecycle;

  tick(): void {
    const { state } = this.ecs;
    const now = this.now();
    for (const task of Object.values(state.tasks)) this.lifecycle.advance(task, this.ecs.taskDefinition(task.taskDefinitionArn), now);
    const index = this.ecs.liveTasksByService();
    for (const service of Object.values(state.services)) this.reconcile(service, index.get(serviceKey(service.cluster, service.name, service.incarnation)) ?? []);
    this.prune();
  }

  /** `tasks`: the service's live tasks; tasks started here are added to it. */
  private reconcile(s: ServiceState, tasks: TaskState[]): void {
    if (s.status === "INACTIVE") return;
    if (s.status === "DRAINING") {
      for (const t of tasks) this.ecs.stopTask(t, "ServiceSchedulerInitiated", "Service is being deleted");
      // "After all tasks have transitioned to either STOPPING or STOPPED status, the service status
      // moves from DRAINING to INACTIVE" (DeleteService): a task may still be stopping (its
      // stopTimeout, an ingester's flush) under an INACTIVE service.
      if (tasks.every((t) => t.lastStatus === "STOPPING" || t.lastStatus === "DEPROVISIONING")) {
        s.status = "INACTIVE";
        s.inactiveAt = this.now();
        s.deployments = [];
      }
      return;
    }
    // ECS replaces a service task whose essential container fails its health checks, once
    // the service's healthCheckGracePeriodSeconds since the task started have passed.
    const grace = s.healthCheckGracePeriodSeconds ?? 0;
    for (const t of tasks) {
      if (t.desiredStatus !== "RUNNING" || t.healthStatus !== "UNHEALTHY" || this.now() - (t.startedAt ?? 0) < grace) continue;
      this.ecs.stopTask(t, "ServiceSchedulerInitiated", "Task failed container health checks");
      this.ecs.addEvent(s, `(task ${t.id}) failed container health checks.`);
    }
    const primary = s.deployments[0]!;
    const running = tasks.filter((t) => t.desiredStatus === "RUNNING");
    const ofPrimary = running.filter((t) => t.deploymentId === primary.id);
    const old = running.filter((t) => t.deploymentId !== primary.id);
    const { minimumHealthyPercent, maximumPercent } = s.deploymentConfiguration;
    const maxTasks = Math.floor((s.desiredCount * maximumPercent) / 100);
    const minHealthy = Math.ceil((s.desiredCount * minimumHealthyPercent) / 100);
    const reason = `Scaling activity initiated by (deployment ${primary.id})`;

    // Scale in: stop the newest primary tasks beyond desiredCount, those not yet running first.
    const surplus = ofPrimary.length - s.desiredCount;
    if (surplus > 0) {
      const victims = [...ofPrimary].sort((a, b) => Number(isHealthy(a)) - Number(isHealthy(b)) || b.createdAt - a.createdAt).slice(0, surplus);
      for (const t of victims) this.ecs.stopTask(t, "ServiceSchedulerInitiated", reason);
      this.ecs.addEvent(s, `has stopped ${victims.length} running tasks: ${victims.map((t) => `(task ${t.id})`).join(" ")}.`);
    }

    // Stop old-deployment tasks while enough healthy tasks remain: unhealthy ones cost nothing.
    let spareHealthy = tasks.filter(isHealthy).length - minHealthy;
    const stopped: TaskState[] = [];
    for (const t of [...old].sort((a, b) => Number(isHealthy(a)) - Number(isHealthy(b)))) {
      if (isHealthy(t)) {
        if (spareHealthy <= 0) continue;
        spareHealthy -= 1;
      }
      this.ecs.stopTask(t, "ServiceSchedulerInitiated", reason);
      stopped.push(t);
    }
    if (stopped.length > 0) this.ecs.addEvent(s, `has stopped ${stopped.length} running tasks: ${stopped.map((t) => `(task ${t.id})`).join(" ")}.`);

    // Start primary tasks up to desiredCount, inside maximumPercent (stopping tasks still count).
    const room = maxTasks - tasks.length;
    const missing = s.desiredCount - ofPrimary.filter((t) => t.desiredStatus === "RUNNING").length;
    const toStart = Math.max(0, Math.min(room, missing));
    if (toStart > 0) {
      const td = this.ecs.taskDefinition(primary.taskDefinition)!;
      const started = Array.from({ length: toStart }, () =>
        this.ecs.startTask(s.cluster, td, {
          group: `service:${s.name}`,
          startedBy: primary.id,
          service: s.name,
          ...(s.incarnation ? { serviceIncarnation: s.incarnation } : {}),
          deploymentId: primary.id,
          ...(primary.launchType ? { launchType: primary.launchType } : {}),
          ...(primary.platformVersion ? { platformVersion: primary.platformVersion } : {}),
          networkConfiguration: s.networkConfiguration,
          tags: this.taskTags(s, td.tags),
          registries: s.serviceRegistries.map((r) => (r as { registryArn?: string }).registryArn ?? ""),
        }),
      );
      tasks.push(...started);
      this.ecs.addEvent(s, `has started ${started.length} tasks: ${started.map((t) => `(task ${t.id})`).join(" ")}.`);
    }

    // Steady state: the primary deployment is complete once it alone runs desiredCount healthy tasks.
    const healthyPrimary = tasks.filter((t) => t.deploymentId === primary.id && isHealthy(t)).length;
    const others = tasks.filter((t) => t.deploymentId !== primary.id).length;
    if (others === 0 && healthyPrimary === s.desiredCount && tasks.length === s.desiredCount) {
      if (primary.rolloutState === "IN_PROGRESS") {
        primary.rolloutState = "COMPLETED";
        primary.rolloutStateReason = `ECS deployment ${primary.id} completed.`;
        primary.updatedAt = this.now();
        s.deployments = [primary];
        this.ecs.addEvent(s, `deployment ${primary.id} deployment completed.`);
        this.ecs.addEvent(s, "has reached a steady state.");
      }
    }
  }

  private taskTags(s: ServiceState, tdTags: ServiceState["tags"]): ServiceState["tags"] {
    const base = s.propagateTags === "SERVICE" ? s.tags : s.propagateTags === "TASK_DEFINITION" ? tdTags : [];
    if (!s.enableECSManagedTags) return [...base];
    return [...base, { key: "aws:ecs:clusterName", value: s.cluster }, { key: "aws:ecs:serviceName", value: s.name }];
  }

  private prune(): void {
    const now = this.now();
    const { state } = this.ecs;
    for (const [arn, t] of Object.entries(state.tasks)) {
      if (t.lastStatus === "STOPPED" && t.stoppedAt !== undefined && now - t.stoppedAt > this.timing.stoppedRetentionSeconds) delete state.tasks[arn];
    }
    for (const [key, s] of Object.entries(state.services)) {
      if (s.status === "INACTIVE" && s.inactiveAt !== undefined && now - s.inactiveAt > this.timing.inactiveRetentionSeconds) delete state.services[key];
    }
  }
}
