// Loki-aware safety, against simulated Loki tasks (the control plane answers
// Loki's HTTP API for them; the e2e tier proves the same with real Loki):
// an ingester flushes before its ordinal goes, readiness is Loki's own, the
// container health check is liveness, and ghosts leave the ring.
import { describe, expect, it } from "vitest";
import { LokiGateway, type RingMember } from "../../src/loki/gateway.ts";
import { checkedPass, checkInvariants, condition, converge, ecsWrites, example, operatorHarness, passUntil, status, type OperatorHarness } from "../helpers/operator.ts";

const FOUR = example("small").replace("querier: { replicas: 3", "ingester: { replicas: 4 }\n    querier: { replicas: 3");
const live = (op: OperatorHarness, unit: string) => Object.values(op.cp.ecs.state.tasks).filter((t) => t.group === `service:${unit}` && t.lastStatus !== "STOPPED");

/** The ingester ring as a live ingester of the stack reports it. */
async function ring(op: OperatorHarness, through = "prod-logs-ingester-0"): Promise<RingMember[]> {
  const task = live(op, through).find((t) => t.lastStatus === "RUNNING")!;
  return new LokiGateway({ proxy: op.cp.endpoint }).ring(task.privateIp);
}

/** A virtual clock for the control plane (epoch seconds) and the operator, moved by hand. */
function virtualClock() {
  const clock = { seconds: Date.now() / 1000 };
  return { clock, cpNow: () => clock.seconds, now: () => new Date(clock.seconds * 1000) };
}

