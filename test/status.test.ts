import { describe, expect, it } from "vitest";
import { buildStatus, HEARTBEAT_SECONDS, isStale, STATUS_LIMIT_BYTES, statusNeedsWrite, type StatusInput } from "../src/controllers/status.ts";

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
  creating: false,
  units: [{ name: "a-compactor", component: "compactor", desired: 1, ready: true, service: { status: "ACTIVE", runningCount: 1, pendingCount: 0 } }],
  owned: ["a-compactor"],
  now: new Date("2026-11-25T12:00:00Z"),
  ...over,
});

describe("status", () => {
  it("keeps lastTransitionTime while a condition's status holds, and moves it when it flips", () => {
    const first = buildStatus(base());
    const later = buildStatus(base({ previous: first, now: new Date("2026-11-25T13:00:00Z") }));
    expect(later).toEqual({ ...first, lastReconcileTime: "2026-11-25T13:00:00.000Z" });
    const drifted = buildStatus(base({ previous: first, now: new Date("2026-11-25T14:00:00Z"), drifts: [{ kind: "DesiredCountChanged", stack: "a", unit: "a-compactor", component: "compactor", from: 2, to: 1 }] }));
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

describe("write on change, with a heartbeat", () => {
  const at = (iso: string) => new Date(iso);
  it("is not rewritten when only the reconcile time moved, until the heartbeat is due", () => {
    const first = buildStatus(base({ resyncSeconds: 30 }));
    const soon = buildStatus(base({ previous: first, resyncSeconds: 30, now: at("2026-11-25T12:04:00Z") }));
    expect(statusNeedsWrite(first, soon, at("2026-11-25T12:04:00Z"))).toBe(false);
    const due = buildStatus(base({ previous: first, resyncSeconds: 30, now: at("2026-11-25T12:05:00Z") }));
    expect(statusNeedsWrite(first, due, at("2026-11-25T12:05:00Z"))).toBe(true);
    const changed = buildStatus(base({ previous: first, resyncSeconds: 30, now: at("2026-11-25T12:00:30Z"), errors: ["boom"] }));
    expect(statusNeedsWrite(first, changed, at("2026-11-25T12:00:30Z"))).toBe(true);
  });

  it("reads as stale once a heartbeat and three resyncs passed without a write", () => {
    const s = buildStatus(base({ resyncSeconds: 30 }));
    expect(s).toMatchObject({ lastReconcileTime: "2026-11-25T12:00:00.000Z", heartbeatSeconds: HEARTBEAT_SECONDS, resyncSeconds: 30 });
    expect(isStale(s, at("2026-11-25T12:06:30Z"))).toBe(false);
    expect(isStale(s, at("2026-11-25T12:06:31Z"))).toBe(true);
  });

  it("a stack being created is Creating, not drifted", () => {
    const s = buildStatus(base({ creating: true, units: [{ name: "a-compactor", component: "compactor", desired: 1, ready: false }], owned: [] }));
    expect(s.conditions.find((c) => c.type === "Progressing")).toMatchObject({ status: "True", reason: "Creating" });
    expect(s.conditions.find((c) => c.type === "Ready")).toMatchObject({ status: "False", reason: "Creating" });
    expect(s.lastDrift).toBeUndefined();
  });
});
