// The simulated ECS API: the actions the operator and its tests use, with the
// real batch limits, error names and service semantics.
import { AwsError, clientException, invalidParameter } from "../errors.ts";
import { pageOf } from "../paging.ts";
import { hexId, type Random } from "../random.ts";
import {
  isLive,
  serviceKey,
  type ClusterState,
  type DeploymentState,
  type EcsState,
  type ServiceState,
  type Tag,
  type TaskDefinitionState,
  type TaskState,
} from "./model.ts";
import { checkTags, mergeTags } from "./tags.ts";
import { registerTaskDefinition } from "./task-definitions.ts";

type Input = Record<string, unknown>;

const clusterNotFound = () => new AwsError("ClusterNotFoundException", "Cluster not found.");
const serviceNotFound = () => new AwsError("ServiceNotFoundException", "Service not found.");
const serviceNotActive = () => new AwsError("ServiceNotActiveException", "Service was not ACTIVE.");

function str(input: Input, key: string): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") throw invalidParameter(`${key} must be a string.`);
  return v;
}

function list<T = unknown>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

/** `arn:aws:ecs:…:service/cluster/name` or `name` → `name`. */
export const lastSegment = (v: string) => (v.startsWith("arn:") ? v.slice(v.lastIndexOf("/") + 1) : v);

function page<T>(items: T[], input: Input, defaultMax: number): { items: T[]; nextToken?: string } {
  const { items: slice, next } = pageOf(items, input.maxResults, input.nextToken, defaultMax, invalidParameter);
  return { items: slice, ...(next ? { nextToken: next } : {}) };
}

export interface EcsOptions {
  region: string;
  account: string;
  random: Random;
  now: () => number;
  /** Whether a Cloud Map service ARN exists (ECS refuses unknown service registries). */
  registryExists?: (arn: string) => boolean;
}

export class EcsService {
  /** Gives each new task its private IP; real tasks take theirs from the task network. */
  allocateAddress: (sequence: number) => string = (n) => `10.0.${(n >> 8) & 255}.${n & 255}`;

  constructor(
    readonly state: EcsState,
    private readonly opts: EcsOptions,
  ) {}

  private get prefix(): string {
    return `arn:aws:ecs:${this.opts.region}:${this.opts.account}`;
  }

  handle(action: string, input: Input): unknown {
    switch (action) {
      case "CreateCluster":
        return { cluster: this.describeCluster(this.createCluster(input)) };
      case "DescribeClusters":
        return this.describeClusters(input);
      case "ListClusters":
        return this.listClusters(input);
      case "RegisterTaskDefinition":
        return this.registerTaskDefinition(input);
      case "DescribeTaskDefinition":
        return this.describeTaskDefinition(input);
      case "DeregisterTaskDefinition":
        return this.deregisterTaskDefinition(input);
      case "ListTaskDefinitions":
        return this.listTaskDefinitions(input);
      case "CreateService":
        return { service: this.describeService(this.createService(input), false) };
      case "UpdateService":
        return { service: this.describeService(this.updateService(input), false) };
      case "DeleteService":
        return { service: this.describeService(this.deleteService(input), false) };
      case "DescribeServices":
        return this.describeServices(input);
      case "ListServices":
        return this.listServices(input);
      case "RunTask":
        return this.runTask(input);
      case "StopTask":
        return { task: this.describeTask(this.stopTaskRequest(input), false) };
      case "ListTasks":
        return this.listTasks(input);
      case "DescribeTasks":
        return this.describeTasks(input);
      case "TagResource":
        this.tagResource(input);
        return {};
      case "UntagResource":
        this.untagResource(input);
        return {};
      case "ListTagsForResource":
        return { tags: this.taggable(str(input, "resourceArn") ?? "").tags };
      default:
        throw new AwsError("UnknownOperationException", `Unknown operation ${action}.`);
    }
  }

  // ---- clusters ----

  private createCluster(input: Input): ClusterState {
    const name = str(input, "clusterName") ?? "default";
    if (!/^[a-zA-Z0-9_-]{1,255}$/.test(name)) throw invalidParameter("Cluster name must be 1-255 letters, numbers, hyphens or underscores.");
    const tags = list<Tag>(input.tags);
    checkTags(tags);
    return (this.state.clusters[name] ??= { name, arn: `${this.prefix}:cluster/${name}`, createdAt: this.opts.now(), tags });
  }

  cluster(ref: string | undefined): ClusterState {
    const c = this.state.clusters[lastSegment(ref ?? "default")];
    if (!c) throw clusterNotFound();
    return c;
  }

