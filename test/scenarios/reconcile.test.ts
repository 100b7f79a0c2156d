// The findings of issue 8, one scenario each, through the real SDK against the
// local control plane: each stack reconciled on its own, safety first under
// throttling, no race on singletons, ordinal scale-down of any size, no
// duplicate revisions after a restart, stale revisions recognized as ECS says
// them, cleanup through plan and execute, field-level drift, truthful status,
// and a spec watch that forgets deleted stacks.
import { DeregisterTaskDefinitionCommand, DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, RunTaskCommand, UpdateServiceCommand, type ContainerDefinition, type RegisterTaskDefinitionCommandInput } from "@aws-sdk/client-ecs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { DISCOVERY_MAX_AGE_MS } from "../../src/controllers/reconciler.ts";
import { statusCommand } from "../../src/runtime/commands.ts";
import { cli } from "../helpers/cli.ts";
import { network } from "../helpers/local.ts";
import { checkedPass, checkInvariants, condition, converge, convergedDemo, convergedExample, example, operatorHarness, passUntil, status, type OperatorHarness } from "../helpers/operator.ts";

const activeServices = (op: OperatorHarness, prefix: string) => Object.values(op.cp.ecs.state.services).filter((s) => s.name.startsWith(prefix) && s.status !== "INACTIVE").map((s) => s.name);
const registries = (op: OperatorHarness, prefix: string) => Object.values(op.cp.discovery.state.services).filter((s) => s.name.startsWith(prefix)).map((s) => s.name);
const parameters = (op: OperatorHarness, prefix: string) => Object.keys(op.cp.ssm.state.parameters).filter((n) => n.startsWith(prefix));

/** Registers a copy of the family's current revision with the loki container edited: an out-of-band revision. */
async function registerEdited(op: OperatorHarness, family: string, edit: (c: ContainerDefinition) => ContainerDefinition, extra: ContainerDefinition[] = []): Promise<{ original: string; edited: string }> {
  const td = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: family }))).taskDefinition!;
  const input: RegisterTaskDefinitionCommandInput = {
    family,
    networkMode: td.networkMode!,
    requiresCompatibilities: td.requiresCompatibilities!,
    cpu: td.cpu!,
    memory: td.memory!,
    executionRoleArn: td.executionRoleArn!,
    taskRoleArn: td.taskRoleArn!,
    volumes: td.volumes!,
    containerDefinitions: [...td.containerDefinitions!.map((c) => (c.name === "loki" ? edit(c) : c)), ...extra],
  };
  return { original: td.taskDefinitionArn!, edited: (await op.ecs.send(new RegisterTaskDefinitionCommand(input))).taskDefinition!.taskDefinitionArn! };
}

describe("1. one stack's missing cluster never stops another's repair", () => {
  it("the healthy stack's drift is repaired in the first resync; the broken one is Degraded ClusterNotFound, logged once", async () => {
    const op = await convergedDemo();
    // A second stack on a cluster nobody created (putSpec would create it: write the parameter directly).
    const broken = example("demo").replace("name: demo", "name: broken").replace("cluster: logging", "cluster: nowhere");
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/broken/spec", Value: broken, Type: "String" }));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));

    const first = await checkedPass(op);
    const demo = first.results.find((r) => r.name === "demo")!;
    expect(demo.done.map((a) => `${a.kind} ${a.unit}`)).toContain("UpdateService demo-querier");
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.desiredCount).toBe(1);
    const b = first.results.find((r) => r.name === "broken")!;
    expect(b.outcome).toMatchObject({ kind: "degraded", reason: "ClusterNotFound", message: expect.stringContaining("'nowhere'") });
    expect(b.drifts).toEqual([]);
    expect(condition(await status(op, "broken"), "Degraded")).toMatchObject({ status: "True", reason: "ClusterNotFound" });

    op.cp.resetCalls();
    for (let i = 0; i < 3; i++) await checkedPass(op);
    expect(op.logs.filter((l) => l.event === "degraded" && l.stack === "broken")).toHaveLength(1);
    // One failed read of the missing cluster per resync, however many stacks or guard rounds need it.
    expect(op.cp.calls().errors).toEqual({ "ecs.ListTasks:ClusterNotFoundException": 3 });

    const plan = await cli("plan", "--endpoint", op.cp.endpoint);
    expect(plan.code).toBe(1);
    expect(plan.stdout).toContain("Degraded (ClusterNotFound): ECS cluster 'nowhere' not found");
    expect(plan.stderr).not.toMatch(/\bat .*\.ts:\d+/);
  });
});

