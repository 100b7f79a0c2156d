// Policies, invalid specs, deletion, ingester ordinals, secrets and throttling.
import { DeleteServiceCommand, RunTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { network } from "../helpers/local.ts";
import { checkedPass, checkInvariants, condition, converge, convergedDemo, convergedExample, ecsWrites, example, operatorHarness, status } from "../helpers/operator.ts";


describe("drift.policy report and spec.suspend", () => {
  it.each([
    ["report", (t: string) => t.replace("drift: { policy: repair }", "drift: { policy: report }"), "drift policy report"],
    ["suspend", (t: string) => t.replace("drift: { policy: repair }", "drift: { policy: repair }\n  suspend: true"), "suspended"],
  ])("%s: drifts are logged, nothing in ECS changes", async (_name, edit, reason) => {
    const op = await convergedDemo();
    await op.putSpec(edit(example("demo")));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    await op.ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "demo-distributor", force: true }));
    for (let i = 0; i < 3; i++) {
      const r = await checkedPass(op);
      expect(ecsWrites(r.writes)).toEqual([]);
      expect(r.results[0]!.drifts.map((d) => d.kind).sort()).toEqual(["DesiredCountChanged", "MissingService"]);
      op.cp.step(5);
    }
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "action", action: "UpdateService", unit: "demo-querier", result: "skipped" }));
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.desiredCount).toBe(3);
    expect(condition(await status(op, "demo"), "Degraded")).toMatchObject({ status: "True", reason: "DriftNotRepaired", message: expect.stringContaining(reason) });
  });
});

describe("invalid specs", () => {
  it("change nothing in ECS, say why in status, and the stack keeps converging to its last valid generation", async () => {
    const op = await convergedDemo();
    await op.putSpec(example("demo").replace("drift: { policy: repair }", "template: { compactor: { replicas: 2 } }"));
    const invalid = await checkedPass(op);
    expect(ecsWrites(invalid.writes)).toEqual([]);
    expect(invalid.writes.map((w) => w.target)).toEqual(["/lokistack/demo/status"]);
    const s = await status(op, "demo");
    expect(s).toMatchObject({ observedGeneration: 2, appliedGeneration: 1 });
    expect(condition(s, "InvalidSpec")).toMatchObject({ status: "True", message: expect.stringContaining("spec.template.compactor.replicas: must be 1") });
    // Drift is still repaired, towards generation 1.
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    const repaired = await checkedPass(op);
    expect(ecsWrites(repaired.writes).map((w) => `${w.action} ${w.target}`)).toEqual(["UpdateService demo-querier"]);
    expect(op.cp.ecs.state.services["logging/demo-compactor"]!.desiredCount).toBe(1);
  });

  it("a first spec that is invalid creates nothing", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("size: 1x.demo", "size: 1x.huge"));
    const r = await checkedPass(op);
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(r.results[0]!.mode).toBe("invalid");
    expect(condition(await status(op, "demo"), "InvalidSpec")?.message).toContain("spec.size: must be one of");
  });

  it("refuses to rewrite a schema that is already in effect", async () => {
    const op = await convergedDemo();
    await op.putSpec(example("demo").replace('{ from: "2024-01-01", version: v13 }', '{ from: "2024-01-01", version: v13 }\n    - { from: "2025-06-01", version: v13 }'));
    const r = await checkedPass(op);
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(r.results[0]!.errors).toEqual([expect.objectContaining({ path: "spec.schemas[1].from", message: expect.stringContaining("must start in the future") })]);
    await op.putSpec(example("demo").replace('{ from: "2024-01-01", version: v13 }', '{ from: "2024-01-01", version: v13 }\n    - { from: "2027-01-01", version: v13 }'));
    const ok = await checkedPass(op);
    expect(ok.results[0]!.errors).toEqual([]);
  });
});

