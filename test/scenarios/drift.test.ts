// Every drift kind, injected into a converged stack through the ordinary API,
// is detected and repaired in the first pass after it appears; the safety
// invariants hold throughout and the operator touches only what it owns.
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeTaskDefinitionCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  TagResourceCommand,
  UpdateServiceCommand,
  UntagResourceCommand,
} from "@aws-sdk/client-ecs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { network } from "../helpers/local.ts";
import { checkedPass, checkInvariants, converge, convergedDemo, ecsWrites, example, operatorHarness, runningTasksOf } from "../helpers/operator.ts";

const kinds = (r: Awaited<ReturnType<typeof checkedPass>>) => r.results[0]!.drifts.map((d) => d.kind);
const actionsOf = (r: Awaited<ReturnType<typeof checkedPass>>) => r.results[0]!.done.map((a) => `${a.kind} ${a.unit}`);

describe("steady state", () => {
  it("a converged stack costs 3 read calls and zero writes per resync", async () => {
    const op = await convergedDemo();
    op.cp.resetCalls();
    for (let i = 0; i < 3; i++) {
      const r = await checkedPass(op);
      expect(r.writes).toEqual([]);
      expect(r.results[0]!.drifts).toEqual([]);
      op.cp.step(3);
    }
    // Per resync: one DescribeParameters page (values only for new versions: none), one DescribeServices (6 names),
    // one ListTasks. The Cloud Map view, exact for the stack, is read again only after DISCOVERY_MAX_AGE_MS.
    expect(op.cp.calls().calls).toEqual({ "ssm.DescribeParameters": 3, "ecs.DescribeServices": 3, "ecs.ListTasks": 3 });
  });
});

describe("compactor guard", () => {
  it("stops a rogue compactor started with RunTask, keeping the service's task", async () => {
    const op = await convergedDemo();
    const td = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "demo-compactor" }))).taskDefinition!;
    const rogue = await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: td.taskDefinitionArn, launchType: "FARGATE", networkConfiguration: network, startedBy: "someone" }));
    op.cp.step(3);
    expect(runningTasksOf(op, "demo-compactor")).toBe(2);
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["ExtraSingletonTask"]);
    expect(ecsWrites(r.writes).map((w) => `${w.action} ${w.target}`)).toEqual([`StopTask ${rogue.tasks![0]!.taskArn}`]);
    op.cp.step(1);
    checkInvariants(op, "demo");
    const kept = Object.values(op.cp.ecs.state.tasks).filter((t) => t.group === "service:demo-compactor" && t.lastStatus === "RUNNING");
    expect(kept).toHaveLength(1);
    await converge(op, "demo");
  });

  it("a second monolithic task is stopped: one Loki per store", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("monolithic"));
    await converge(op, "team-logs");
    await op.ecs.send(new RunTaskCommand({ cluster: "tools", taskDefinition: "team-logs-monolithic", launchType: "FARGATE", networkConfiguration: network }));
    op.cp.step(3);
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["ExtraSingletonTask"]);
    expect(actionsOf(r)).toEqual(["StopTask team-logs-monolithic"]);
    op.cp.step(1);
    checkInvariants(op, "team-logs");
  });

  it("a deleted compactor is not recreated while a rogue one is still stopping", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "demo-compactor", launchType: "FARGATE", networkConfiguration: network }));
    await op.ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "demo-compactor", force: true }));
    op.cp.step(8);
    for (let i = 0; i < 12; i++) {
      await checkedPass(op);
      op.cp.step(1);
      checkInvariants(op, "demo");
    }
    await converge(op, "demo");
    expect(runningTasksOf(op, "demo-compactor")).toBe(1);
  });

  it("the old monolithic task run by hand after the switch to microservices (a second compactor) is a stray: stopped", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("mode: microservices", "mode: monolithic"));
    await converge(op, "demo", 80);
    await op.putSpec(example("demo"));
    await converge(op, "demo", 120);
    const run = await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "demo-monolithic", launchType: "FARGATE", networkConfiguration: network, startedBy: "someone-debugging" }));
    const stray = run.tasks![0]!.taskArn!;
    op.cp.step(3);
    expect(() => checkInvariants(op, "demo")).toThrow("1 compactor and 1 monolithic tasks run at once");
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "StrayTask", unit: "demo-monolithic", task: stray, group: "family:demo-monolithic", startedBy: "someone-debugging" })]);
    expect(ecsWrites(r.writes).map((w) => `${w.action} ${w.target}`)).toEqual([`StopTask ${stray}`]);
    op.cp.step(1);
    checkInvariants(op, "demo");
    await converge(op, "demo");
    expect(runningTasksOf(op, "demo-compactor")).toBe(1);
  });

  it("a compactor scaled to 2 by hand: the extra task stops and desiredCount returns to 1", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-compactor", desiredCount: 2 }));
    op.cp.step(3);
    const r = await checkedPass(op);
    expect(kinds(r).sort()).toEqual(["DesiredCountChanged", "ExtraSingletonTask"]);
    expect(actionsOf(r)).toEqual(["StopTask demo-compactor", "UpdateService demo-compactor"]);
    op.cp.step(1);
    checkInvariants(op, "demo");
    await converge(op, "demo");
    expect(op.cp.ecs.state.services["logging/demo-compactor"]!.desiredCount).toBe(1);
  });

  it("a weakened compactor deployment configuration is restored on its own", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-compactor", deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 } }));
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([
      expect.objectContaining({
        kind: "DeploymentConfigurationWeakened",
        changes: [
          { path: "deploymentConfiguration.maximumPercent", from: 200, to: 100 },
          { path: "deploymentConfiguration.minimumHealthyPercent", from: 100, to: 0 },
        ],
      }),
    ]);
    expect(r.results[0]!.done).toMatchObject([{ kind: "UpdateService", unit: "demo-compactor", fields: ["deploymentConfiguration"] }]);
    expect(op.cp.ecs.state.services["logging/demo-compactor"]!.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
  });
});

