// Observe: what ECS has, at the batched lower bound. Per cluster and pass:
// DescribeServices in batches of 10 for the names asked, ListTasks once (100
// per page), and DescribeTasks only for task ARNs not seen before (or not yet
// settled, or gone since the last pass). Task definitions are immutable per
// ARN, so each is described once for the life of the process.
import type { Service, Task, TaskDefinition, Tag } from "@aws-sdk/client-ecs";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import { canonicalJson } from "../resources/hash.ts";
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

export interface ClusterObservation {
  cluster: string;
  /** By service name, for the names asked; absent means ECS does not know it. */
  services: Map<string, Service>;
  /** Tasks with desiredStatus RUNNING, the whole cluster. */
  running: TaskSnapshot[];
  /** Tasks that were running at the previous pass and are not any more, with their stop reason. */
  stopped: TaskSnapshot[];
  /** Tasks asked to stop that have not reached STOPPED yet: they still hold their slot. */
  stopping: TaskSnapshot[];
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
    ...(ip ? { privateIp: ip } : {}),
    ...(t.stopCode ? { stopCode: t.stopCode } : {}),
    ...(t.stoppedReason ? { stoppedReason: t.stoppedReason } : {}),
  };
}

export class Observer {
  private readonly tasks = new Map<string, TaskSnapshot>();
  private readonly previousRunning = new Map<string, Set<string>>();
  private readonly taskDefinitions = new Map<string, ObservedTaskDefinition>();
  /** Per cluster, tasks followed until they reach STOPPED. */
  private readonly stopping = new Map<string, Set<string>>();

  constructor(private readonly ecs: EcsGateway) {}

  /**
   * Observes one cluster. `watched(group)` says which task groups belong to
   * stacks the operator manages: only their unsettled tasks are described again.
   */
  async observeCluster(cluster: string, serviceNames: readonly string[], watched: (t: TaskSnapshot) => boolean): Promise<ClusterObservation> {
    const [services, arns] = await Promise.all([this.ecs.describeServices(cluster, serviceNames), this.ecs.listRunningTaskArns(cluster)]);
    const current = new Set(arns);
    const previous = this.previousRunning.get(cluster);
    const gone = previous ? [...previous].filter((a) => !current.has(a)) : [];
    const unsettled = arns.filter((a) => {
      const known = this.tasks.get(a);
      return !known || (watched(known) && !this.settled(known));
    });
    const following = this.stopping.get(cluster) ?? new Set<string>();
    const toDescribe = [...new Set([...unsettled, ...gone, ...following])];
    const described = toDescribe.length > 0 ? await this.ecs.describeTasks(cluster, toDescribe) : [];
    const seen = new Set<string>();
    for (const t of described) {
      if (!t.taskArn) continue;
      seen.add(t.taskArn);
      this.tasks.set(t.taskArn, snapshotOf(t));
    }
    const stopped = gone.map((a) => this.tasks.get(a)).filter((t): t is TaskSnapshot => t !== undefined);
    for (const t of stopped) if (t.lastStatus !== "STOPPED") following.add(t.arn);
    const stillStopping: TaskSnapshot[] = [];
    for (const a of following) {
      const t = this.tasks.get(a);
      // A task ECS no longer describes has been purged: it is certainly stopped.
      if (!t || !seen.has(a) || t.lastStatus === "STOPPED") following.delete(a);
      else stillStopping.push(t);
    }
    for (const a of gone) if (!following.has(a)) this.tasks.delete(a);
    this.stopping.set(cluster, following);
    this.previousRunning.set(cluster, current);
    return {
      cluster,
      services,
      running: arns.map((a) => this.tasks.get(a)).filter((t): t is TaskSnapshot => t !== undefined),
      stopped,
      stopping: stillStopping,
    };
  }

  /** A task is settled once RUNNING and, when its definition has a health check, HEALTHY. */
  private settled(t: TaskSnapshot): boolean {
    if (t.lastStatus !== "RUNNING") return false;
    const td = this.taskDefinitions.get(t.taskDefinitionArn);
    return !td?.hasHealthCheck || t.healthStatus === "HEALTHY";
  }

  /** A task definition by ARN (or family for its latest ACTIVE revision); cached by ARN. */
  async taskDefinition(ref: string): Promise<ObservedTaskDefinition | undefined> {
    const cached = this.taskDefinitions.get(ref);
    if (cached) return cached;
    const found = await this.ecs.describeTaskDefinition(ref);
    if (!found) return undefined;
    const observed = toObserved(found.taskDefinition, found.tags);
    this.taskDefinitions.set(observed.arn, observed);
    return observed;
  }

  /**
   * An ACTIVE revision of `family` whose canonical content is `canonical`: one
   * already seen (cached) if possible, else the family's latest ACTIVE revision.
   */
  async findTaskDefinition(family: string, canonical: string): Promise<ObservedTaskDefinition | undefined> {
    const prefix = `:task-definition/${family}:`;
    for (const td of this.taskDefinitions.values()) {
      if (td.arn.includes(prefix) && td.canonicalJson === canonical) return td;
    }
    const latest = await this.taskDefinition(family);
    return latest && latest.canonicalJson === canonical ? latest : undefined;
  }

  /** Forgets a revision ECS refused (deregistered since it was described). */
  forgetTaskDefinition(arn: string): void {
    this.taskDefinitions.delete(arn);
  }

  /** Records a definition the operator just registered, so it is never described. */
  remember(td: TaskDefinition, tags: Tag[]): ObservedTaskDefinition {
    const observed = toObserved(td, tags);
    this.taskDefinitions.set(observed.arn, observed);
    return observed;
  }

  /** Follows a task the operator stopped until ECS reports it STOPPED. */
  followStop(cluster: string, arn: string): void {
    const set = this.stopping.get(cluster) ?? new Set<string>();
    set.add(arn);
    this.stopping.set(cluster, set);
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