  private describeCluster(c: ClusterState, withTags = false) {
    const tasks = Object.values(this.state.tasks).filter((t) => t.cluster === c.name && isLive(t));
    return {
      clusterArn: c.arn,
      clusterName: c.name,
      status: "ACTIVE",
      registeredContainerInstancesCount: 0,
      runningTasksCount: tasks.filter((t) => t.lastStatus === "RUNNING").length,
      pendingTasksCount: tasks.filter((t) => t.lastStatus !== "RUNNING").length,
      activeServicesCount: Object.values(this.state.services).filter((s) => s.cluster === c.name && s.status === "ACTIVE").length,
      statistics: [],
      settings: [{ name: "containerInsights", value: "disabled" }],
      capacityProviders: ["FARGATE", "FARGATE_SPOT"],
      defaultCapacityProviderStrategy: [],
      ...(withTags ? { tags: c.tags } : {}),
    };
  }

  private describeClusters(input: Input) {
    const refs = list<string>(input.clusters);
    const wanted = refs.length > 0 ? refs : ["default"];
    if (wanted.length > 100) throw invalidParameter("clusters can have at most 100 items.");
    const withTags = list(input.include).includes("TAGS");
    const clusters = [];
    const failures = [];
    for (const ref of wanted) {
      const c = this.state.clusters[lastSegment(ref)];
      if (c) clusters.push(this.describeCluster(c, withTags));
      else failures.push({ arn: ref.startsWith("arn:") ? ref : `${this.prefix}:cluster/${ref}`, reason: "MISSING" });
    }
    return { clusters, failures };
  }

  private listClusters(input: Input) {
    const { items, nextToken } = page(Object.values(this.state.clusters).map((c) => c.arn), input, 100);
    return { clusterArns: items, ...(nextToken ? { nextToken } : {}) };
  }

  // ---- task definitions ----

  private registerTaskDefinition(input: Input) {
    const family = typeof input.family === "string" ? input.family : "";
    const revisions = (this.state.taskDefinitions[family] ??= []);
    const revision = revisions.length + 1;
    const arn = `${this.prefix}:task-definition/${family}:${revision}`;
    let td: TaskDefinitionState;
    try {
      td = registerTaskDefinition(input, revision, arn, `arn:aws:iam::${this.opts.account}:root`, this.opts.now());
    } catch (e) {
      if (revisions.length === 0) delete this.state.taskDefinitions[family];
      throw e;
    }
    revisions.push(td);
    return { taskDefinition: td.body, tags: td.tags };
  }

  /** `family`, `family:revision` or an ARN; a bare family means its latest ACTIVE revision. */
  taskDefinition(ref: string | undefined): TaskDefinitionState | undefined {
    if (!ref) return undefined;
    const tail = lastSegment(ref);
    const m = /^(.*):(\d+)$/.exec(tail);
    const revisions = this.state.taskDefinitions[m ? m[1]! : tail] ?? [];
    if (m) return revisions[Number(m[2]) - 1];
    return revisions.filter((r) => r.status === "ACTIVE").at(-1);
  }

  /**
   * The revision CreateService, UpdateService and RunTask start tasks from. "You can't use an INACTIVE
   * task definition to run new tasks or create new services, and you can't update an existing service to
   * reference an INACTIVE task definition" (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterTaskDefinition.html).
   * The answers are not in the API reference; they are what ECS answered callers:
   * - none: ClientException "TaskDefinition not found." (CreateService: Cloud-CV/EvalAI#2419, remind101/empire#353;
   *   RunTask: several clients match exactly "ClientException: TaskDefinition not found."); UpdateService assumed alike.
   * - INACTIVE: "TaskDefinition is inactive", as ClientException from UpdateService (Cloud-CV/EvalAI#5167) and
   *   CreateService, but as InvalidParameterException from RunTask (DefangLabs/defang#775).
   */
  private launchable(ref: string | undefined, inactive: (message: string) => AwsError): TaskDefinitionState {
    const td = this.taskDefinition(ref);
    if (!td) throw clientException("TaskDefinition not found.");
    if (td.status !== "ACTIVE") throw inactive("TaskDefinition is inactive");
    return td;
  }

  // Missing: ClientException "Unable to describe task definition." (Songmu/ecschedule#28, sil-org/ecs-deploy#145).
  private describeTaskDefinition(input: Input) {
    const td = this.taskDefinition(str(input, "taskDefinition"));
    if (!td) throw clientException("Unable to describe task definition.");
    return { taskDefinition: td.body, ...(list(input.include).includes("TAGS") ? { tags: td.tags } : {}) };
  }

  private deregisterTaskDefinition(input: Input) {
    const ref = str(input, "taskDefinition") ?? "";
    if (!/:\d+$/.test(ref)) throw clientException("The specified task definition does not include a revision.");
    const td = this.taskDefinition(ref);
    if (!td) throw clientException("The specified task definition does not exist.");
    td.status = "INACTIVE";
    td.deregisteredAt = this.opts.now();
    td.body = { ...td.body, status: "INACTIVE", deregisteredAt: td.deregisteredAt };
    return { taskDefinition: td.body };
  }

