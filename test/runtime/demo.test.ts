// The npm start story end to end: converge, then chaos, each drift repaired.
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/runtime/logger.ts";
import { startDemo } from "../../src/runtime/demo.ts";
import { logSink, type LogLine } from "../helpers/operator.ts";

describe("npm start (the demo)", () => {
  it("converges the demo stack and repairs every chaos step, with a drift and an action in the log for each", async () => {
    const logs: LogLine[] = [];
    const destination = logSink(logs);
    const demo = await startDemo({ port: 0, tickMs: 50, resync: "* * * * * *", checkIntervalMs: 100, maxChecks: 200, logger: createLogger({ pretty: false, destination }) });
    try {
      const outcomes = await demo.chaos();
      expect(outcomes.map((o) => o.repaired)).toEqual([true, true, true, true]);
      const drifts = logs.filter((l) => l.event === "drift").map((l) => l.drift);
      expect(drifts).toEqual(expect.arrayContaining(["ExtraSingletonTask", "UnexpectedTaskReplacement", "DesiredCountChanged", "MissingService"]));
      const actions = logs.filter((l) => l.event === "action" && l.result === "ok").map((l) => `${l.action} ${l.unit}`);
      expect(actions).toEqual(expect.arrayContaining(["StopTask demo-compactor", "UpdateService demo-querier", "CreateService demo-distributor"]));
      expect(logs).toContainEqual(expect.objectContaining({ event: "demo", msg: expect.stringContaining("chaos is over") }));
    } finally {
      await demo.stop();
    }
  });
});