describe("ingester ordinals", () => {
  it("an ingester ordinal deleted by hand is not created again by a just-restarted operator while its old task still stops", async () => {
    const op = await convergedDemo();
    const [old] = Object.values(op.cp.ecs.state.tasks).filter((t) => t.group === "service:demo-ingester-0" && t.lastStatus === "RUNNING");
    await op.ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "demo-ingester-0", force: true }));
    op.cp.step(2);
    // ECS: INACTIVE once its task is STOPPING; a new operator has never seen that task run.
    expect(op.cp.ecs.state.services["logging/demo-ingester-0"]!.status).toBe("INACTIVE");
    expect(old!.lastStatus).toBe("STOPPING");
    op.restart();
    const r = await checkedPass(op);
    expect(ecsWrites(r.writes).filter((w) => w.action === "CreateService")).toEqual([]);
    expect(r.results[0]!.deferrals).toContainEqual(expect.objectContaining({ unit: "demo-ingester-0" }));
    for (let i = 0; i < 12; i++) {
      op.cp.step(1);
      const live = Object.values(op.cp.ecs.state.tasks).filter((t) => t.group === "service:demo-ingester-0" && t.lastStatus !== "STOPPED");
      expect(live.length).toBeLessThanOrEqual(1);
      await checkedPass(op);
    }
    await converge(op, "demo");
    expect(old!.lastStatus).toBe("STOPPED");
    expect(runningTasksOf(op, "demo-ingester-0")).toBe(1);
  });

  it("a Spot-interrupted ingester is reported with its stop reason and replaced by ECS, never doubled", async () => {
    const op = await convergedDemo();
    const [task] = Object.values(op.cp.ecs.state.tasks).filter((t) => t.group === "service:demo-ingester-0" && t.lastStatus === "RUNNING");
    op.cp.kill(task!.arn, "SpotInterruption");
    op.cp.step(1);
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toContainEqual(expect.objectContaining({ kind: "UnexpectedTaskReplacement", unit: "demo-ingester-0", stopCode: "SpotInterruption", reason: "Your Spot Task was interrupted." }));
    expect(ecsWrites(r.writes)).toEqual([]);
    await converge(op, "demo");
    expect(runningTasksOf(op, "demo-ingester-0")).toBe(1);
  });

  it("a second task for one ordinal (RunTask of its family) is stopped", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "demo-ingester-0", launchType: "FARGATE", networkConfiguration: network }));
    op.cp.step(3);
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["DuplicateOrdinalTask"]);
    expect(actionsOf(r)).toEqual(["StopTask demo-ingester-0"]);
    op.cp.step(1);
    checkInvariants(op, "demo");
  });
});

