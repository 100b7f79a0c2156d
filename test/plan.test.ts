// The planner, pure: plain analyses in, actions and deferrals out.
import { describe, expect, it } from "vitest";
import type { StackAnalysis, UnitAnalysis } from "../src/controllers/analyze.ts";
import { plan } from "../src/controllers/plan.ts";
import { desiredUnits } from "../src/resources/render.ts";
import { validateText } from "../src/resources/validate.ts";
import { example } from "./helpers/operator.ts";
import { NOW } from "./helpers/specs.ts";

function threeIngesters(edit: (u: UnitAnalysis) => UnitAnalysis): StackAnalysis {
  const text = example("small").replace("replicationFactor: 2", "replicationFactor: 1").replace("  template:\n", "  template:\n    ingester: { replicas: 3 }\n");
  const v = validateText(text, { now: NOW });
  if (!v.ok) throw new Error(JSON.stringify(v.errors));
  const units = desiredUnits(v.stack, { parameterPrefix: "/lokistack" }).map((desired): UnitAnalysis => {
    const name = desired.unit.name;
    return edit({
      desired,
      state: "present",
      creating: false,
      updating: false,
      service: { serviceName: name, serviceArn: `arn:aws:ecs:us-east-1:123456789012:service/logging/${name}`, desiredCount: desired.unit.desiredCount },
      serviceDiffs: [],
      taskDefinitionCurrent: true,
      taskDefinitionChanges: [],
      configParameter: `/lokistack/prod-logs/config/${name}`,
      configCurrent: true,
      registryArn: `arn:aws:servicediscovery:us-east-1:123456789012:service/srv-${name}`,
      discoveryCurrent: true,
      extraTasks: [],
      stoppingTasks: [],
      running: true,
      ready: true,
    });
  });
  return { units, orphans: [], leftoverRegistries: [], leftoverConfigs: [], strayTasks: [], ghosts: [], drifts: [] };
}

describe("ingester ordinals", () => {
  it("an unready ordinal that the new spec fixes goes first, instead of blocking a missing ordinal for ever", () => {
    const analysis = threeIngesters((u) => {
      if (u.desired.unit.name.endsWith("ingester-0")) return { ...u, state: "missing", service: undefined, ready: false, taskDefinitionCurrent: false, discoveryCurrent: false };
      if (u.desired.unit.name.endsWith("ingester-2")) return { ...u, running: false, ready: false, taskDefinitionCurrent: false };
      return u;
    });
    const p = plan(analysis, { cluster: "logging", namespaceId: "ns-1", deleteOrphans: true });
    expect(p.actions.filter((a) => /ingester/.test(a.unit)).map((a) => `${a.kind} ${a.unit}`)).toEqual(["RegisterTaskDefinition prod-logs-ingester-2", "UpdateService prod-logs-ingester-2"]);
    expect(p.deferrals).toContainEqual({ unit: "prod-logs-ingester-0", reason: "waiting for prod-logs-ingester-2, which is not ready, to change first" });
  });

  it("an ordinal that runs but is not ready yet (replaying its WAL) is waited for, never restarted first", () => {
    const analysis = threeIngesters((u) => {
      if (u.desired.unit.name.endsWith("ingester-1")) return { ...u, ready: false, notReady: "not ready: Ingester not ready", taskDefinitionCurrent: false };
      return { ...u, taskDefinitionCurrent: /ingester/.test(u.desired.unit.name) ? false : u.taskDefinitionCurrent };
    });
    const p = plan(analysis, { cluster: "logging", namespaceId: "ns-1", deleteOrphans: true });
    expect(p.actions.filter((a) => /ingester/.test(a.unit))).toEqual([]);
    expect(p.deferrals).toContainEqual({ unit: "prod-logs-ingester-2", reason: "waiting until every other ingester ordinal is running and ready: prod-logs-ingester-1 is not ready: Ingester not ready" });
  });

  it("every UpdateService of a single-task unit carries 0/100, whatever else it changes", () => {
    const analysis = threeIngesters((u) => (/(compactor|ingester-2)$/.test(u.desired.unit.name) ? { ...u, taskDefinitionCurrent: false } : u));
    const updates = plan(analysis, { cluster: "logging", namespaceId: "ns-1", deleteOrphans: true }).actions.filter((a) => a.kind === "UpdateService");
    expect(updates.map((a) => a.unit).sort()).toEqual(["prod-logs-compactor", "prod-logs-ingester-2"]);
    for (const a of updates) if (a.kind === "UpdateService") expect(a.input.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
  });
});