describe("deleting the spec", () => {
  it("deletionPolicy retain leaves the services and says so", async () => {
    const op = await convergedDemo();
    await op.deleteSpec("demo");
    const r = await checkedPass(op);
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(r.writes.map((w) => `${w.action} ${w.target}`)).toEqual(["DeleteParameter /lokistack/demo/status"]);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "stack.deleted", deletionPolicy: "retain", retained: expect.arrayContaining(["demo-compactor"]) }));
    expect(Object.values(op.cp.ecs.state.services).filter((s) => s.status === "ACTIVE")).toHaveLength(6);
  });

  it("deletionPolicy delete scales down and deletes every owned service, then its parameters", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("drift: { policy: repair }", "deletionPolicy: delete"));
    await converge(op, "demo");
    await op.deleteSpec("demo");
    // One tick a pass: ECS makes a service INACTIVE once its tasks are STOPPING, before they
    // have stopped; the stack is only gone (its status deleted) when no task of it is left.
    const live = () => Object.values(op.cp.ecs.state.tasks).filter((t) => t.lastStatus !== "STOPPED").map((t) => `${t.group} ${t.lastStatus}`);
    const waits: string[] = [];
    for (let i = 0; i < 80 && Object.keys(op.cp.ssm.state.parameters).length > 0; i++) {
      const r = await checkedPass(op);
      waits.push(...r.results[0]!.deferrals.filter((d) => d.unit === "demo").map((d) => d.reason));
      if (op.cp.ssm.state.parameters["/lokistack/demo/status"] === undefined) expect(live()).toEqual([]);
      op.cp.step(1);
      checkInvariants(op, "demo");
    }
    expect(Object.values(op.cp.ecs.state.services).map((s) => s.status).every((s) => s !== "ACTIVE")).toBe(true);
    // Its services were INACTIVE while their tasks still stopped: the status said what it waited for.
    expect(waits).toContainEqual(expect.stringMatching(/^the status is deleted once the stack's last tasks have stopped: demo-\S+ (STOPPING|DEPROVISIONING)/));
    expect(Object.keys(op.cp.ssm.state.parameters)).toEqual([]);
    expect(Object.values(op.cp.discovery.state.services)).toEqual([]);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "stack.deleted", deletionPolicy: "delete" }));
  });

  it("deletionPolicy delete stops the stack's tasks that no service started, before its status goes", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("drift: { policy: repair }", "deletionPolicy: delete"));
    await converge(op, "demo");
    const run = await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "demo-querier", launchType: "FARGATE", networkConfiguration: network, startedBy: "someone-debugging" }));
    const stray = op.cp.ecs.state.tasks[run.tasks![0]!.taskArn!]!;
    op.cp.step(3);
    await op.deleteSpec("demo");
    const stops: string[] = [];
    for (let i = 0; i < 60 && op.cp.ssm.state.parameters["/lokistack/demo/status"]; i++) {
      const r = await checkedPass(op);
      stops.push(...ecsWrites(r.writes).filter((w) => w.action === "StopTask").map((w) => w.target));
      if (!op.cp.ssm.state.parameters["/lokistack/demo/status"]) expect(stray.lastStatus).toBe("STOPPED");
      op.cp.step(1);
    }
    expect(stops).toEqual([stray.arn]);
    expect(stray).toMatchObject({ lastStatus: "STOPPED", stoppedReason: "lokistack: demo-querier is no longer part of the stack" });
    expect(op.cp.ssm.state.parameters["/lokistack/demo/status"]).toBeUndefined();
  });
});

