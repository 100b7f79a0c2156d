// plan, apply --once, status and spec put through the CLI, against the control plane.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cli } from "../helpers/cli.ts";
import { convergedDemo, example, operatorHarness } from "../helpers/operator.ts";


describe("operator commands", () => {
  it("spec put validates first; plan shows drift with exit 2, then 0 once applied; status prints conditions", async () => {
    const op = await convergedDemo();
    const endpoint = ["--endpoint", op.cp.endpoint];
    // plan and apply ask the ingesters whether they are ready: the control plane answers for simulated tasks.
    const withLoki = [...endpoint, "--loki-proxy", op.cp.endpoint];

    const dir = mkdtempSync(join(tmpdir(), "lokistack-cli-"));
    writeFileSync(join(dir, "bad.yaml"), example("demo").replace("size: 1x.demo", "size: big"));
    const before = op.cp.writes().length;
    const bad = await cli("spec", "put", "-f", join(dir, "bad.yaml"), ...endpoint);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toBe("");
    expect(bad.stderr).toContain(`${join(dir, "bad.yaml")}: error: spec.size: must be one of`);
    expect(op.cp.writes().length).toBe(before);

    writeFileSync(join(dir, "demo.yaml"), example("demo").replace("drift: { policy: repair }", "template: { querier: { replicas: 2 } }"));
    const put = await cli("spec", "put", "-f", join(dir, "demo.yaml"), ...endpoint);
    expect(put).toMatchObject({ code: 0, stdout: "/lokistack/demo/spec: version 2\n" });

    const plan = await cli("plan", ...withLoki);
    expect(plan.code).toBe(2);
    // A spec change is an update, not drift.
    expect(plan.stdout).toContain("updating 1 unit(s) to generation 2: demo-querier");
    expect(plan.stdout).not.toMatch(/^\s+drift /m);
    expect(plan.stdout).toContain("  # demo-querier\n  ~ UpdateService\n      ~ desiredCount: 1 → 2\n");
    // The service's spec-hash tag follows the change.
    expect(plan.stdout).toContain("  ~ TagResource (resource arn:aws:ecs:");
    expect(plan.stdout).toContain("Plan: 0 to create, 2 to change, 0 to destroy, 0 tasks to stop.");
    expect(plan.stdout).toContain("Next: `lokistack apply demo` makes these changes now");
    const json = JSON.parse((await cli("plan", "demo", "-o", "json", ...withLoki)).stdout);
    expect(json).toMatchObject({ formatVersion: 1, totals: { create: 0, change: 2, destroy: 0, stopTasks: 0, flushIngesters: 0 } });
    expect(json.stacks[0]).toMatchObject({
      name: "demo",
      generation: 2,
      drifts: [],
      updating: ["demo-querier"],
      changes: [
        { symbol: "~", action: "UpdateService", unit: "demo-querier", attributes: [{ path: "desiredCount", from: 1, to: 2 }] },
        { symbol: "~", action: "TagResource", unit: "demo-querier" },
      ],
    });
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.desiredCount).toBe(1);

    expect((await cli("apply", "--once", ...withLoki)).code).toBe(0);
    expect(op.cp.ecs.state.services["logging/demo-querier"]!.desiredCount).toBe(2);
    op.cp.step(6);
    await cli("apply", "--once", ...withLoki);
    const clean = await cli("plan", ...withLoki);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toContain("  No changes. ECS matches the spec.\n");
    expect(clean.stdout).toContain("No changes. Every stack matches its spec.\n");

    const status = await cli("status", ...endpoint);
    expect(status.stdout).toMatch(/^NAME\s+READY\s+STATUS\s+AGE\s+LAST-RECONCILED\s+MESSAGE\n/);
    expect(status.stdout).toMatch(/\ndemo\s+True\s+Ready\s+\d+[smhd]\s+\d+s ago\s+all components are running the desired state\n/);
    const one = await cli("status", "demo", ...endpoint);
    expect(one.stdout).toMatch(/\nReady\s+True\s+ReadyComponents\s+\d+s\s+all components/);
    expect(one.stdout).toMatch(/\nUNIT\s+DESIRED\s+RUNNING\s+PENDING\s+REVISION\s+ROLLOUT\n/);
    expect(one.stdout).toMatch(/\ndemo-querier\s+2\s+2\s+0\s+demo-querier:1\s+COMPLETED\n/);
    const statusJson = JSON.parse((await cli("status", "demo", "-o", "json", ...endpoint)).stdout);
    expect(statusJson).toMatchObject({ formatVersion: 1, stacks: [{ name: "demo", ready: "True", status: "Ready", generation: 2 }] });
    expect(statusJson.stacks[0].units).toContainEqual(expect.objectContaining({ name: "demo-querier", desired: 2, running: 2, rollout: "COMPLETED" }));
    expect((await cli("status", "demo", "-o", "yaml", ...endpoint)).stdout).toMatch(/^formatVersion: 1\nstacks:\n  - name: demo\n/);
    const missing = await cli("status", "nope", ...endpoint);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no stack nope under /lokistack (lokistack status lists the stacks)\n");
  });

  it("plan exits 1 for an invalid spec and never writes", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo").replace("size: 1x.demo", "size: big"));
    const before = op.cp.writes().length;
    const r = await cli("plan", "--endpoint", op.cp.endpoint);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("✗ spec.size: must be one of");
    expect(op.cp.writes().length).toBe(before);
  });
});