describe("an ingester flushes before its ordinal goes away", () => {
  it("an ingester that cannot be reached keeps its ordinal and degrades the stack; once the flush succeeds, the ordinal is flushed, then scaled to 0 and deleted", async () => {
    const op = await operatorHarness();
    await op.putSpec(FOUR);
    await converge(op, "prod-logs", 80);
    const [leaving] = live(op, "prod-logs-ingester-3");
    op.cp.loki.faults.set("prod-logs-ingester-3", { unreachable: true });
    await op.putSpec(example("small"));

    for (let i = 0; i < 4; i++) {
      const r = await checkedPass(op);
      expect(ecsWrites(r.writes).filter((w) => w.target.endsWith("ingester-3"))).toEqual([]);
      expect(r.results[0]!.outcome).toMatchObject({ kind: "degraded", reason: "IngesterFlushFailed" });
      op.cp.step(4);
    }
    expect(op.cp.ecs.state.services["logging/prod-logs-ingester-3"]!.desiredCount).toBe(1);
    expect(leaving!.lastStatus).toBe("RUNNING");
    expect(op.cp.loki.flushes).toEqual([]);
    expect(condition(await status(op, "prod-logs"), "Degraded")).toMatchObject({
      status: "True",
      reason: "IngesterFlushFailed",
      message: expect.stringMatching(/prod-logs-ingester-3: POST http:\/\/[\d.]+:3100\/ingester\/shutdown.*; the ordinal stays until its ingester has flushed\. .*TCP 3100/),
    });
    expect(op.logs.filter((l) => l.event === "degraded" && l.reason === "IngesterFlushFailed")).toHaveLength(1);

    op.cp.loki.faults.delete("prod-logs-ingester-3");
    const from = op.cp.writes().length;
    const steps = () => op.cp.writes().slice(from).filter((w) => w.service === "ecs" && w.target.endsWith("ingester-3")).map((w) => `${w.action} ${w.target}`);
    await passUntil(op, "prod-logs", () => steps().includes("DeleteService prod-logs-ingester-3"));
    // One flush, of that task, while ECS still had it running; then the scale-down.
    expect(op.cp.loki.flushes).toEqual([expect.objectContaining({ taskArn: leaving!.arn, instanceId: "prod-logs-ingester-3", desiredStatus: "RUNNING" })]);
    expect(steps()).toEqual(["UpdateService prod-logs-ingester-3", "DeleteService prod-logs-ingester-3"]);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "action", action: "FlushIngester", unit: "prod-logs-ingester-3", result: "ok" }));
    expect((await ring(op)).map((m) => m.id)).toEqual(["prod-logs-ingester-0", "prod-logs-ingester-1", "prod-logs-ingester-2"]);
    await converge(op, "prod-logs");
    expect(condition(await status(op, "prod-logs"), "Degraded")?.status).toBe("False");
  });

  it("a shutdown Loki fails keeps the ordinal while its task runs: the 503 of every later call is no flush, even to a restarted operator", async () => {
    const { clock, cpNow, now } = virtualClock();
    const op = await operatorHarness({ cpNow, now });
    await op.putSpec(FOUR);
    await converge(op, "prod-logs", 80);
    const [leaving] = live(op, "prod-logs-ingester-3");
    // Loki's stopping returns the ring's error: the member stays, the ingester module has failed.
    op.cp.loki.faults.set(leaving!.arn, { shutdownError: { status: 500, message: "failed to unregister from the KV store, ring: ingester: context deadline exceeded" } });
    await op.putSpec(example("small"));
    const untouched = (r: Awaited<ReturnType<typeof checkedPass>>) => expect(ecsWrites(r.writes).filter((w) => w.target.endsWith("ingester-3"))).toEqual([]);

    const failed = await checkedPass(op);
    untouched(failed);
    expect(failed.results[0]!.outcome).toMatchObject({ kind: "degraded", reason: "IngesterFlushFailed", message: expect.stringContaining("HTTP 500: failed to unregister from the KV store") });
    // Before Loki has exited, the same task answers 503 and its own ring is empty (shards null).
    const again = await checkedPass(op);
    untouched(again);
    const notTerminated = { kind: "degraded", reason: "IngesterFlushFailed", message: expect.stringContaining("its ingester module has Failed") };
    expect(again.results[0]!.outcome).toMatchObject(notTerminated);
    // Loki's module states say so, not this operator's memory: a restarted one reads the same.
    op.restart();
    const restarted = await checkedPass(op);
    untouched(restarted);
    expect(restarted.results[0]!.outcome).toMatchObject(notTerminated);
    expect((await ring(op)).map((m) => `${m.id} ${m.state}`)).toContain("prod-logs-ingester-3 LEAVING");

    // Loki exits (a failed module stops the process): the task is gone, so the ordinal goes, and
    // the member it could not unregister is forgotten once its heartbeat is stale.
    op.cp.step(1);
    expect(leaving).toMatchObject({ desiredStatus: "STOPPED", stopCode: "EssentialContainerExited" });
    await passUntil(op, "prod-logs", () => op.cp.ecs.state.services["logging/prod-logs-ingester-3"]?.status !== "ACTIVE", 40);
    clock.seconds += 90;
    await passUntil(op, "prod-logs", (rs) => rs[0]!.done.some((a) => a.kind === "ForgetRingMember"), 3);
    expect((await ring(op)).map((m) => m.id)).toEqual(["prod-logs-ingester-0", "prod-logs-ingester-1", "prod-logs-ingester-2"]);
  });

  it("a shutdown an earlier call finished (a timeout, a restarted operator) counts as the flush: its ingester module reads Terminated", async () => {
    const op = await operatorHarness();
    await op.putSpec(FOUR);
    await converge(op, "prod-logs", 80);
    const [leaving] = live(op, "prod-logs-ingester-3");
    const gateway = new LokiGateway({ proxy: op.cp.endpoint });
    expect(await gateway.shutdown(leaving!.privateIp)).toBe("flushed");
    expect(await gateway.moduleState(leaving!.privateIp, "ingester")).toBe("Terminated");
    await op.putSpec(example("small"));
    const r = await checkedPass(op);
    expect(r.results[0]!.done.map((a) => `${a.kind} ${a.unit}`)).toEqual(["FlushIngester prod-logs-ingester-3", "UpdateService prod-logs-ingester-3"]);
    expect(op.cp.loki.flushes).toHaveLength(1);
  });

  it("a flush whose call got no answer but goes on is waited for: its ingester module reads Running until it has ended", async () => {
    const op = await operatorHarness();
    await op.putSpec(FOUR);
    await converge(op, "prod-logs", 80);
    const [leaving] = live(op, "prod-logs-ingester-3");
    op.cp.loki.faults.set(leaving!.arn, { flushHangs: true });
    await op.putSpec(example("small"));
    const ingester3 = (r: Awaited<ReturnType<typeof checkedPass>>) => ecsWrites(r.writes).filter((w) => w.target.endsWith("ingester-3")).map((w) => w.action);

    const timedOut = await checkedPass(op);
    expect(ingester3(timedOut)).toEqual([]);
    expect(timedOut.results[0]!.outcome).toMatchObject({ kind: "degraded", reason: "IngesterFlushFailed" });
    const flushing = await checkedPass(op);
    expect(ingester3(flushing)).toEqual([]);
    expect(flushing.results[0]!.deferrals).toContainEqual({ unit: "prod-logs-ingester-3", reason: "prod-logs-ingester-3 is flushing and leaving the ring (its ingester module: Running); scaled down once its shutdown has ended" });
    expect((await ring(op)).map((m) => `${m.id} ${m.state}`)).toContain("prod-logs-ingester-3 LEAVING");

    op.cp.loki.faults.delete(leaving!.arn);
    const ended = await checkedPass(op);
    expect(ingester3(ended)).toEqual(["UpdateService"]);
    expect(op.cp.loki.flushes).toEqual([expect.objectContaining({ taskArn: leaving!.arn, desiredStatus: "RUNNING" })]);
  });

  it("deleting a stack flushes every ingester ordinal, highest first, each before it is scaled to 0", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("small").replace("deletionPolicy: retain", "deletionPolicy: delete"));
    await converge(op, "prod-logs", 80);
    const tasks = ["prod-logs-ingester-2", "prod-logs-ingester-1", "prod-logs-ingester-0"].map((u) => live(op, u)[0]!.arn);
    await op.deleteSpec("prod-logs");
    await passUntil(op, "prod-logs", () => Object.values(op.cp.ecs.state.services).every((s) => s.status !== "ACTIVE"), 80);
    expect(op.cp.loki.flushes.map((f) => f.taskArn)).toEqual(tasks);
    expect(op.cp.loki.flushes.every((f) => f.desiredStatus === "RUNNING")).toBe(true);
  });
});