  /**
   * ECS model (ListTaskDefinitionsRequest): familyPrefix is "the full family name", so it selects one
   * family exactly ("demo-ingester-1" does not list "demo-ingester-10"); status ACTIVE (default) |
   * INACTIVE | DELETE_IN_PROGRESS (no ALL, that is ListTaskDefinitionFamilies'); sort ASC (default):
   * lexicographically by family, then by revision, DESC reverses both; maxResults 1-100, default 100.
   */
  private listTaskDefinitions(input: Input) {
    const prefix = str(input, "familyPrefix");
    const status = str(input, "status") ?? "ACTIVE";
    if (!["ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"].includes(status)) throw invalidParameter("status must be one of ACTIVE, INACTIVE, DELETE_IN_PROGRESS.");
    const sort = str(input, "sort") ?? "ASC";
    if (sort !== "ASC" && sort !== "DESC") throw invalidParameter("sort must be one of ASC, DESC.");
    let all = Object.values(this.state.taskDefinitions)
      .flat()
      .filter((t) => (prefix === undefined || t.family === prefix) && t.status === status)
      .sort((a, b) => (a.family === b.family ? a.revision - b.revision : a.family < b.family ? -1 : 1))
      .map((t) => t.arn);
    if (sort === "DESC") all = all.reverse();
    const { items, nextToken } = page(all, input, 100);
    return { taskDefinitionArns: items, ...(nextToken ? { nextToken } : {}) };
  }

  // ---- services ----

  service(clusterRef: string | undefined, serviceRef: string | undefined): ServiceState | undefined {
    const cluster = this.cluster(clusterRef);
    if (!serviceRef) throw invalidParameter("service must be specified.");
    return this.state.services[`${cluster.name}/${lastSegment(serviceRef)}`];
  }

  private newDeploymentId(): string {
    this.state.sequence += 1;
    return `ecs-svc/${(9223370000000000000n + BigInt(this.state.sequence) * 7919n).toString()}`;
  }

  private newDeployment(s: Pick<ServiceState, "taskDefinition" | "launchType" | "platformVersion" | "networkConfiguration">): DeploymentState {
    const now = this.opts.now();
    return {
      id: this.newDeploymentId(),
      status: "PRIMARY",
      taskDefinition: s.taskDefinition,
      createdAt: now,
      updatedAt: now,
      rolloutState: "IN_PROGRESS",
      rolloutStateReason: "ECS deployment in progress.",
      failedTasks: 0,
      ...(s.launchType ? { launchType: s.launchType } : {}),
      ...(s.platformVersion ? { platformVersion: s.platformVersion } : {}),
      ...(s.networkConfiguration ? { networkConfiguration: s.networkConfiguration } : {}),
    };
  }

  addEvent(s: ServiceState, message: string): void {
    s.events.unshift({ id: hexId(this.opts.random, 8) + "-" + hexId(this.opts.random, 4), createdAt: this.opts.now(), message: `(service ${s.name}) ${message}` });
    if (s.events.length > 100) s.events.length = 100;
  }

  private checkNetwork(td: TaskDefinitionState, networkConfiguration: unknown): void {
    const vpc = (networkConfiguration as ServiceState["networkConfiguration"])?.awsvpcConfiguration;
    if (td.networkMode === "awsvpc" && !vpc) {
      throw invalidParameter("Network Configuration must be provided when networkMode 'awsvpc' is specified.");
    }
    if (vpc && (!Array.isArray(vpc.subnets) || vpc.subnets.length === 0)) throw invalidParameter("subnets can not be empty.");
    if (vpc && (vpc.securityGroups?.length ?? 0) > 5) throw invalidParameter("securityGroups can have at most 5 items.");
  }

  private checkRegistries(registries: unknown): unknown[] {
    const list_ = list<{ registryArn?: string }>(registries);
    for (const r of list_) {
      if (!r.registryArn || !(this.opts.registryExists?.(r.registryArn) ?? true)) {
        throw invalidParameter(`The service registry ${r.registryArn ?? "(none)"} does not exist.`);
      }
    }
    return list_;
  }

  /**
   * A Cloud Map service's instances: the RUNNING tasks registered in it. A service task registers
   * in its service's registries as they were when it started, and is deregistered once it leaves
   * RUNNING (stopping, stopped), so Cloud Map DeleteService succeeds after the tasks are gone.
   */
  instancesOf(registryArn: string): TaskState[] {
    const registries = (t: TaskState) =>
      t.registries ?? (this.state.services[`${t.cluster}/${t.service ?? ""}`]?.serviceRegistries ?? []).map((r) => (r as { registryArn?: string }).registryArn);
    return Object.values(this.state.tasks).filter((t) => t.lastStatus === "RUNNING" && registries(t).includes(registryArn));
  }

  private deploymentConfiguration(input: unknown, base?: ServiceState["deploymentConfiguration"]): ServiceState["deploymentConfiguration"] {
    const dc = (input ?? {}) as Partial<ServiceState["deploymentConfiguration"]>;
    const out = {
      ...base,
      ...dc,
      minimumHealthyPercent: dc.minimumHealthyPercent ?? base?.minimumHealthyPercent ?? 100,
      maximumPercent: dc.maximumPercent ?? base?.maximumPercent ?? 200,
      deploymentCircuitBreaker: {
        enable: dc.deploymentCircuitBreaker?.enable ?? base?.deploymentCircuitBreaker.enable ?? false,
        rollback: dc.deploymentCircuitBreaker?.rollback ?? base?.deploymentCircuitBreaker.rollback ?? false,
      },
    };
    if (out.maximumPercent < out.minimumHealthyPercent || out.maximumPercent < 1) {
      throw invalidParameter("maximumPercent must be greater than or equal to minimumHealthyPercent.");
    }
    return out;
  }

