// ECS scheduler semantics, driven tick by tick and observed only through the SDK.
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  DescribeTasksCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  UpdateServiceCommand,
  type ECSClient,
  type Task,
} from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { harness, network, taskDefinitionInput } from "../helpers/local.ts";

/** Every task of the service ECS still knows, running or stopped. */
async function serviceTasks(ecs: ECSClient, service: string): Promise<Task[]> {
  const arns: string[] = [];
  for (const desiredStatus of ["RUNNING", "STOPPED"] as const) {
    arns.push(...((await ecs.send(new ListTasksCommand({ cluster: "logging", serviceName: service, desiredStatus }))).taskArns ?? []));
  }
  if (arns.length === 0) return [];
  return (await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: arns }))).tasks ?? [];
}

const notStopped = (ts: Task[]) => ts.filter((t) => t.lastStatus !== "STOPPED");
const running = (ts: Task[]) => ts.filter((t) => t.lastStatus === "RUNNING" && t.desiredStatus === "RUNNING");

async function setup(opts: { min: number; max: number; desired?: number; healthCheck?: boolean }) {
  const h = await harness({ paused: true });
  await h.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
  await h.ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app", { healthCheck: opts.healthCheck })));
  await h.ecs.send(
    new CreateServiceCommand({
      cluster: "logging",
      serviceName: "svc",
      taskDefinition: "app",
      desiredCount: opts.desired ?? 1,
      launchType: "FARGATE",
      networkConfiguration: network,
      deploymentConfiguration: { minimumHealthyPercent: opts.min, maximumPercent: opts.max },
    }),
  );
  h.cp.step(8);
  return h;
}

async function primary(ecs: ECSClient) {
  const s = (await ecs.send(new DescribeServicesCommand({ cluster: "logging", services: ["svc"] }))).services![0]!;
  return { service: s, deployment: s.deployments!.find((d) => d.status === "PRIMARY")! };
}

describe("deployments", () => {
  it("0/100 stops the old task before the new one starts: never two at once", async () => {
    const { ecs, cp } = await setup({ min: 0, max: 100, healthCheck: true });
    const before = running(await serviceTasks(ecs, "svc"));
    expect(before).toHaveLength(1);
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app", { image: "grafana/loki:3.5.1", healthCheck: true })));
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", taskDefinition: "app:2" }));
    let maxAlive = 0;
    for (let tick = 0; tick < 20; tick++) {
      cp.step(1);
      maxAlive = Math.max(maxAlive, notStopped(await serviceTasks(ecs, "svc")).length);
    }
    expect(maxAlive).toBe(1);
    const after = running(await serviceTasks(ecs, "svc"));
    expect(after.map((t) => t.taskDefinitionArn)).toEqual(["arn:aws:ecs:us-east-1:123456789012:task-definition/app:2"]);
    expect(after[0]!.taskArn).not.toBe(before[0]!.taskArn);
    const { service, deployment } = await primary(ecs);
    expect(deployment.rolloutState).toBe("COMPLETED");
    expect(service.deployments).toHaveLength(1);
    expect(service.events!.map((e) => e.message)).toContainEqual("(service svc) has reached a steady state.");
  });

  it("100/200 starts the new task first and stops the old one once the new one is healthy", async () => {
    const { ecs, cp } = await setup({ min: 100, max: 200, healthCheck: true });
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app", { image: "grafana/loki:3.5.1", healthCheck: true })));
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", taskDefinition: "app:2" }));
    let overlapped = false;
    let minRunning = Infinity;
    for (let tick = 0; tick < 20; tick++) {
      cp.step(1);
      const tasks = await serviceTasks(ecs, "svc");
      if (running(tasks).length === 2) overlapped = true;
      minRunning = Math.min(minRunning, tasks.filter((t) => t.lastStatus === "RUNNING").length);
    }
    expect(overlapped).toBe(true);
    expect(minRunning).toBeGreaterThanOrEqual(1);
    expect(running(await serviceTasks(ecs, "svc")).map((t) => t.taskDefinitionArn!.endsWith(":2"))).toEqual([true]);
  });

  it("forceNewDeployment replaces tasks without a new revision", async () => {
    const { ecs, cp } = await setup({ min: 0, max: 100 });
    const before = running(await serviceTasks(ecs, "svc"))[0]!.taskArn;
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", forceNewDeployment: true }));
    cp.step(10);
    const after = running(await serviceTasks(ecs, "svc"));
    expect(after).toHaveLength(1);
    expect(after[0]!.taskArn).not.toBe(before);
  });

  it("desiredCount changes converge up and down without a new deployment", async () => {
    const { ecs, cp } = await setup({ min: 100, max: 200 });
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", desiredCount: 3 }));
    cp.step(6);
    expect(running(await serviceTasks(ecs, "svc"))).toHaveLength(3);
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", desiredCount: 1 }));
    cp.step(6);
    expect(running(await serviceTasks(ecs, "svc"))).toHaveLength(1);
    const stopped = (await serviceTasks(ecs, "svc")).filter((t) => t.lastStatus === "STOPPED");
    expect(stopped.map((t) => t.stopCode)).toEqual(["ServiceSchedulerInitiated", "ServiceSchedulerInitiated"]);
    const { service } = await primary(ecs);
    expect(service).toMatchObject({ desiredCount: 1, runningCount: 1, pendingCount: 0 });
    expect(service.deployments).toHaveLength(1);
  });
});