describe("readiness is Loki's own; the container health check is liveness", () => {
  it("an ingester replaying its WAL past the 300 s start period is not replaced, and the next ordinal waits for its /ready", async () => {
    const { clock, cpNow, now } = virtualClock();
    const op = await operatorHarness({ cpNow, now });
    await op.putSpec(example("small"));
    await converge(op, "prod-logs", 80);
    const replaying = live(op, "prod-logs-ingester-1")[0]!;
    op.cp.loki.faults.set("prod-logs-ingester-1", { notReady: true });
    // Well past the start period and every retry: a /ready check would have failed the task by now.
    clock.seconds += 400;
    op.cp.step(5);
    expect(replaying).toMatchObject({ lastStatus: "RUNNING", desiredStatus: "RUNNING", healthStatus: "HEALTHY" });

    await op.putSpec(example("small").replace("grafana/loki:3.5.0", "grafana/loki:3.5.1"));
    for (let i = 0; i < 6; i++) {
      const r = await checkedPass(op);
      expect(ecsWrites(r.writes).filter((w) => /ingester/.test(w.target))).toEqual(
        ecsWrites(r.writes).filter((w) => /ingester/.test(w.target) && w.action === "RegisterTaskDefinition"),
      );
      op.cp.step(4);
      clock.seconds += 30;
    }
    expect(op.cp.ecs.state.services["logging/prod-logs-ingester-2"]!.taskDefinition).toMatch(/:1$/);
    expect(replaying.lastStatus).toBe("RUNNING");
    const r = await checkedPass(op);
    expect(r.results[0]!.deferrals).toContainEqual({
      unit: "prod-logs-ingester-2",
      reason: "waiting until every other ingester ordinal is running and ready: prod-logs-ingester-1 is not ready: Ingester not ready: waiting for 15s after being ready",
    });

    op.cp.loki.faults.delete("prod-logs-ingester-1");
    await converge(op, "prod-logs", 80);
    for (const i of [0, 1, 2]) expect(op.cp.ecs.state.services[`logging/prod-logs-ingester-${i}`]!.taskDefinition).toMatch(/:2$/);
  });

  it.each([
    ["the liveness check (build info)", "RUNNING", ["CMD-SHELL", "wget -q -O /dev/null http://localhost:3100/loki/api/v1/status/buildinfo || exit 1"]],
    ["Loki's self-check on the build info", "RUNNING", ["CMD", "/usr/bin/loki", "-health", "-health.url=http://localhost:3100/loki/api/v1/status/buildinfo"]],
    ["a readiness check (/ready), as before", "STOPPED", ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3100/ready || exit 1"]],
    ["`loki -health` without a URL (it asks /ready)", "STOPPED", ["CMD", "/usr/bin/loki", "-health"]],
  ])("with %s, an ingester that stays not ready for 400 s is %s", async (_name, expected, command) => {
    const { clock, cpNow, now } = virtualClock();
    const op = await operatorHarness({ cpNow, now });
    await op.putSpec(example("small"));
    await converge(op, "prod-logs", 80);
    // The ordinal's current task definition, with its health check command replaced.
    const service = op.cp.ecs.state.services["logging/prod-logs-ingester-0"]!;
    const td = op.cp.ecs.taskDefinition(service.taskDefinition)!;
    const body = structuredClone(td.body) as { containerDefinitions: { name: string; healthCheck?: { command: string[] } }[] };
    body.containerDefinitions.find((c) => c.name === "loki")!.healthCheck!.command = command;
    const { ECSClient, RegisterTaskDefinitionCommand, UpdateServiceCommand } = await import("@aws-sdk/client-ecs");
    const ecs = new ECSClient(op.cp.clientConfig);
    const { taskDefinitionArn } = (await ecs.send(new RegisterTaskDefinitionCommand({ ...(body as object), family: "probe", tags: undefined } as never))).taskDefinition!;
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "prod-logs-ingester-0", taskDefinition: taskDefinitionArn }));
    op.cp.step(12);
    const task = live(op, "prod-logs-ingester-0").find((t) => t.taskDefinitionArn === taskDefinitionArn)!;
    expect(task.lastStatus).toBe("RUNNING");
    op.cp.loki.faults.set("prod-logs-ingester-0", { notReady: true });
    op.cp.step(1);
    clock.seconds += 400;
    op.cp.step(3);
    expect(task.lastStatus === "STOPPED" || task.desiredStatus === "STOPPED" ? "STOPPED" : "RUNNING").toBe(expected);
    if (expected === "STOPPED") expect(task.stoppedReason).toBe("Task failed container health checks");
  });
});