  private createService(input: Input): ServiceState {
    const cluster = this.cluster(str(input, "cluster"));
    const name = str(input, "serviceName");
    if (!name || !/^[a-zA-Z0-9_-]{1,255}$/.test(name)) throw invalidParameter("Service name must be 1-255 letters, numbers, hyphens or underscores.");
    const existing = this.state.services[`${cluster.name}/${name}`];
    if (existing?.status === "ACTIVE") throw invalidParameter("Creation of service was not idempotent.");
    if (existing?.status === "DRAINING") throw invalidParameter("Unable to Start a service that is still Draining.");
    const td = this.launchable(str(input, "taskDefinition"), clientException);
    const launchType = str(input, "launchType") ?? (input.capacityProviderStrategy ? undefined : "EC2");
    if (launchType === "FARGATE" && !td.fargateCompatible) throw invalidParameter("Task definition does not support launch_type FARGATE.");
    this.checkNetwork(td, input.networkConfiguration);
    const schedulingStrategy = str(input, "schedulingStrategy") ?? "REPLICA";
    if (schedulingStrategy === "REPLICA" && typeof input.desiredCount !== "number") {
      throw invalidParameter("desiredCount is required when schedulingStrategy is REPLICA.");
    }
    const desiredCount = Number(input.desiredCount ?? 0);
    if (!Number.isInteger(desiredCount) || desiredCount < 0) throw invalidParameter("desiredCount must be a non-negative integer.");
    const tags = list<Tag>(input.tags);
    checkTags(tags);
    const platformVersion = str(input, "platformVersion") ?? (launchType === "FARGATE" ? "LATEST" : undefined);
    const networkConfiguration = input.networkConfiguration as ServiceState["networkConfiguration"];
    const base = { taskDefinition: td.arn, launchType, platformVersion, networkConfiguration };
    const s: ServiceState = {
      arn: `${this.prefix}:service/${cluster.name}/${name}`,
      name,
      cluster: cluster.name,
      status: "ACTIVE",
      desiredCount,
      taskDefinition: td.arn,
      ...(launchType ? { launchType } : {}),
      ...(input.capacityProviderStrategy ? { capacityProviderStrategy: list(input.capacityProviderStrategy) } : {}),
      ...(platformVersion ? { platformVersion } : {}),
      deploymentConfiguration: this.deploymentConfiguration(input.deploymentConfiguration),
      deploymentController: { type: ((input.deploymentController as { type?: string } | undefined)?.type ?? "ECS") },
      ...(networkConfiguration
        ? {
            networkConfiguration: {
              awsvpcConfiguration: { assignPublicIp: "DISABLED", ...networkConfiguration.awsvpcConfiguration },
            },
          }
        : {}),
      schedulingStrategy,
      propagateTags: str(input, "propagateTags") ?? "NONE",
      enableECSManagedTags: input.enableECSManagedTags === true,
      enableExecuteCommand: input.enableExecuteCommand === true,
      availabilityZoneRebalancing: str(input, "availabilityZoneRebalancing") ?? "ENABLED",
      ...(typeof input.healthCheckGracePeriodSeconds === "number" ? { healthCheckGracePeriodSeconds: input.healthCheckGracePeriodSeconds } : {}),
      loadBalancers: list(input.loadBalancers),
      serviceRegistries: this.checkRegistries(input.serviceRegistries),
      placementConstraints: list(input.placementConstraints),
      placementStrategy: list(input.placementStrategy),
      tags,
      createdAt: this.opts.now(),
      deployments: [],
      events: [],
    };
    s.deployments.push(this.newDeployment(base));
    s.incarnation = s.deployments[0]!.id;
    this.state.services[`${cluster.name}/${name}`] = s;
    return s;
  }

