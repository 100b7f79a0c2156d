// The daemon in process and as real processes: schedule, spec watch, health,
// metrics, leader election between two replicas, and graceful shutdown.
import { UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { inProcessOperator, operatorProcess, ready, seeded, statusOf, until } from "../helpers/daemon.ts";
import { example } from "../helpers/operator.ts";
import { PutParameterCommand } from "@aws-sdk/client-ssm";

describe("daemon in process", () => {
  it("converges on its schedule, reacts to a spec change at once, serves health and metrics, stops cleanly", async () => {
    const h = await seeded();
    const { op, logs } = inProcessOperator(h, { resync: "*/1 * * * * *", watchIntervalMs: 100 });
    await op.daemon.start();
    await until(() => ready(h));
    const base = `http://127.0.0.1:${op.daemon.port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('lokistack_actions_total{kind="CreateService",result="ok"} 6');
    expect(metrics).toContain("lokistack_leader 1");
    expect(metrics).toMatch(/lokistack_reconcile_total\{result="done"\} \d+/);

    await h.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: example("demo").replace("drift: { policy: repair }", "template: { querier: { replicas: 2 } }"), Overwrite: true }));
    await until(() => logs.some((l) => l.event === "spec.changed"));
    await until(() => h.cp.ecs.state.services["logging/demo-querier"]?.desiredCount === 2);

    await op.daemon.stop();
    expect(logs.at(-1)).toMatchObject({ event: "stop" });
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });
});

describe("daemon whose task role lacks s3:ListBucket on the lease bucket", () => {
  it("stays not ready, acts on nothing and names the permission; once granted, it leads", async () => {
    const h = await seeded();
    const seededWrites = h.cp.writes().length;
    h.cp.faults.update({ deny: ["s3:ListBucket"] });
    const { op, logs } = inProcessOperator(h, { lease: "s3://lokistack-operator/leader", leaseMs: 1500, resync: "* * * * * *", watchIntervalMs: 100 });
    await op.daemon.start();
    const base = `http://127.0.0.1:${op.daemon.port}`;
    await until(async () => (await fetch(`${base}/readyz`)).status === 503);
    await new Promise((r) => setTimeout(r, 1500));
    const readyz = await fetch(`${base}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.text()).toContain("needs s3:ListBucket");
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${base}/metrics`)).text()).toContain("lokistack_lease_ok 0");
    expect(logs.filter((l) => l.event === "lease" && l.result === "error" && String(l.error).includes("s3:ListBucket"))).toHaveLength(1);
    expect(h.cp.writes().slice(seededWrites).filter((w) => w.service !== "s3")).toEqual([]);
    h.cp.faults.update({ deny: [] });
    await until(async () => (await fetch(`${base}/readyz`)).status === 200);
    await until(() => ready(h));
    await op.daemon.stop();
  });
});

describe("daemon with a broken stack beside a healthy one", () => {
  it("stays ready, counts the broken stack's reconciles as errors, and keeps repairing the healthy one", async () => {
    const h = await seeded();
    await h.ssm.send(new PutParameterCommand({ Name: "/lokistack/broken/spec", Value: example("demo").replace("name: demo", "name: broken").replace("cluster: logging", "cluster: nowhere"), Type: "String" }));
    const { op, logs } = inProcessOperator(h, { resync: "* * * * * *", watchIntervalMs: 100 });
    await op.daemon.start();
    await until(() => ready(h));
    await h.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    await until(() => h.cp.ecs.state.services["logging/demo-querier"]?.desiredCount === 1);
    await until(() => op.daemon.passCount >= 3);
    const base = `http://127.0.0.1:${op.daemon.port}`;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(Number(/lokistack_reconcile_errors_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThan(0);
    expect(metrics).toMatch(/lokistack_reconcile_total\{result="degraded"\} [1-9]/);
    expect(Number(/lokistack_passes_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
    const broken = statusOf(h, "broken");
    expect(broken?.conditions.find((c) => c.type === "Degraded")).toMatchObject({ status: "True", reason: "ClusterNotFound" });
    expect(logs.filter((l) => l.event === "degraded" && l.stack === "broken")).toHaveLength(1);
    await op.daemon.stop();
  });
});

describe("two operator processes against one control plane", () => {
  it("only the lease holder writes; after SIGKILL the other takes over within about a lease period, without duplicates", async () => {
    const h = await seeded();
    const a = operatorProcess(h.cp.endpoint, "replica-a");
    try {
      await until(() => a.logs.some((l) => l.event === "lease" && l.leader === true), 200);
      const b = operatorProcess(h.cp.endpoint, "replica-b");
      try {
        await until(() => b.logs.some((l) => l.event === "lease" && l.leader === false), 200);
        await until(() => ready(h), 400);
        expect(b.logs.filter((l) => l.event === "action")).toEqual([]);
        expect(a.logs.filter((l) => l.event === "action").length).toBeGreaterThan(0);

        a.child.kill("SIGKILL");
        await a.exited;
        const killedAt = performance.now();
        await until(() => b.logs.some((l) => l.event === "lease" && l.leader === true), 200);
        const handoverMs = performance.now() - killedAt;
        console.log(`lease handover after SIGKILL: ${Math.round(handoverMs)} ms (lease 2000 ms)`);

        await h.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
        await until(() => h.cp.ecs.state.services["logging/demo-querier"]!.desiredCount === 1, 200);
        const repairs = () => b.logs.filter((l) => l.event === "action" && l.unit === "demo-querier" && l.action === "UpdateService");
        await until(() => repairs().length > 0, 100);
        // Over the next resyncs (one a second) the repair is not repeated.
        await new Promise((r) => setTimeout(r, 2500));
        expect(repairs()).toHaveLength(1);
        const updates = h.cp.writes().filter((w) => w.action === "UpdateService" && w.target === "demo-querier");
        expect(updates.filter((w) => w.ok)).toHaveLength(2); // the out-of-band edit and the one repair

        b.child.kill("SIGTERM");
        expect(await b.exited).toBe(0);
        expect(b.logs).toContainEqual(expect.objectContaining({ event: "lease", result: "released" }));
        expect(b.logs.at(-1)).toMatchObject({ event: "stop" });
      } finally {
        b.child.kill("SIGKILL");
      }
    } finally {
      a.child.kill("SIGKILL");
    }
  });
});