describe("2. safety first under throttling", () => {
  it.each([1, 7, 42, 1234])("with 50%% of ECS calls throttled (fault seed %i), a rogue compactor and a duplicate ordinal task are stopped within two resyncs", async (seed) => {
    // Two SDK attempts: as when the SDK's retry quota has drained under sustained throttling; the guard's own rounds must do the work.
    const op = await convergedDemo({ attempts: 2, seed });
    const compactor = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "demo-compactor" }))).taskDefinition!.taskDefinitionArn!;
    const resyncsNeeded: number[] = [];
    for (let round = 0; round < 5; round++) {
      op.cp.faults.reset();
      const rogue = (await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: compactor, launchType: "FARGATE", networkConfiguration: network, startedBy: "someone" }))).tasks![0]!.taskArn!;
      const duplicate = (await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "demo-ingester-0", launchType: "FARGATE", networkConfiguration: network }))).tasks![0]!.taskArn!;
      op.cp.step(2);
      op.cp.faults.update({ throttle: { "ecs.*": 0.5 } });
      // Measured from the control plane's task states, not from the operator's log.
      const stopped = () => [rogue, duplicate].every((arn) => Object.values(op.cp.ecs.state.tasks).find((t) => t.arn === arn)?.desiredStatus === "STOPPED");
      let resyncs = 0;
      while (!stopped() && resyncs < 5) {
        resyncs++;
        await op.pass();
      }
      resyncsNeeded.push(resyncs);
      op.cp.step(3);
      checkInvariants(op, "demo");
    }
    expect(Object.keys(op.cp.calls().errors).some((k) => k.endsWith("ThrottlingException"))).toBe(true);
    expect(Math.max(...resyncsNeeded)).toBeLessThanOrEqual(2);
  });
});

describe("2b. the guard needs nothing but ECS", () => {
  it("while SSM cannot be read, a rogue compactor on a known cluster is still stopped", async () => {
    const op = await convergedDemo({ attempts: 1 });
    const td = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "demo-compactor" }))).taskDefinition!.taskDefinitionArn!;
    const rogue = (await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: td, launchType: "FARGATE", networkConfiguration: network }))).tasks![0]!.taskArn!;
    op.cp.step(2);
    op.cp.faults.update({ throttle: { "ssm.DescribeParameters": 1 } });
    const r = await op.reconciler.refresh({ mode: "apply" });
    expect(r.error).toMatch(/Throttling/);
    expect(r.guards).toEqual([{ cluster: "logging", stopped: [rogue] }]);
    expect(Object.values(op.cp.ecs.state.tasks).find((t) => t.arn === rogue)!.desiredStatus).toBe("STOPPED");
  });

  it("a compactor started from a hand-registered revision of the stack's family is stopped by the guard: it runs on the same store", async () => {
    const op = await convergedDemo();
    const { edited } = await registerEdited(op, "demo-compactor", (c) => c);
    const task = (await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: edited, launchType: "FARGATE", networkConfiguration: network, startedBy: "someone" }))).tasks![0]!.taskArn!;
    op.cp.step(2);
    const { since, guards } = await op.reconciler.refresh({ mode: "apply" });
    expect(guards).toEqual([{ cluster: "logging", stopped: [task] }]);
    const r = await op.reconciler.reconcile("demo", { mode: "apply", since });
    expect(r.done.filter((a) => a.kind === "StopTask").map((a) => a.kind === "StopTask" && a.taskArn)).toEqual([task]);
    op.cp.step(2);
    checkInvariants(op, "demo");
  });
});

describe("an eventually consistent task listing", () => {
  it("a ListTasks answer that misses running tasks neither reports them stopped nor hides them from the guard", async () => {
    const op = await convergedDemo();
    op.cp.faults.update({ omit: { "ecs.ListTasks": 1 } });
    const missed = await checkedPass(op);
    expect(missed.results[0]!.drifts).toEqual([]);
    expect(missed.writes).toEqual([]);
    op.cp.faults.update({ omit: {} });
    const td = (await op.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "demo-compactor" }))).taskDefinition!.taskDefinitionArn!;
    const rogue = (await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: td, launchType: "FARGATE", networkConfiguration: network }))).tasks![0]!.taskArn!;
    op.cp.step(2);
    const r = await checkedPass(op);
    expect(r.writes.filter((w) => w.action === "StopTask").map((w) => w.target)).toEqual([rogue]);
    await converge(op, "demo");
  });
});