  private updateService(input: Input): ServiceState {
    const s = this.service(str(input, "cluster"), str(input, "service"));
    if (!s) throw serviceNotFound();
    if (s.status !== "ACTIVE") throw serviceNotActive();
    let redeploy = input.forceNewDeployment === true;
    const tdRef = str(input, "taskDefinition");
    if (tdRef !== undefined) {
      const td = this.launchable(tdRef, clientException);
      if (s.launchType === "FARGATE" && !td.fargateCompatible) throw invalidParameter("Task definition does not support launch_type FARGATE.");
      if (td.arn !== s.taskDefinition) redeploy = true;
      s.taskDefinition = td.arn;
    }
    if (input.networkConfiguration !== undefined) {
      this.checkNetwork(this.taskDefinition(s.taskDefinition)!, input.networkConfiguration);
      const next = input.networkConfiguration as ServiceState["networkConfiguration"];
      s.networkConfiguration = { awsvpcConfiguration: { assignPublicIp: "DISABLED", ...next?.awsvpcConfiguration } };
      redeploy = true;
    }
    const platformVersion = str(input, "platformVersion");
    if (platformVersion !== undefined && platformVersion !== s.platformVersion) {
      s.platformVersion = platformVersion;
      redeploy = true;
    }
    if (input.desiredCount !== undefined) {
      const n = Number(input.desiredCount);
      if (!Number.isInteger(n) || n < 0) throw invalidParameter("desiredCount must be a non-negative integer.");
      if (n !== s.desiredCount) this.addEvent(s, `desired count changed from ${s.desiredCount} to ${n}.`);
      s.desiredCount = n;
    }
    if (input.deploymentConfiguration !== undefined) s.deploymentConfiguration = this.deploymentConfiguration(input.deploymentConfiguration, s.deploymentConfiguration);
    for (const key of ["availabilityZoneRebalancing", "propagateTags"] as const) {
      const v = str(input, key);
      if (v !== undefined) s[key] = v;
    }
    if (typeof input.enableECSManagedTags === "boolean") s.enableECSManagedTags = input.enableECSManagedTags;
    if (typeof input.enableExecuteCommand === "boolean") s.enableExecuteCommand = input.enableExecuteCommand;
    if (typeof input.healthCheckGracePeriodSeconds === "number") s.healthCheckGracePeriodSeconds = input.healthCheckGracePeriodSeconds;
    if (input.serviceRegistries !== undefined) {
      const next = this.checkRegistries(input.serviceRegistries);
      // A change of registries starts a deployment, so new tasks register.
      if (JSON.stringify(next) !== JSON.stringify(s.serviceRegistries)) redeploy = true;
      s.serviceRegistries = next;
    }
    if (input.placementConstraints !== undefined) s.placementConstraints = list(input.placementConstraints);
    if (input.placementStrategy !== undefined) s.placementStrategy = list(input.placementStrategy);
    if (input.capacityProviderStrategy !== undefined) s.capacityProviderStrategy = list(input.capacityProviderStrategy);
    if (redeploy) {
      for (const d of s.deployments) d.status = "ACTIVE";
      s.deployments.unshift(this.newDeployment(s));
    }
    return s;
  }

  private deleteService(input: Input): ServiceState {
    const s = this.service(str(input, "cluster"), str(input, "service"));
    if (!s) throw serviceNotFound();
    if (s.status !== "ACTIVE") throw serviceNotActive();
    if (s.desiredCount > 0 && input.force !== true) throw invalidParameter("The service cannot be stopped while it is scaled above 0.");
    s.desiredCount = 0;
    s.status = "DRAINING";
    return s;
  }

  /** Live (not yet STOPPED) tasks by `cluster/service`, built in one pass over all tasks. */
  liveTasksByService(): Map<string, TaskState[]> {
    const index = new Map<string, TaskState[]>();
    for (const t of Object.values(this.state.tasks)) {
      if (!t.service || !isLive(t)) continue;
      const key = serviceKey(t.cluster, t.service, t.serviceIncarnation);
      const list = index.get(key);
      if (list) list.push(t);
      else index.set(key, [t]);
    }
    return index;
  }

  describeService(s: ServiceState, withTags: boolean, index = this.liveTasksByService()) {
    const tasks = (index.get(serviceKey(s.cluster, s.name, s.incarnation)) ?? []).filter((t) => t.desiredStatus === "RUNNING");
    const running = (ts: TaskState[]) => ts.filter((t) => t.lastStatus === "RUNNING").length;
    const pending = (ts: TaskState[]) => ts.filter((t) => ["PROVISIONING", "PENDING", "ACTIVATING"].includes(t.lastStatus)).length;
    return {
      serviceArn: s.arn,
      serviceName: s.name,
      clusterArn: this.state.clusters[s.cluster]?.arn ?? `${this.prefix}:cluster/${s.cluster}`,
      loadBalancers: s.loadBalancers,
      serviceRegistries: s.serviceRegistries,
      status: s.status,
      desiredCount: s.desiredCount,
      runningCount: running(tasks),
      pendingCount: pending(tasks),
      ...(s.launchType ? { launchType: s.launchType } : {}),
      ...(s.capacityProviderStrategy ? { capacityProviderStrategy: s.capacityProviderStrategy } : {}),
      ...(s.platformVersion ? { platformVersion: s.platformVersion, platformFamily: "Linux" } : {}),
      taskDefinition: s.taskDefinition,
      deploymentConfiguration: { ...s.deploymentConfiguration, alarms: s.deploymentConfiguration.alarms ?? { alarmNames: [], enable: false, rollback: false } },
      deployments: s.deployments.map((d) => {
        const own = tasks.filter((t) => t.deploymentId === d.id);
        return {
          id: d.id,
          status: d.status,
          taskDefinition: d.taskDefinition,
          desiredCount: d.status === "PRIMARY" ? s.desiredCount : own.length,
          pendingCount: pending(own),
          runningCount: running(own),
          failedTasks: d.failedTasks,
          createdAt: d.createdAt,
          updatedAt: d.updatedAt,
          ...(d.launchType ? { launchType: d.launchType } : {}),
          ...(d.platformVersion ? { platformVersion: d.platformVersion === "LATEST" ? "1.4.0" : d.platformVersion, platformFamily: "Linux" } : {}),
          ...(d.networkConfiguration ? { networkConfiguration: d.networkConfiguration } : {}),
          rolloutState: d.rolloutState,
          rolloutStateReason: d.rolloutStateReason,
        };
      }),
      roleArn: `arn:aws:iam::${this.opts.account}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS`,
      events: s.events,
      createdAt: s.createdAt,
      placementConstraints: s.placementConstraints,
      placementStrategy: s.placementStrategy,
      ...(s.networkConfiguration ? { networkConfiguration: s.networkConfiguration } : {}),
      ...(s.healthCheckGracePeriodSeconds !== undefined ? { healthCheckGracePeriodSeconds: s.healthCheckGracePeriodSeconds } : {}),
      schedulingStrategy: s.schedulingStrategy,
      deploymentController: s.deploymentController,
      ...(withTags ? { tags: s.tags } : {}),
      createdBy: `arn:aws:iam::${this.opts.account}:root`,
      enableECSManagedTags: s.enableECSManagedTags,
      propagateTags: s.propagateTags,
      enableExecuteCommand: s.enableExecuteCommand,
      availabilityZoneRebalancing: s.availabilityZoneRebalancing,
    };
  }

