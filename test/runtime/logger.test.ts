// Logs: JSON lines for machines, and in a terminal one short line a person reads.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger, prettyMessage } from "../../src/runtime/logger.ts";

function capture(pretty: boolean) {
  let out = "";
  const destination = new Writable({
    write(chunk, _enc, done) {
      out += chunk.toString();
      done();
    },
  });
  return { log: createLogger({ pretty, destination, level: "info" }), text: () => out };
}

describe("pretty logs", () => {
  it("are one line: the stack, the message and the fields that matter, no JSON tail", () => {
    const { log, text } = capture(true);
    log.child({ stack: "demo" }).error(
      { event: "action", unit: "demo-ingester-3", component: "ingester", action: "FlushIngester", result: "failed", error: "HTTP 500: flushing chunks", repairs: ["Delete"] },
      "FlushIngester demo-ingester-3 failed",
    );
    const lines = text().split("\n").filter(Boolean);
    expect(lines).toHaveLength(1);
    const plain = lines[0]!.replace(/\u001b\[\d+m/g, "");
    expect(plain).toMatch(/^\[\d\d:\d\d:\d\d\] ERROR: demo · FlushIngester demo-ingester-3 failed result=failed error="HTTP 500: flushing chunks"$/);
    expect(plain).not.toContain("{");
  });

  it("keep every field in JSON mode", () => {
    const { log, text } = capture(false);
    log.info({ event: "action", unit: "demo-querier", result: "ok" }, "UpdateService demo-querier");
    expect(JSON.parse(text())).toMatchObject({ level: "info", event: "action", unit: "demo-querier", result: "ok", msg: "UpdateService demo-querier", app: "lokistack" });
  });

  it("leave out a result of ok and fields that are not there", () => {
    expect(prettyMessage({ msg: "UpdateService demo-querier", result: "ok", stack: "demo" })).toBe("demo · UpdateService demo-querier");
    expect(prettyMessage({ msg: "reconciled demo", outcome: "requeue" })).toBe("reconciled demo outcome=requeue");
  });
});