describe("3. no race on singletons", () => {
  it("a compactor weakened to 100/200 just before its rollout still rolls stop-before-start: every UpdateService carries 0/100", async () => {
    const op = await convergedDemo();
    await op.putSpec(example("demo").replace("grafana/loki:3.5.0", "grafana/loki:3.5.1"));
    const { since } = await op.reconciler.refresh({ mode: "apply" });
    // The race: someone weakens the compactor after it was observed, before the rollout is sent.
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-compactor", deploymentConfiguration: { minimumHealthyPercent: 100, maximumPercent: 200 } }));
    const r = await op.reconciler.reconcile("demo", { mode: "apply", since });
    const update = r.done.find((a) => a.kind === "UpdateService" && a.unit === "demo-compactor");
    expect(update).toMatchObject({ fields: ["taskDefinition"], input: { deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 100 } } });
    expect(op.cp.ecs.state.services["logging/demo-compactor"]!.taskDefinition).toMatch(/demo-compactor:2$/);
    for (const a of r.done) if (a.kind === "UpdateService" && /-(compactor|ingester-\d+)$/.test(a.unit)) expect(a.input.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
    for (let i = 0; i < 30; i++) {
      op.cp.step(1);
      checkInvariants(op, "demo");
    }
    expect(op.cp.ecs.state.services["logging/demo-compactor"]!.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
  });
});

describe("switching between microservices and monolithic", () => {
  it.each([
    ["microservices → monolithic", (t: string) => t, (t: string) => t.replace("mode: microservices", "mode: monolithic")],
    ["monolithic → microservices", (t: string) => t.replace("mode: microservices", "mode: monolithic"), (t: string) => t],
  ])("%s never runs two compactors on one store", async (_name, from, to) => {
    const op = await operatorHarness();
    await op.putSpec(from(example("demo")));
    await converge(op, "demo");
    await op.putSpec(to(example("demo")));
    const compactors = () => Object.values(op.cp.ecs.state.tasks).filter((t) => t.lastStatus !== "STOPPED" && /^demo-(compactor|monolithic)$/.test(t.family)).length;
    for (let i = 0; i < 40; i++) {
      await checkedPass(op);
      for (let t = 0; t < 4; t++) {
        op.cp.step(1);
        expect(compactors()).toBeLessThanOrEqual(1);
      }
    }
    await converge(op, "demo");
    expect(compactors()).toBe(1);
  });
});

describe("4 and 5. ordinal scale-down of any size, leaving nothing behind", () => {
  const small = (ingesters: number, extra = "") => example("small").replace("replicationFactor: 2", `replicationFactor: 1${extra}`).replace("  template:\n", `  template:\n    ingester: { replicas: ${ingesters} }\n`);

  it("ingesters 3 → 1: highest first, one at a time, no deadlock; the removed ordinals' services, Cloud Map services and configs are gone", async () => {
    const op = await operatorHarness();
    await op.putSpec(small(3));
    await converge(op, "prod-logs", 80);
    const before = op.cp.writes().length;
    await op.putSpec(small(1));
    await converge(op, "prod-logs", 80);
    const scaledDown = op.cp.writes().slice(before).filter((w) => w.action === "UpdateService" && /ingester-\d+$/.test(w.target)).map((w) => w.target.replace(/.*\//, ""));
    expect(scaledDown).toEqual(["prod-logs-ingester-2", "prod-logs-ingester-1"]);
    expect(activeServices(op, "prod-logs-ingester")).toEqual(["prod-logs-ingester-0"]);
    expect(registries(op, "prod-logs-ingester")).toEqual(["prod-logs-ingester-0"]);
    expect(parameters(op, "/lokistack/prod-logs/config/prod-logs-ingester")).toEqual(["/lokistack/prod-logs/config/prod-logs-ingester-0"]);
  });

  it("deleting a stack of four ingesters under deletionPolicy delete completes and leaves no service, Cloud Map service or parameter", async () => {
    const op = await operatorHarness();
    await op.putSpec(small(4).replace("deletionPolicy: retain", "deletionPolicy: delete"));
    await converge(op, "prod-logs", 80);
    const before = op.cp.writes().length;
    await op.deleteSpec("prod-logs");
    await passUntil(op, "prod-logs", () => parameters(op, "/lokistack/prod-logs/").length === 0, 80);
    expect(activeServices(op, "prod-logs-")).toEqual([]);
    expect(registries(op, "prod-logs-")).toEqual([]);
    const ingesterOrder = op.cp.writes().slice(before).filter((w) => w.action === "UpdateService" && /ingester-\d+$/.test(w.target)).map((w) => w.target.replace(/.*ingester-/, ""));
    expect(ingesterOrder).toEqual(["3", "2", "1", "0"]);
    // The stack is forgotten: later resyncs read nothing of it and write nothing.
    const after = await checkedPass(op);
    expect(after.results).toEqual([]);
    expect(after.writes).toEqual([]);
  });
});

describe("5. no duplicate task definition revisions, also from a cold cache", () => {
  it("an operator restarted after an image went 3.5.0 → 3.4.0 → 3.5.0 reuses the first revisions in plan and apply", async () => {
    const op = await convergedDemo();
    await op.putSpec(example("demo").replace("grafana/loki:3.5.0", "grafana/loki:3.4.0"));
    await converge(op, "demo");
    const revisions = () => Object.values(op.cp.ecs.state.taskDefinitions).flat().filter((t) => t.family.startsWith("demo-")).length;
    expect(revisions()).toBe(12);
    await op.putSpec(example("demo"));
    // `lokistack plan` and `apply --once` start cold, like a restarted operator.
    const plan = await cli("plan", "--endpoint", op.cp.endpoint);
    expect(plan.code).toBe(2);
    expect(plan.stdout).toContain("  # demo-querier\n  ~ UpdateService\n");
    expect(plan.stdout).not.toContain("RegisterTaskDefinition");
    expect((await cli("apply", "--once", "--endpoint", op.cp.endpoint)).code).toBe(0);
    expect(revisions()).toBe(12);
    op.restart();
    const planned = await op.reconciler.pass({ mode: "plan" });
    expect(planned[0]!.planned.filter((a) => a.kind === "RegisterTaskDefinition")).toEqual([]);
    op.restart();
    await converge(op, "demo");
    expect(revisions()).toBe(12);
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.taskDefinition).toMatch(/demo-querier:1$/);
  });
});

describe("6. a stale revision is recognized as ECS answers it", () => {
  it("a deregistered revision the operator remembered: ECS says ClientException 'TaskDefinition is inactive'; it is forgotten and a new one registered", async () => {
    const op = await convergedDemo();
    const { original, edited: moved } = await registerEdited(op, "demo-querier", (c) => ({ ...c, image: "grafana/loki:3.4.0" }));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", taskDefinition: moved }));
    await op.ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: original }));
    const failed = await checkedPass(op);
    expect(failed.results[0]!.outcome).toMatchObject({ kind: "error", message: expect.stringContaining("no longer ACTIVE") });
    expect(op.cp.calls().errors["ecs.UpdateService:ClientException"]).toBe(1);
    await converge(op, "demo");
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.taskDefinition).toMatch(/demo-querier:3$/);
  });
});