  private describeServices(input: Input) {
    const cluster = this.cluster(str(input, "cluster"));
    const refs = list<string>(input.services);
    if (refs.length === 0) throw invalidParameter("Services cannot be empty.");
    if (refs.length > 10) throw invalidParameter("services can have at most 10 items.");
    const withTags = list(input.include).includes("TAGS");
    const index = this.liveTasksByService();
    const services = [];
    const failures = [];
    for (const ref of refs) {
      const s = this.state.services[`${cluster.name}/${lastSegment(ref)}`];
      if (s) services.push(this.describeService(s, withTags, index));
      else failures.push({ arn: ref.startsWith("arn:") ? ref : `${this.prefix}:service/${cluster.name}/${ref}`, reason: "MISSING" });
    }
    return { services, failures };
  }

  private listServices(input: Input) {
    const cluster = this.cluster(str(input, "cluster"));
    const launchType = str(input, "launchType");
    const strategy = str(input, "schedulingStrategy");
    const arns = Object.values(this.state.services)
      .filter((s) => s.cluster === cluster.name && s.status === "ACTIVE")
      .filter((s) => (!launchType || s.launchType === launchType) && (!strategy || s.schedulingStrategy === strategy))
      .map((s) => s.arn);
    const { items, nextToken } = page(arns, input, 10);
    return { serviceArns: items, ...(nextToken ? { nextToken } : {}) };
  }

  // ---- tasks ----

  /** Creates a task in PROVISIONING; the scheduler moves it along. */
  startTask(
    cluster: string,
    td: TaskDefinitionState,
    opts: {
      group: string;
      startedBy?: string;
      service?: string;
      serviceIncarnation?: string;
      deploymentId?: string;
      launchType?: string;
      platformVersion?: string;
      networkConfiguration?: ServiceState["networkConfiguration"];
      tags: Tag[];
      /** The Cloud Map service ARNs the task registers in while RUNNING. */
      registries?: string[];
    },
  ): TaskState {
    const id = hexId(this.opts.random, 32);
    const arn = `${this.prefix}:task/${cluster}/${id}`;
    this.state.sequence += 1;
    const n = this.state.sequence;
    const subnets = opts.networkConfiguration?.awsvpcConfiguration?.subnets ?? [];
    const containers = list<{ name: string; image: string; essential?: boolean }>(td.body.containerDefinitions).map((c) => ({
      name: c.name,
      image: c.image,
      essential: c.essential ?? true,
    }));
    const task: TaskState = {
      arn,
      id,
      cluster,
      taskDefinitionArn: td.arn,
      family: td.family,
      group: opts.group,
      ...(opts.startedBy ? { startedBy: opts.startedBy } : {}),
      ...(opts.service ? { service: opts.service } : {}),
      ...(opts.serviceIncarnation ? { serviceIncarnation: opts.serviceIncarnation } : {}),
      ...(opts.deploymentId ? { deploymentId: opts.deploymentId } : {}),
      lastStatus: "PROVISIONING",
      desiredStatus: "RUNNING",
      healthStatus: "UNKNOWN",
      hasHealthCheck: td.hasHealthCheck,
      ticks: 0,
      createdAt: this.opts.now(),
      version: 1,
      ...(td.body.cpu ? { cpu: String(td.body.cpu) } : {}),
      ...(td.body.memory ? { memory: String(td.body.memory) } : {}),
      ...(opts.launchType ? { launchType: opts.launchType } : {}),
      ...(opts.platformVersion ? { platformVersion: opts.platformVersion === "LATEST" ? "1.4.0" : opts.platformVersion } : {}),
      availabilityZone: `${this.opts.region}${"abc"[n % 3]}`,
      privateIp: this.allocateAddress(n),
      ...(subnets.length > 0 ? { subnetId: subnets[n % subnets.length] } : {}),
      containers,
      tags: opts.tags,
      ...(opts.registries ? { registries: opts.registries } : {}),
    };
    this.state.tasks[arn] = task;
    return task;
  }