describe("ingester ordinals in a 1x.small stack", () => {
  const convergedSmall = () => convergedExample("small", {}, 80);

  it("creates ordinals one at a time, each after the previous one is running", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("small"));
    const created: string[][] = [];
    for (let i = 0; i < 40; i++) {
      const r = await checkedPass(op);
      created.push(r.writes.filter((w) => w.service === "ecs" && w.action === "CreateService" && /ingester/.test(w.target)).map((w) => w.target));
      op.cp.step(4);
    }
    expect(created.filter((c) => c.length > 0)).toEqual([["prod-logs-ingester-0"], ["prod-logs-ingester-1"], ["prod-logs-ingester-2"]]);
  });

  it("rolls a new image out one ordinal at a time, highest first, only when the others are healthy", async () => {
    const op = await convergedSmall();
    await op.putSpec(example("small").replace("grafana/loki:3.5.0", "grafana/loki:3.5.1"));
    const order: string[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await checkedPass(op);
      const ingesterUpdates = r.writes.filter((w) => w.action === "UpdateService" && /ingester/.test(w.target));
      expect(ingesterUpdates.length).toBeLessThanOrEqual(1);
      order.push(...ingesterUpdates.map((w) => w.target));
      for (let t = 0; t < 2; t++) {
        op.cp.step(1);
        checkInvariants(op, "prod-logs");
      }
      if (r.results[0]!.status?.conditions.find((c) => c.type === "Ready")?.status === "True" && r.results[0]!.drifts.length === 0) break;
    }
    expect(order).toEqual(["prod-logs-ingester-2", "prod-logs-ingester-1", "prod-logs-ingester-0"]);
  });

  it("scales down from the highest ordinal, to 0 first, then deletes the service", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("small").replace("querier: { replicas: 3", "ingester: { replicas: 4 }\n    querier: { replicas: 3"));
    await converge(op, "prod-logs", 80);
    await op.putSpec(example("small"));
    const steps: string[] = [];
    for (let i = 0; i < 20; i++) {
      const r = await checkedPass(op);
      steps.push(...ecsWrites(r.writes).map((w) => `${w.action} ${w.target}`));
      op.cp.step(4);
      if (steps.includes("DeleteService prod-logs-ingester-3")) break;
    }
    expect(steps).toEqual(["UpdateService prod-logs-ingester-3", "DeleteService prod-logs-ingester-3"]);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "drift", drift: "OrphanedService", unit: "prod-logs-ingester-3" }));
  });

  it("autoscaling owns the querier count within its range, and only outside it is drift", async () => {
    const op = await convergedSmall();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-querier", desiredCount: 6 }));
    expect((await checkedPass(op)).results[0]!.drifts).toEqual([]);
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-querier", desiredCount: 12 }));
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "DesiredCountChanged", from: 12, to: 8, range: { min: 2, max: 8 } })]);
    expect(op.cp.ecs.state.services["logging/prod-logs-querier"]!.desiredCount).toBe(8);
  });
});

describe("secrets", () => {
  it("a SecureString spec's content never reaches the logs", async () => {
    const op = await operatorHarness();
    const canary = "canary-9f8e7d6c";
    await op.putSpec(example("demo").replace("drift: { policy: repair }", `template: { querier: { env: { API_TOKEN: ${canary} } } }`), "demo", "SecureString");
    await converge(op, "demo");
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 2 }));
    await checkedPass(op);
    expect(op.logs.length).toBeGreaterThan(20);
    expect(JSON.stringify(op.logs)).not.toContain(canary);
  });
});

describe("throttling", () => {
  it("with 30% of ECS calls throttled a 1x.small stack converges, and the pass after makes zero writes", async () => {
    const op = await operatorHarness({ attempts: 10 });
    await op.putSpec(example("small"));
    op.cp.faults.update({ throttle: { "ecs.*": 0.3 } });
    await converge(op, "prod-logs", 120);
    const throttled = Object.entries(op.cp.calls().errors).filter(([k]) => k.endsWith("ThrottlingException")).length;
    expect(throttled).toBeGreaterThan(0);
    const after = await checkedPass(op);
    expect(after.writes.filter((w) => w.ok)).toEqual([]);
  });
});

describe("an invalid spec whose last valid generation is gone", () => {
  it("plans nothing at all: no owned service ever looks orphaned", async () => {
    const op = await convergedDemo();
    // 100 more versions push generation 1 out of SSM's history.
    for (let i = 0; i < 100; i++) await op.putSpec(example("demo").replace("size: 1x.demo", "size: 1x.huge"));
    const r = await checkedPass(op);
    expect(r.results[0]).toMatchObject({ mode: "invalid", planned: [], drifts: [] });
    expect(ecsWrites(r.writes)).toEqual([]);
    expect(op.logs.filter((l) => l.event === "action")).not.toContainEqual(expect.objectContaining({ action: "DeleteService" }));
  });
});
