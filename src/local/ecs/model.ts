// The simulated ECS account's state: plain data, so it can be saved to JSON
// and loaded back. Timestamps are epoch seconds, as the JSON protocol sends them.

export interface Tag {
  key: string;
  value: string;
}

export interface ClusterState {
  name: string;
  arn: string;
  createdAt: number;
  tags: Tag[];
}

export interface TaskDefinitionState {
  arn: string;
  family: string;
  revision: number;
  status: "ACTIVE" | "INACTIVE";
  registeredAt: number;
  deregisteredAt?: number;
  /** The task definition as DescribeTaskDefinition returns it, defaults filled. */
  body: Record<string, unknown>;
  tags: Tag[];
  /** Whether an essential container declares a health check (tasks then report HEALTHY). */
  hasHealthCheck: boolean;
  networkMode: string;
  fargateCompatible: boolean;
}

export type RolloutState = "IN_PROGRESS" | "COMPLETED" | "FAILED";

export interface DeploymentState {
  id: string;
  status: "PRIMARY" | "ACTIVE";
  taskDefinition: string;
  createdAt: number;
  updatedAt: number;
  rolloutState: RolloutState;
  rolloutStateReason: string;
  failedTasks: number;
  launchType?: string;
  platformVersion?: string;
  networkConfiguration?: unknown;
}

export interface ServiceEvent {
  id: string;
  createdAt: number;
  message: string;
}

export interface DeploymentConfigurationState {
  minimumHealthyPercent: number;
  maximumPercent: number;
  deploymentCircuitBreaker: { enable: boolean; rollback: boolean };
  alarms?: unknown;
  strategy?: string;
  bakeTimeInMinutes?: number;
}

export interface ServiceState {
  arn: string;
  name: string;
  cluster: string;
  status: "ACTIVE" | "DRAINING" | "INACTIVE";
  desiredCount: number;
  taskDefinition: string;
  launchType?: string;
  capacityProviderStrategy?: unknown[];
  platformVersion?: string;
  deploymentConfiguration: DeploymentConfigurationState;
  deploymentController: { type: string };
  networkConfiguration?: { awsvpcConfiguration?: { subnets?: string[]; securityGroups?: string[]; assignPublicIp?: string } };
  schedulingStrategy: string;
  propagateTags: string;
  enableECSManagedTags: boolean;
  enableExecuteCommand: boolean;
  availabilityZoneRebalancing: string;
  healthCheckGracePeriodSeconds?: number;
  loadBalancers: unknown[];
  serviceRegistries: unknown[];
  placementConstraints: unknown[];
  placementStrategy: unknown[];
  tags: Tag[];
  createdAt: number;
  /**
   * Which creation of the name this is (its first deployment's id): a service created again under
   * the name of an INACTIVE one is another service, and the old one's stopping tasks are not its.
   */
  incarnation?: string;
  inactiveAt?: number;
  deployments: DeploymentState[];
  events: ServiceEvent[];
}

export type TaskLastStatus =
  | "PROVISIONING"
  | "PENDING"
  | "ACTIVATING"
  | "RUNNING"
  | "DEACTIVATING"
  | "STOPPING"
  | "DEPROVISIONING"
  | "STOPPED";

export interface TaskState {
  arn: string;
  id: string;
  cluster: string;
  taskDefinitionArn: string;
  family: string;
  group: string;
  startedBy?: string;
  /** The service that owns the task, if any. */
  service?: string;
  /** That service's incarnation. */
  serviceIncarnation?: string;
  deploymentId?: string;
  lastStatus: TaskLastStatus;
  desiredStatus: "RUNNING" | "STOPPED";
  healthStatus: "HEALTHY" | "UNHEALTHY" | "UNKNOWN";
  hasHealthCheck: boolean;
  /** Simulated tasks: since when (epoch seconds) the health check has been failing, counted as Docker counts. */
  healthFailingSince?: number;
  /** Scheduler ticks spent in the current phase. */
  ticks: number;
  createdAt: number;
  pullStartedAt?: number;
  pullStoppedAt?: number;
  startedAt?: number;
  connectivityAt?: number;
  stoppingAt?: number;
  stoppedAt?: number;
  executionStoppedAt?: number;
  stopCode?: string;
  stoppedReason?: string;
  version: number;
  cpu?: string;
  memory?: string;
  launchType?: string;
  platformVersion?: string;
  availabilityZone: string;
  privateIp: string;
  subnetId?: string;
  containers: {
    name: string;
    image: string;
    essential: boolean;
    exitCode?: number;
    /** Real tasks only: what the container process did (simulated tasks derive it from the task). */
    lastStatus?: "PENDING" | "RUNNING" | "STOPPED";
    healthStatus?: "HEALTHY" | "UNHEALTHY" | "UNKNOWN";
    reason?: string;
  }[];
  tags: Tag[];
  /** Cloud Map service ARNs the task is registered in while RUNNING (service tasks only). */
  registries?: string[];
}

export interface EcsState {
  clusters: Record<string, ClusterState>;
  /** By family; index = revision - 1. */
  taskDefinitions: Record<string, TaskDefinitionState[]>;
  /** By `cluster/name`. */
  services: Record<string, ServiceState>;
  /** By task ARN, in creation order. */
  tasks: Record<string, TaskState>;
  /** Counter for deployment ids and IP addresses. */
  sequence: number;
}

export function emptyEcsState(): EcsState {
  return { clusters: {}, taskDefinitions: {}, services: {}, tasks: {}, sequence: 0 };
}

/** A task enters a new phase of its lifecycle. */
export function moveTask(t: TaskState, status: TaskLastStatus): void {
  t.lastStatus = status;
  t.ticks = 0;
  t.version += 1;
}

export const isLive = (t: TaskState) => t.lastStatus !== "STOPPED";

/** The key of a service's tasks: its cluster, name and incarnation. */
export const serviceKey = (cluster: string, name: string, incarnation: string | undefined) => `${cluster}/${name}#${incarnation ?? ""}`;

export const isHealthy = (t: TaskState) =>
  t.desiredStatus === "RUNNING" && t.lastStatus === "RUNNING" && (!t.hasHealthCheck || t.healthStatus === "HEALTHY");