  task(clusterRef: string | undefined, ref: string): TaskState | undefined {
    const cluster = this.cluster(clusterRef);
    const id = lastSegment(ref);
    return this.state.tasks[ref] ?? this.state.tasks[`${this.prefix}:task/${cluster.name}/${id}`];
  }

  /** Asks a task to stop; the scheduler walks it to STOPPED. Stopping twice keeps the first reason. */
  stopTask(task: TaskState, stopCode: string, reason: string): void {
    if (task.desiredStatus === "STOPPED") return;
    task.desiredStatus = "STOPPED";
    task.stopCode = stopCode;
    task.stoppedReason = reason;
    task.stoppingAt = this.opts.now();
    task.ticks = 0;
    task.version += 1;
  }

  private runTask(input: Input) {
    const cluster = this.cluster(str(input, "cluster"));
    const td = this.launchable(str(input, "taskDefinition"), invalidParameter);
    const count = input.count === undefined ? 1 : Number(input.count);
    if (!Number.isInteger(count) || count < 1 || count > 10) throw invalidParameter("count must be between 1 and 10.");
    const launchType = str(input, "launchType") ?? "EC2";
    if (launchType === "FARGATE" && !td.fargateCompatible) throw invalidParameter("Task definition does not support launch_type FARGATE.");
    this.checkNetwork(td, input.networkConfiguration);
    const startedBy = str(input, "startedBy");
    if (startedBy && startedBy.length > 128) throw invalidParameter("startedBy must be at most 128 characters.");
    const tags = list<Tag>(input.tags);
    checkTags(tags);
    const propagated = str(input, "propagateTags") === "TASK_DEFINITION" ? td.tags : [];
    const tasks = Array.from({ length: count }, () =>
      this.startTask(cluster.name, td, {
        group: str(input, "group") ?? `family:${td.family}`,
        ...(startedBy ? { startedBy } : {}),
        launchType,
        ...(str(input, "platformVersion") ? { platformVersion: str(input, "platformVersion") } : launchType === "FARGATE" ? { platformVersion: "LATEST" } : {}),
        networkConfiguration: input.networkConfiguration as ServiceState["networkConfiguration"],
        tags: mergeTags(propagated, tags),
      }),
    );
    return { tasks: tasks.map((t) => this.describeTask(t, false)), failures: [] };
  }

  private stopTaskRequest(input: Input): TaskState {
    const ref = str(input, "task");
    if (!ref) throw invalidParameter("task must be specified.");
    const task = this.task(str(input, "cluster"), ref);
    if (!task) throw invalidParameter("The referenced task was not found.");
    this.stopTask(task, "UserInitiated", str(input, "reason") ?? "Task stopped by user");
    return task;
  }

  private listTasks(input: Input) {
    const cluster = this.cluster(str(input, "cluster"));
    const serviceName = str(input, "serviceName");
    if (serviceName && !this.state.services[`${cluster.name}/${lastSegment(serviceName)}`]) throw serviceNotFound();
    const family = str(input, "family");
    const startedBy = str(input, "startedBy");
    const desiredStatus = str(input, "desiredStatus") ?? "RUNNING";
    if (!["RUNNING", "STOPPED", "PENDING"].includes(desiredStatus)) throw invalidParameter("desiredStatus must be RUNNING, PENDING or STOPPED.");
    const arns = Object.values(this.state.tasks)
      .filter((t) => t.cluster === cluster.name && t.desiredStatus === desiredStatus)
      .filter((t) => !serviceName || t.group === `service:${lastSegment(serviceName)}`)
      .filter((t) => !family || t.family === family)
      .filter((t) => !startedBy || t.startedBy === startedBy)
      .map((t) => t.arn);
    const { items, nextToken } = page(arns, input, 100);
    return { taskArns: items, ...(nextToken ? { nextToken } : {}) };
  }