describe("task lifecycle", () => {
  it("walks PROVISIONING → PENDING → RUNNING → HEALTHY with timestamps and the service's identity", async () => {
    const { ecs, cp } = await setup({ min: 0, max: 100, healthCheck: true, desired: 0 });
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "svc", desiredCount: 1 }));
    const seen: string[] = [];
    for (let i = 0; i < 6; i++) {
      cp.step(1);
      const [t] = notStopped(await serviceTasks(ecs, "svc"));
      const label = `${t!.lastStatus}/${t!.healthStatus}`;
      if (seen.at(-1) !== label) seen.push(label);
    }
    expect(seen).toEqual(["PROVISIONING/UNKNOWN", "PENDING/UNKNOWN", "RUNNING/UNKNOWN", "RUNNING/HEALTHY"]);
    const [t] = running(await serviceTasks(ecs, "svc"));
    const { deployment } = await primary(ecs);
    expect(t).toMatchObject({ group: "service:svc", startedBy: deployment.id, launchType: "FARGATE" });
    expect(t!.startedAt).toBeInstanceOf(Date);
  });

  it("replaces a killed service task with a new ARN; the stopped one keeps its stopCode", async () => {
    const { ecs, cp } = await setup({ min: 0, max: 100 });
    const [victim] = running(await serviceTasks(ecs, "svc"));
    cp.kill(victim!.taskArn!, "SpotInterruption");
    let maxAlive = 0;
    for (let i = 0; i < 10; i++) {
      cp.step(1);
      maxAlive = Math.max(maxAlive, notStopped(await serviceTasks(ecs, "svc")).length);
    }
    expect(maxAlive).toBe(1);
    const tasks = await serviceTasks(ecs, "svc");
    const stopped = tasks.find((t) => t.taskArn === victim!.taskArn)!;
    expect(stopped).toMatchObject({ lastStatus: "STOPPED", stopCode: "SpotInterruption", stoppedReason: "Your Spot Task was interrupted." });
    const [replacement] = running(tasks);
    expect(replacement!.taskArn).not.toBe(victim!.taskArn);
  });

  it("keeps a RunTask task outside any service running until it is stopped", async () => {
    const { ecs, cp } = await setup({ min: 0, max: 100 });
    const run = await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "app", launchType: "FARGATE", networkConfiguration: network }));
    cp.step(50);
    const t = (await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: [run.tasks![0]!.taskArn!] }))).tasks![0]!;
    expect(t).toMatchObject({ lastStatus: "RUNNING", desiredStatus: "RUNNING", group: "family:app" });
    expect(running(await serviceTasks(ecs, "svc"))).toHaveLength(1);
  });

  it("ticks on its own when not paused", async () => {
    const h = await harness();
    await h.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await h.ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    await h.ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "svc", taskDefinition: "app", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network }));
    for (let i = 0; i < 400; i++) {
      if (running(await serviceTasks(h.ecs, "svc")).length === 2) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(running(await serviceTasks(h.ecs, "svc"))).toHaveLength(2);
  });
});