describe("7. deletion and every cleanup are planned actions", () => {
  it("plan shows them, execute does them under the lease check, and every write is an action the results account for", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("drift: { policy: repair }", "deletionPolicy: delete"));
    await converge(op, "demo");
    await op.deleteSpec("demo");
    const before = op.cp.writes().length;
    const planned = await op.reconciler.pass({ mode: "plan" });
    expect(op.cp.writes().length).toBe(before);
    expect(planned[0]!.planned.map((a) => a.kind)).toContain("UpdateService");

    const done: string[] = [];
    for (let i = 0; i < 40 && parameters(op, "/lokistack/demo/").length > 0; i++) {
      const r = await checkedPass(op);
      for (const a of r.results.flatMap((x) => x.done)) done.push(a.kind);
      op.cp.step(4);
    }
    const writes = op.cp.writes().slice(before).filter((w) => w.ok);
    const count = (service: string, action: string) => writes.filter((w) => w.service === service && w.action === action).length;
    expect(count("ecs", "DeleteService")).toBe(done.filter((k) => k === "DeleteService").length);
    expect(count("servicediscovery", "DeleteService")).toBe(done.filter((k) => k === "DeleteDiscoveryService").length);
    expect(count("servicediscovery", "DeleteService")).toBe(6);
    expect(count("ssm", "DeleteParameter")).toBe(done.filter((k) => k === "DeleteParameter").length);
    expect(count("ssm", "DeleteParameter")).toBe(7);
  });

  it("a replica that may not write changes nothing, cleanup included", async () => {
    let leader = true;
    const op = await operatorHarness({ canWrite: () => leader });
    await op.putSpec(example("demo").replace("drift: { policy: repair }", "deletionPolicy: delete"));
    await converge(op, "demo");
    await op.deleteSpec("demo");
    leader = false;
    const before = op.cp.writes().length;
    for (let i = 0; i < 3; i++) await op.pass();
    expect(op.cp.writes().length).toBe(before);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "action", result: "skipped", reason: "not the leader" }));
  });
});