  describeTask(t: TaskState, withTags: boolean) {
    const stopped = t.lastStatus === "STOPPED";
    const eni = `eni-${t.id.slice(0, 17)}`;
    return {
      attachments: [
        {
          id: `${t.id.slice(0, 8)}-${t.id.slice(8, 12)}-${t.id.slice(12, 16)}-${t.id.slice(16, 20)}-${t.id.slice(20, 32)}`,
          type: "ElasticNetworkInterface",
          status: stopped ? "DELETED" : t.lastStatus === "PROVISIONING" ? "PRECREATED" : "ATTACHED",
          details: [
            ...(t.subnetId ? [{ name: "subnetId", value: t.subnetId }] : []),
            { name: "networkInterfaceId", value: eni },
            { name: "privateIPv4Address", value: t.privateIp },
          ],
        },
      ],
      attributes: [{ name: "ecs.cpu-architecture", value: "x86_64" }],
      availabilityZone: t.availabilityZone,
      clusterArn: this.state.clusters[t.cluster]?.arn ?? `${this.prefix}:cluster/${t.cluster}`,
      connectivity: t.connectivityAt ? "CONNECTED" : undefined,
      connectivityAt: t.connectivityAt,
      containers: t.containers.map((c) => ({
        containerArn: `${this.prefix}:container/${t.cluster}/${t.id}/${c.name}`,
        taskArn: t.arn,
        name: c.name,
        image: c.image,
        // Real tasks report what each container process did; simulated ones derive it from the task.
        lastStatus: c.lastStatus ?? (stopped ? "STOPPED" : t.lastStatus === "RUNNING" && (c.essential || !t.startedAt) ? "RUNNING" : t.lastStatus === "RUNNING" ? "STOPPED" : "PENDING"),
        ...(c.lastStatus
          ? c.exitCode !== undefined ? { exitCode: c.exitCode } : {}
          : stopped ? { exitCode: c.exitCode ?? (t.stopCode === "EssentialContainerExited" && c.essential ? 1 : 143) } : !c.essential && t.startedAt ? { exitCode: 0 } : {}),
        ...(c.reason ? { reason: c.reason } : {}),
        networkInterfaces: [{ attachmentId: t.id, privateIpv4Address: t.privateIp }],
        healthStatus: c.healthStatus ?? (c.essential && t.hasHealthCheck ? t.healthStatus : "UNKNOWN"),
        cpu: "0",
      })),
      cpu: t.cpu,
      createdAt: t.createdAt,
      desiredStatus: t.desiredStatus,
      enableExecuteCommand: false,
      executionStoppedAt: t.executionStoppedAt,
      group: t.group,
      healthStatus: t.hasHealthCheck ? t.healthStatus : "UNKNOWN",
      lastStatus: t.lastStatus,
      launchType: t.launchType,
      memory: t.memory,
      overrides: { containerOverrides: t.containers.map((c) => ({ name: c.name })), inferenceAcceleratorOverrides: [] },
      platformVersion: t.platformVersion,
      platformFamily: "Linux",
      pullStartedAt: t.pullStartedAt,
      pullStoppedAt: t.pullStoppedAt,
      startedAt: t.startedAt,
      startedBy: t.startedBy,
      stopCode: t.stopCode,
      stoppedAt: t.stoppedAt,
      stoppedReason: t.stoppedReason,
      stoppingAt: t.stoppingAt,
      taskArn: t.arn,
      taskDefinitionArn: t.taskDefinitionArn,
      version: t.version,
      ephemeralStorage: { sizeInGiB: 20 },
      ...(withTags ? { tags: t.tags } : {}),
    };
  }

  private describeTasks(input: Input) {
    this.cluster(str(input, "cluster"));
    const refs = list<string>(input.tasks);
    if (refs.length === 0) throw invalidParameter("Tasks cannot be empty.");
    if (refs.length > 100) throw invalidParameter("tasks can have at most 100 items.");
    const withTags = list(input.include).includes("TAGS");
    const tasks = [];
    const failures = [];
    for (const ref of refs) {
      const t = this.task(str(input, "cluster"), ref);
      if (t) tasks.push(this.describeTask(t, withTags));
      else failures.push({ arn: ref, reason: "MISSING" });
    }
    return { tasks, failures };
  }

  // ---- tags ----

  /** The taggable resource with this ARN (service, task definition, task or cluster), if any. */
  taggableOrUndefined(arn: string): { tags: Tag[] } | undefined {
    return (
      Object.values(this.state.services).find((s) => s.arn === arn) ??
      Object.values(this.state.taskDefinitions).flat().find((t) => t.arn === arn) ??
      this.state.tasks[arn] ??
      Object.values(this.state.clusters).find((c) => c.arn === arn)
    );
  }

  private taggable(arn: string): { tags: Tag[] } {
    const found = this.taggableOrUndefined(arn);
    if (!found) throw new AwsError("ResourceNotFoundException", "The specified resource wasn't found.");
    return found;
  }

  private tagResource(input: Input): void {
    const target = this.taggable(str(input, "resourceArn") ?? "");
    const tags = list<Tag>(input.tags);
    if (tags.length === 0) throw invalidParameter("tags can not be empty.");
    checkTags(tags, target.tags);
    target.tags = mergeTags(target.tags, tags);
  }

  private untagResource(input: Input): void {
    const target = this.taggable(str(input, "resourceArn") ?? "");
    const keys = list<string>(input.tagKeys);
    target.tags = target.tags.filter((t) => !keys.includes(t.key));
  }
}