describe("out-of-band edits", () => {
  it("a hand-scaled querier is scaled back", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "DesiredCountChanged", unit: "demo-querier", from: 3, to: 1 })]);
    expect(ecsWrites(r.writes).map((w) => `${w.action} ${w.target}`)).toEqual(["UpdateService demo-querier"]);
    await converge(op, "demo");
  });

  it("a deleted service is recreated once it has drained", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "demo-querier", force: true }));
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["MissingService"]);
    expect(r.results[0]!.deferrals).toEqual([{ unit: "demo-querier", reason: expect.stringContaining("draining") }]);
    op.cp.step(6);
    const again = await checkedPass(op);
    expect(actionsOf(again)).toEqual(["CreateService demo-querier"]);
    // The existing revision is reused: nothing registered.
    expect(again.writes.filter((w) => w.action === "RegisterTaskDefinition")).toEqual([]);
    await converge(op, "demo");
  });

  it("a service switched to another revision goes back to the desired one without registering anything", async () => {
    const op = await convergedDemo();
    const current = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "demo-querier", include: ["TAGS"] })));
    const hacked = { ...current.taskDefinition!, containerDefinitions: current.taskDefinition!.containerDefinitions!.map((c) => (c.name === "loki" ? { ...c, image: "grafana/loki:3.4.0" } : c)) };
    const reg = await op.ecs.send(new RegisterTaskDefinitionCommand({ family: hacked.family, containerDefinitions: hacked.containerDefinitions, cpu: hacked.cpu, memory: hacked.memory, networkMode: hacked.networkMode, requiresCompatibilities: hacked.requiresCompatibilities, executionRoleArn: hacked.executionRoleArn, taskRoleArn: hacked.taskRoleArn, volumes: hacked.volumes, tags: current.tags }));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", taskDefinition: reg.taskDefinition!.taskDefinitionArn }));
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "TaskDefinitionChanged", unit: "demo-querier", changes: [{ path: "containerDefinitions[loki].image", from: "grafana/loki:3.4.0", to: "grafana/loki:3.5.0" }] })]);
    expect(ecsWrites(r.writes).map((w) => w.action)).toEqual(["UpdateService"]);
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.taskDefinition).toBe(current.taskDefinition!.taskDefinitionArn);
    await converge(op, "demo");
  });

  it("an edited config parameter is restored", async () => {
    const op = await convergedDemo();
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/config/demo-querier", Value: "auth_enabled: true\n", Overwrite: true }));
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["ConfigChanged"]);
    // The repair, then the status that records the drift.
    expect(r.writes.map((w) => `${w.action} ${w.target}`)).toEqual(["PutParameter /lokistack/demo/config/demo-querier", "PutParameter /lokistack/demo/status"]);
  });

  it("ownership tag drift is repaired; foreign tags are left alone", async () => {
    const op = await convergedDemo();
    const arn = op.cp.ecs.state.services["logging/demo-distributor"]!.arn;
    await op.ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: "lokistack.io/component", value: "querier" }, { key: "team", value: "obs" }] }));
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["TagDrift"]);
    expect(actionsOf(r)).toEqual(["TagResource demo-distributor"]);
    expect(op.cp.ecs.state.services["logging/demo-distributor"]!.tags).toContainEqual({ key: "team", value: "obs" });
    expect(op.cp.ecs.state.services["logging/demo-distributor"]!.tags).toContainEqual({ key: "lokistack.io/component", value: "distributor" });
  });

  it("a service whose ownership tag was removed is no longer touched", async () => {
    const op = await convergedDemo();
    const arn = op.cp.ecs.state.services["logging/demo-querier"]!.arn;
    await op.ecs.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["lokistack.io/managed-by"] }));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 4 }));
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["NameCollision"]);
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(r.results[0]!.status!.conditions.find((c) => c.type === "Degraded")).toMatchObject({ status: "True", reason: "ResourceNotOwned" });
  });
});