describe("8. creation is not drift; a missing namespace is Degraded once", () => {
  it("a new stack is Creating: no drift lines, no lastDrift", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    const first = await checkedPass(op);
    expect(first.results[0]!.drifts).toEqual([]);
    expect(first.results[0]!.creating).toHaveLength(6);
    expect(first.results[0]!.done.every((a) => a.repairs.includes("Create"))).toBe(true);
    expect(condition(await status(op, "demo"), "Progressing")).toMatchObject({ status: "True", reason: "Creating" });
    await converge(op, "demo");
    expect(op.logs.filter((l) => l.event === "drift")).toEqual([]);
    expect((await status(op, "demo"))?.lastDrift).toBeUndefined();
  });

  it("a missing Cloud Map namespace: Degraded NamespaceNotFound, logged once, no drift lines, no backoff storm", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: example("demo").replace("namespace: loki.internal", "namespace: missing.internal"), Type: "String", Overwrite: true }));
    for (let i = 0; i < 3; i++) {
      const r = await checkedPass(op);
      expect(r.writes.filter((w) => w.service !== "ssm")).toEqual([]);
      expect(r.results[0]!.outcome).toMatchObject({ kind: "degraded", reason: "NamespaceNotFound" });
    }
    expect(op.logs.filter((l) => l.event === "degraded")).toHaveLength(1);
    expect(op.logs.filter((l) => l.event === "drift")).toEqual([]);
  });
});

describe("the Cloud Map view", () => {
  it("is read again once older than DISCOVERY_MAX_AGE_MS, and never between", async () => {
    let t = 0;
    const op = await convergedDemo({ clock: () => ++t });
    op.cp.resetCalls();
    for (let i = 0; i < 3; i++) await checkedPass(op);
    expect(op.cp.calls().calls["servicediscovery.ListServices"]).toBeUndefined();
    t += DISCOVERY_MAX_AGE_MS + 1;
    await checkedPass(op);
    expect(op.cp.calls().calls["servicediscovery.ListServices"]).toBe(1);
  });
});

describe("8b. a spec edit is an update, not drift", () => {
  it("a new image rolls out as Updating with no drift reported, while a hand-scaled querier during it is still drift", async () => {
    const op = await convergedExample("small", {}, 80);
    await op.putSpec(example("small").replace("grafana/loki:3.5.0", "grafana/loki:3.5.1"));
    const first = await checkedPass(op);
    expect(first.results[0]!.drifts).toEqual([]);
    expect(first.results[0]!.updating).toEqual(expect.arrayContaining(["prod-logs-querier", "prod-logs-ingester-2"]));
    expect(first.results[0]!.done.every((a) => a.repairs.includes("Update"))).toBe(true);
    expect(condition(await status(op, "prod-logs"), "Progressing")).toMatchObject({ status: "True", reason: "Updating" });

    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-querier", desiredCount: 12 }));
    const during = await checkedPass(op);
    expect(during.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "DesiredCountChanged", unit: "prod-logs-querier", from: 12, to: 8 })]);

    await converge(op, "prod-logs", 80);
    expect(op.logs.filter((l) => l.event === "drift").map((l) => l.drift)).toEqual(["DesiredCountChanged"]);
    const s = await status(op, "prod-logs");
    expect(s).toMatchObject({ appliedGeneration: 2, convergedGeneration: 2, lastDrift: { count: 1, kinds: { DesiredCountChanged: 1 } } });
  });
});

