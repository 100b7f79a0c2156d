import { describe, expect, it } from "vitest";
import { buildStatus, STATUS_LIMIT_BYTES, type StatusInput } from "../src/controllers/status.ts";

const base = (over: Partial<StatusInput> = {}): StatusInput => ({
  generation: 3,
  appliedGeneration: 3,
  cluster: "logging",
  deletionPolicy: "retain",
  invalid: [],
  warnings: [],
  suspended: false,
  reportOnly: false,
  schemas: [{ from: "2024-01-01", version: "v13", store: "tsdb" }],
  drifts: [],
  actionsTaken: 0,
  deferrals: [],
  errors: [],
  units: [{ name: "a-compactor", component: "compactor", desired: 1, ready: true, service: { status: "ACTIVE", runningCount: 1, pendingCount: 0 } }],
  owned: ["a-compactor"],
  now: new Date("2026-11-25T12:00:00Z"),
  ...over,
});

describe("status", () => {
  it("keeps lastTransitionTime while a condition's status holds, and moves it when it flips", () => {
    const first = buildStatus(base());
    const later = buildStatus(base({ previous: first, now: new Date("2026-11-25T13:00:00Z") }));
    expect(later).toEqual(first);
    const drifted = buildStatus(base({ previous: first, now: new Date("2026-11-25T14:00:00Z"), drifts: [{ kind: "DesiredCountChanged", stack: "a", unit: "a-compactor", component: "compactor", expected: 1, observed: 2, cause: "" }] }));
    const ready = drifted.conditions.find((c) => c.type === "Ready")!;
    expect(ready).toMatchObject({ status: "False", reason: "DriftDetected", lastTransitionTime: "2026-11-25T14:00:00.000Z" });
    expect(drifted.conditions.find((c) => c.type === "Degraded")!.lastTransitionTime).toBe("2026-11-25T12:00:00.000Z");
  });

  it("stays under the 4 KB standard tier for a large stack with long messages", () => {
    const units = Array.from({ length: 120 }, (_, i) => ({ name: `a-very-long-stack-name-for-logs-ingester-${i}`, component: "ingester", desired: 1, ready: false }));
    const s = buildStatus(
      base({
        units,
        owned: units.map((u) => u.name),
        invalid: Array.from({ length: 20 }, (_, i) => ({ path: `spec.template.querier.env.VAR_${i}`, message: "is not a valid key: must be an environment variable name" })),
        errors: ["x".repeat(2000)],
      }),
    );
    expect(Buffer.byteLength(JSON.stringify(s))).toBeLessThanOrEqual(STATUS_LIMIT_BYTES);
    expect(s.components.ingester).toEqual({ desired: 120, running: 0, pending: 0 });
  });
});
