// ECS calls the operator makes, batched and paginated as the API requires.
import {
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  ListTaskDefinitionsCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  StopTaskCommand,
  TagResourceCommand,
  UpdateServiceCommand,
  type CreateServiceCommandInput,
  type ECSClient,
  type RegisterTaskDefinitionCommandInput,
  type Service,
  type Tag,
  type Task,
  type TaskDefinition,
  type UpdateServiceCommandInput,
} from "@aws-sdk/client-ecs";
import { awsCall, AwsCallError } from "./errors.ts";

export const DESCRIBE_SERVICES_BATCH = 10;
export const DESCRIBE_TASKS_BATCH = 100;
/** DescribeTasks calls in flight at once: ECS throttles a burst of them (its API request rate limits). */
const DESCRIBE_TASKS_CONCURRENCY = 4;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

export class EcsGateway {
  constructor(private readonly client: ECSClient) {}

  /** Services by name, with tags; names ECS does not know are simply absent. */
  async describeServices(cluster: string, names: readonly string[]): Promise<Map<string, Service>> {
    const found = new Map<string, Service>();
    const batches = chunks([...new Set(names)], DESCRIBE_SERVICES_BATCH);
    const results = await Promise.all(
      batches.map((services) =>
        awsCall("ecs", "DescribeServices", () => this.client.send(new DescribeServicesCommand({ cluster, services, include: ["TAGS"] }))),
      ),
    );
    for (const r of results) for (const s of r.services ?? []) if (s.serviceName) found.set(s.serviceName, s);
    return found;
  }

  /**
   * Every task ARN of the cluster with this desiredStatus, all pages (100 per page): RUNNING, the
   * tasks ECS means to run; STOPPED, those told to stop (still stopping, or stopped: ListTasks keeps those "for at least one hour").
   */
  async listTaskArns(cluster: string, desiredStatus: "RUNNING" | "STOPPED" = "RUNNING"): Promise<string[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await awsCall("ecs", "ListTasks", () =>
        this.client.send(new ListTasksCommand({ cluster, desiredStatus, maxResults: 100, nextToken })),
      );
      arns.push(...(page.taskArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken);
    return arns;
  }

  /** 100 tasks a call, at most DESCRIBE_TASKS_CONCURRENCY calls at once (a first read may describe thousands). */
  async describeTasks(cluster: string, arns: readonly string[]): Promise<Task[]> {
    const batches = chunks(arns, DESCRIBE_TASKS_BATCH);
    const out: Task[] = [];
    for (let i = 0; i < batches.length; i += DESCRIBE_TASKS_CONCURRENCY) {
      const results = await Promise.all(
        batches.slice(i, i + DESCRIBE_TASKS_CONCURRENCY).map((tasks) => awsCall("ecs", "DescribeTasks", () => this.client.send(new DescribeTasksCommand({ cluster, tasks })))),
      );
      for (const r of results) out.push(...(r.tasks ?? []));
    }
    return out;
  }

  /** A task definition with its tags, or undefined when ECS has no such revision. */
  async describeTaskDefinition(ref: string): Promise<{ taskDefinition: TaskDefinition; tags: Tag[] } | undefined> {
    try {
      const r = await awsCall("ecs", "DescribeTaskDefinition", () =>
        this.client.send(new DescribeTaskDefinitionCommand({ taskDefinition: ref, include: ["TAGS"] })),
      );
      return r.taskDefinition ? { taskDefinition: r.taskDefinition, tags: r.tags ?? [] } : undefined;
    } catch (e) {
      if (e instanceof AwsCallError && e.code === "ClientException") return undefined;
      throw e;
    }
  }

  /** ARNs of the family's ACTIVE revisions, newest first, at most `max` (ListTaskDefinitions, 100 a page). */
  async listActiveRevisions(family: string, max: number): Promise<string[]> {
    const arns: string[] = [];
    let nextToken: string | undefined;
    do {
      const page = await awsCall("ecs", "ListTaskDefinitions", () =>
        this.client.send(new ListTaskDefinitionsCommand({ familyPrefix: family, status: "ACTIVE", sort: "DESC", maxResults: Math.min(100, max - arns.length), nextToken })),
      );
      arns.push(...(page.taskDefinitionArns ?? []));
      nextToken = page.nextToken;
    } while (nextToken && arns.length < max);
    return arns.slice(0, max);
  }

  async registerTaskDefinition(input: RegisterTaskDefinitionCommandInput): Promise<TaskDefinition> {
    const r = await awsCall("ecs", "RegisterTaskDefinition", () => this.client.send(new RegisterTaskDefinitionCommand(input)));
    return r.taskDefinition!;
  }

  async createService(input: CreateServiceCommandInput): Promise<Service> {
    const r = await awsCall("ecs", "CreateService", () => this.client.send(new CreateServiceCommand(input)));
    return r.service!;
  }

  async updateService(input: UpdateServiceCommandInput): Promise<Service> {
    const r = await awsCall("ecs", "UpdateService", () => this.client.send(new UpdateServiceCommand(input)));
    return r.service!;
  }

  async deleteService(cluster: string, service: string): Promise<Service> {
    const r = await awsCall("ecs", "DeleteService", () => this.client.send(new DeleteServiceCommand({ cluster, service, force: true })));
    return r.service!;
  }

  async stopTask(cluster: string, task: string, reason: string): Promise<void> {
    await awsCall("ecs", "StopTask", () => this.client.send(new StopTaskCommand({ cluster, task, reason })));
  }

  async tagResource(resourceArn: string, tags: Tag[]): Promise<void> {
    await awsCall("ecs", "TagResource", () => this.client.send(new TagResourceCommand({ resourceArn, tags })));
  }
}