describe("9. drift names each changed field, never a hidden value", () => {
  it("an environment variable changed out of band shows its name; the values reach neither the result nor the log", async () => {
    const op = await convergedExample("small", {}, 80);
    const { edited } = await registerEdited(op, "prod-logs-distributor", (c) => ({ ...c, image: "grafana/loki:3.4.2", environment: [{ name: "GOMEMLIMIT", value: "1234MiB-canary" }] }));
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-distributor", taskDefinition: edited }));
    const r = await checkedPass(op);
    const drift = r.results[0]!.drifts.find((d) => d.kind === "TaskDefinitionChanged");
    expect(drift).toMatchObject({
      changes: expect.arrayContaining([
        { path: "containerDefinitions[loki].image", from: "grafana/loki:3.4.2", to: "grafana/loki:3.5.0" },
        { path: "containerDefinitions[loki].environment[GOMEMLIMIT].value", from: "(hidden)", to: "(hidden)" },
      ]),
    });
    const line = op.logs.find((l) => l.event === "drift" && l.drift === "TaskDefinitionChanged");
    expect(line?.msg).toContain("containerDefinitions[loki].image: grafana/loki:3.4.2 → grafana/loki:3.5.0");
    expect(line?.msg).toContain("containerDefinitions[loki].environment[GOMEMLIMIT].value: changed (value hidden)");
    expect(JSON.stringify([op.logs, r.results])).not.toMatch(/1234MiB-canary|3500MiB/);
  });
});

describe("9b. a whole container added out of band", () => {
  it("is named, and its environment values are hidden too", async () => {
    const op = await convergedDemo();
    const sidecar = { name: "agent", image: "datadog/agent:7", essential: false, environment: [{ name: "DD_API_KEY", value: "s3cr3t-api-key" }], dockerLabels: { token: "s3cr3t-label" } };
    const { edited } = await registerEdited(op, "demo-querier", (c) => c, [sidecar]);
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", taskDefinition: edited }));
    const r = await checkedPass(op);
    const drift = r.results[0]!.drifts.find((d) => d.kind === "TaskDefinitionChanged");
    expect(drift).toMatchObject({ changes: expect.arrayContaining([expect.objectContaining({ path: "containerDefinitions[agent]", from: expect.objectContaining({ environment: [{ name: "DD_API_KEY", value: "(hidden)" }] }) })]) });
    expect(JSON.stringify([op.logs, r.results])).not.toMatch(/s3cr3t/);
  });
});

describe("10. status tells the truth", () => {
  it("an autoscaled querier within its range is Ready at the count autoscaling chose", async () => {
    const op = await convergedExample("small", {}, 80);
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-querier", desiredCount: 5 }));
    for (let i = 0; i < 4; i++) {
      await checkedPass(op);
      op.cp.step(4);
    }
    const s = await status(op, "prod-logs");
    expect(s?.components.querier).toEqual({ desired: 5, running: 5, pending: 0 });
    expect(condition(s, "Ready")).toMatchObject({ status: "True" });
    expect(s).toMatchObject({ lastReconcileTime: expect.any(String), reconciledBy: "test-replica", resyncSeconds: 30 });
  });

  it("lokistack status marks a status nobody refreshed Stale, and lists a stack with a spec but no status yet", async () => {
    const op = await convergedDemo();
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/fresh/spec", Value: example("demo").replace("name: demo", "name: fresh"), Type: "String" }));
    const lastReconcile = Date.parse((await status(op, "demo"))!.lastReconcileTime!);
    let out = "";
    const print = (t: string) => (out += t);
    await statusCommand({ endpoint: op.cp.endpoint, now: () => new Date(lastReconcile + 60_000) }, print, print);
    expect(out).toMatch(/demo\s+True\s+Ready\s+6\ds\s+60s ago\s+all components are running the desired state/);
    expect(out).toMatch(/fresh\s+Unknown\s+Unknown\s+-\s+never\s+no status yet: no operator has reconciled this spec/);
    out = "";
    await statusCommand({ endpoint: op.cp.endpoint, name: "demo", now: () => new Date(lastReconcile + 400_000) }, print, print);
    expect(out).toMatch(/demo\s+Unknown\s+Stale\s+6m\s+6m ago\s+not reconciled since \S+ by test-replica: is the operator running\?/);
  });
});

describe("11. the spec watch forgets deleted stacks", () => {
  it("a deleted spec is reported once, then never again", async () => {
    const op = await convergedDemo();
    expect(await op.reconciler.watchSpecs()).toEqual([]);
    await op.deleteSpec("demo");
    expect(await op.reconciler.watchSpecs()).toEqual(["demo"]);
    op.cp.resetCalls();
    for (let i = 0; i < 3; i++) expect(await op.reconciler.watchSpecs()).toEqual([]);
    expect(op.cp.calls().calls["ssm.DescribeParameters"] ?? 0).toBe(0);
  });
});