describe("rings without ghosts", () => {
  it("a removed ordinal whose ingester crashed leaves a member behind: reported, and forgotten once its heartbeat is stale", async () => {
    const { clock, cpNow, now } = virtualClock();
    const op = await operatorHarness({ cpNow, now });
    await op.putSpec(FOUR);
    await converge(op, "prod-logs", 80);
    const crashed = live(op, "prod-logs-ingester-3")[0]!;
    op.cp.loki.crash(crashed.arn);
    op.cp.kill(crashed.arn, "EssentialContainerExited", "Essential container in task exited");
    await op.putSpec(example("small"));
    await passUntil(op, "prod-logs", () => op.cp.ecs.state.services["logging/prod-logs-ingester-3"]?.status !== "ACTIVE", 40);
    // Nothing ran to flush: the task was gone.
    expect(op.cp.loki.flushes).toEqual([]);
    expect((await ring(op)).map((m) => `${m.id} ${m.state}`)).toContain("prod-logs-ingester-3 ACTIVE");

    clock.seconds += 90;
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toContainEqual(expect.objectContaining({ kind: "RingMemberNotDesired", member: "prod-logs-ingester-3", state: "UNHEALTHY" }));
    expect(r.results[0]!.done).toContainEqual(expect.objectContaining({ kind: "ForgetRingMember", member: "prod-logs-ingester-3" }));
    expect((await ring(op)).map((m) => m.id)).toEqual(["prod-logs-ingester-0", "prod-logs-ingester-1", "prod-logs-ingester-2"]);
    const after = await checkedPass(op);
    expect(after.results[0]!.drifts.filter((d) => d.kind === "RingMemberNotDesired")).toEqual([]);
    checkInvariants(op, "prod-logs");
  });

  it("an ordinal whose task runs but whose ingester is not ACTIVE past the grace period is drift, and nothing is restarted for it", async () => {
    const { clock, cpNow, now } = virtualClock();
    const op = await operatorHarness({ cpNow, now });
    await op.putSpec(example("small"));
    await converge(op, "prod-logs", 80);
    op.cp.loki.faults.set("prod-logs-ingester-0", { notReady: true });
    const early = await checkedPass(op);
    expect(early.results[0]!.drifts).toEqual([]);
    clock.seconds += 11 * 60;
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts).toEqual([expect.objectContaining({ kind: "IngesterNotActive", unit: "prod-logs-ingester-0", state: "JOINING" })]);
    expect(ecsWrites(r.writes)).toEqual([]);
  });
});
