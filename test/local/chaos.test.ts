// Faults, rate limits, accounting, the admin API and saved state.
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DescribeServicesCommand,
  ListServicesCommand,
  RegisterTaskDefinitionCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import { GetParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { Faults } from "../../src/local/faults.ts";
import { harness, network, rejection, taskDefinitionInput } from "../helpers/local.ts";


describe("throttling", () => {
  it("with 30% of calls throttled, the SDK's retries complete every call, and each retry is counted", async () => {
    const { ecs, ssm, cp } = await harness({ attempts: 20 });
    cp.faults.update({ throttle: { "*": 0.3 } });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    for (let i = 0; i < 20; i++) {
      await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: `s${i}`, taskDefinition: "app", desiredCount: 0, launchType: "FARGATE", networkConfiguration: network }));
      await ssm.send(new PutParameterCommand({ Name: `/p/${i}`, Value: String(i), Type: "String" }));
    }
    const logical = 2 + 20 + 20;
    const counts = cp.calls();
    const throttled = Object.entries(counts.errors)
      .filter(([k]) => k.endsWith(":ThrottlingException"))
      .reduce((n, [, v]) => n + v, 0);
    expect(throttled).toBeGreaterThan(0);
    expect(counts.total).toBe(logical + throttled);
    expect(counts.calls["ecs.CreateService"]).toBe(20 + (counts.errors["ecs.CreateService:ThrottlingException"] ?? 0));
    cp.faults.reset();
    const listed = await ecs.send(new ListServicesCommand({ cluster: "logging", maxResults: 100 }));
    expect(listed.serviceArns).toHaveLength(20);
  });

  it("without retries a throttled call surfaces as ThrottlingException", async () => {
    const { ecs, cp } = await harness();
    cp.faults.update({ throttle: { "ecs.ListClusters": 1 } });
    expect((await rejection(ecs.send(new ListServicesCommand({ cluster: "x" })))).name).toBe("ClusterNotFoundException");
    cp.faults.update({ throttle: { "ecs.*": 1 } });
    const err = await rejection(ecs.send(new ListServicesCommand({ cluster: "x" })));
    expect(err.name).toBe("ThrottlingException");
    expect(err.message).toBe("Rate exceeded");
  });

  it("enforces ECS's service-modify bucket (burst 50) when real rate limits are on", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "s", taskDefinition: "app", desiredCount: 0, launchType: "FARGATE", networkConfiguration: network }));
    cp.faults.update({ rateLimits: true });
    const results = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) => ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "s", desiredCount: i % 2 }))),
    );
    const throttled = results.filter((r) => r.status === "rejected" && (r.reason as Error).name === "ThrottlingException").length;
    // 50 from the burst, plus whatever refilled at 5/s while the 60 were in flight.
    expect(throttled).toBeGreaterThan(0);
    expect(throttled).toBeLessThanOrEqual(10);
    // Reads have their own bucket.
    await ecs.send(new DescribeServicesCommand({ cluster: "logging", services: ["s"] }));
  });
});

describe("token buckets", () => {
  it("refill at the documented rate, on a clock the test controls", () => {
    let now = 0;
    const faults = new Faults(() => 0.99, () => now);
    faults.update({ rateLimits: true });
    const take = (n: number, action: string) =>
      Array.from({ length: n }, () => faults.check("ecs", action)).filter((e) => e?.code === "ThrottlingException").length;
    expect(take(20, "RegisterTaskDefinition")).toBe(0);
    expect(take(1, "RegisterTaskDefinition")).toBe(1);
    now += 3000;
    expect(take(4, "RegisterTaskDefinition")).toBe(1);
    expect(take(50, "UpdateService")).toBe(0);
    expect(take(1, "CreateService")).toBe(1);
    expect(take(5, "DescribeServices")).toBe(0);
    expect(take(5, "GetParameter")).toBe(0);
  });
});

describe("other faults", () => {
  it("answers a 5xx by service, and SSM's TooManyUpdates when asked", async () => {
    const { ecs, ssm, cp } = await harness();
    cp.faults.update({ serverError: { "ecs.*": 1 } });
    expect((await rejection(ecs.send(new ListServicesCommand({})))).name).toBe("ServerException");
    cp.faults.update({ serverError: {}, errors: [{ match: "ssm.PutParameter", rate: 1, code: "TooManyUpdates", status: 400 }] });
    expect((await rejection(ssm.send(new PutParameterCommand({ Name: "/a", Value: "x", Type: "String" })))).name).toBe("TooManyUpdates");
    expect((await rejection(ssm.send(new GetParameterCommand({ Name: "/a" })))).name).toBe("ParameterNotFound");
  });
});

describe("admin API under /_local/", () => {
  it("reports calls, sets faults, kills tasks and steps the scheduler", async () => {
    const { ecs, cp } = await harness({ paused: true });
    const admin = (path: string, body?: unknown) =>
      fetch(`${cp.endpoint}/_local/${path}`, body === undefined ? {} : { method: "POST", body: JSON.stringify(body) }).then((r) => r.json());
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "s", taskDefinition: "app", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network }));
    expect(await admin("calls")).toMatchObject({ calls: { "ecs.CreateCluster": 1, "ecs.RegisterTaskDefinition": 1, "ecs.CreateService": 1 }, total: 3 });
    await admin("scheduler", { ticks: 5 });
    const [task] = Object.values(cp.ecs.state.tasks);
    expect(task!.lastStatus).toBe("RUNNING");
    expect(await admin("kill", { taskArn: task!.arn, stopCode: "EssentialContainerExited" })).toMatchObject({ stopCode: "EssentialContainerExited", stoppedReason: "Essential container in task exited" });
    expect(await admin("faults", { latencyMs: 1, throttle: { "ssm.*": 0.5 } })).toMatchObject({ latencyMs: 1, throttle: { "ssm.*": 0.5 } });
    expect(await admin("calls/reset", {})).toEqual({ calls: {}, errors: {}, total: 0 });
    expect(await admin("health")).toMatchObject({ ok: true, paused: true });
  });
});

describe("saved state", () => {
  it("survives a stop and a start from the same file", async () => {
    const dir = mkdtempSync(join(tmpdir(), "lokistack-state-"));
    const statePath = join(dir, "state.json");
    const first = await harness({ statePath });
    await first.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: "kept", Type: "String" }));
    await first.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await first.cp.stop();
    expect(existsSync(statePath)).toBe(true);
    const second = await harness({ statePath });
    expect((await second.ssm.send(new GetParameterCommand({ Name: "/lokistack/demo/spec" }))).Parameter!.Value).toBe("kept");
    expect(Object.keys(second.cp.ecs.state.clusters)).toEqual(["logging"]);
  });
});