describe("service discovery", () => {
  it("every unit gets its Cloud Map service and registers its tasks there", async () => {
    const op = await convergedDemo();
    const services = Object.values(op.cp.discovery.state.services);
    expect(services.map((s) => s.name).sort()).toEqual(["demo-compactor", "demo-distributor", "demo-index-gateway", "demo-ingester-0", "demo-querier", "demo-query-frontend"]);
    expect(services.every((s) => s.tags.some((t) => t.Key === "lokistack.io/managed-by"))).toBe(true);
    for (const s of services) {
      expect(op.cp.ecs.state.services[`logging/${s.name}`]!.serviceRegistries).toEqual([{ registryArn: s.arn }]);
      expect(op.cp.ecs.instancesOf(s.arn)).toHaveLength(1);
    }
  });

  it("a service whose registry was removed by hand registers again", async () => {
    const op = await convergedDemo();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", serviceRegistries: [] }));
    const r = await checkedPass(op);
    expect(kinds(r)).toEqual(["ServiceDiscoveryMissing"]);
    expect(r.results[0]!.done).toMatchObject([{ kind: "UpdateService", unit: "demo-querier", fields: ["serviceRegistries"] }]);
    await converge(op, "demo");
  });

  it("without its Cloud Map namespace a stack builds nothing and says why", async () => {
    const op = await operatorHarness();
    await op.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: example("demo").replace("namespace: loki.internal", "namespace: missing.internal"), Type: "String" }));
    const r = await checkedPass(op);
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(r.results[0]!.outcome).toMatchObject({ kind: "degraded", reason: "NamespaceNotFound", message: expect.stringContaining("Cloud Map namespace 'missing.internal' not found") });
    expect(r.results[0]!.drifts).toEqual([]);
    expect(r.results[0]!.status!.conditions.find((c) => c.type === "Degraded")).toMatchObject({ status: "True", reason: "NamespaceNotFound", message: expect.stringContaining("missing.internal") });
  });
});

describe("name collisions", () => {
  it("the tasks of a foreign service with a compactor's name are never stopped", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    await op.ecs.send(new RegisterTaskDefinitionCommand({ family: "someone-else", networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "256", memory: "512", containerDefinitions: [{ name: "app", image: "nginx" }] }));
    await op.ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "demo-compactor", taskDefinition: "someone-else", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network }));
    op.cp.step(4);
    for (let i = 0; i < 5; i++) {
      const r = await checkedPass(op);
      expect(r.writes.filter((w) => w.action === "StopTask")).toEqual([]);
      expect(r.results[0]!.drifts.filter((d) => d.unit === "demo-compactor").map((d) => d.kind)).toEqual(["NameCollision"]);
      op.cp.step(4);
    }
  });

  it("a pre-existing service with a stack's name is reported and never modified", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    await op.ecs.send(new RegisterTaskDefinitionCommand({ family: "someone-else", networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "256", memory: "512", containerDefinitions: [{ name: "app", image: "nginx" }] }));
    await op.ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "demo-querier", taskDefinition: "someone-else", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network }));
    for (let i = 0; i < 10; i++) {
      const r = await checkedPass(op);
      expect(r.writes.filter((w) => w.target.endsWith("demo-querier") && w.service === "ecs")).toEqual([]);
      op.cp.step(4);
    }
    const svc = op.cp.ecs.state.services["logging/demo-querier"]!;
    expect(svc.desiredCount).toBe(2);
    expect(svc.taskDefinition).toMatch(/someone-else:1$/);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "drift", drift: "NameCollision", unit: "demo-querier" }));
  });
});
