// Loki-aware safety on a real Loki: with replication factor 1 every line lives
// in exactly one ingester, so an ingester that goes away without flushing
// loses lines, and one whose flushed lines wait for the index gateway's next
// listing leaves them invisible for that long. The operator flushes an
// ordinal (/ingester/shutdown) before it scales it to 0, for a scale-down and
// for a deleted stack; a replaced ingester takes its ordinal's ring identity
// back, so no ghost stays in the ring. Every acknowledged line must be found
// again, in the end through a new stack on the same bucket.
import { readFileSync } from "node:fs";
import { DeleteParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import type { TaskState } from "../../src/local/ecs/model.ts";
import { LinePusher } from "../../src/runtime/pusher.ts";
import { until } from "../helpers/daemon.ts";
import { example } from "../helpers/operator.ts";
import { e2eUnavailable, ingesterRing, lokiImage, realStack, tasksOf, untilSettled, urlsOf, VisibilityWatch, type RealStack } from "./harness.ts";

const unavailable = e2eUnavailable();
if (unavailable) console.warn(unavailable);

const SPEC = () =>
  example("demo")
    .replace(/image: grafana\/loki:\S+/, `image: ${lokiImage()}`)
    .replace("drift: { policy: repair }", "drift: { policy: repair }\n  deletionPolicy: delete\n  template: { ingester: { replicas: 4 } }");

/** Every task the service ever ran, stopped ones too. */
const everyTask = (rs: RealStack, unit: string): TaskState[] => Object.values(rs.h.cp.ecs.state.tasks).filter((t) => t.group === `service:${unit}`);

/** The times (epoch ms) of the Loki log lines of a task whose message matches. */
function logTimes(rs: RealStack, task: TaskState, message: RegExp): number[] {
  return readFileSync(rs.h.cp.runner!.logFile(task, "loki"), "utf8")
    .split("\n")
    .filter((l) => message.test(l))
    .map((l) => Date.parse(/\bts=(\S+)/.exec(l)?.[1] ?? ""))
    .filter((t) => !Number.isNaN(t));
}

/** How an ingester's task ended: whether it flushed and left the ring before ECS was asked to stop it. */
function flushedBeforeStop(rs: RealStack, task: TaskState): { streams: number; leftRing: boolean; stoppingAt: string } {
  const stopping = (task.stoppingAt ?? Infinity) * 1000;
  return {
    streams: logTimes(rs, task, /msg="flushing stream"/).filter((t) => t <= stopping).length,
    leftRing: logTimes(rs, task, /msg="instance removed from the KV store"/).some((t) => t <= stopping),
    stoppingAt: new Date(stopping).toISOString(),
  };
}

describe.skipIf(unavailable !== undefined)("ingesters under the operator, replication factor 1", () => {
  it("scaling 4 → 3 and deleting the stack flush each ordinal before its task stops and lose no acknowledged line; a replaced ingester leaves no ghost", async () => {
    const rs = await realStack(SPEC());
    await untilSettled(rs, 900);
    const pusher = new LinePusher({ distributors: () => urlsOf(rs, "demo-distributor"), rate: 20, labels: { job: "e2e-ingesters" }, streams: 16 });
    const watch = new VisibilityWatch(pusher, () => urlsOf(rs, "demo-query-frontend")[0]);
    pusher.start();
    watch.start();
    await until(() => pusher.acknowledged.size >= 200, 300, 100);
    pusher.phase();

    // 4 → 3: ingester-3 flushes and leaves the ring, then its service goes to 0 and away.
    const [leaving] = tasksOf(rs, "demo-ingester-3");
    await rs.edit((d) => d.setIn(["spec", "template", "ingester", "replicas"], 3));
    await untilSettled(rs);
    const scaleDown = pusher.phase();
    const scaleDownFlush = flushedBeforeStop(rs, leaving!);

    // A replaced ingester (Spot) comes back as the same ring member.
    rs.h.cp.kill(tasksOf(rs, "demo-ingester-1")[0]!.arn, "SpotInterruption");
    await untilSettled(rs);
    const ring = await ingesterRing(urlsOf(rs, "demo-distributor")[0]!);

    // Until every line is visible again: how long the longest stayed invisible.
    await until(() => watch.reads > 20 && watch.stillMissing() === 0, 120, 3000).catch(() => undefined);
    watch.stop();
    const invisibleMs = watch.longestInvisibleMs();
    const missingAfterWait = watch.stillMissing();

    // Deleting the stack, pushing all along: every ingester flushes before it stops.
    const ingesters = [0, 1, 2].map((i) => tasksOf(rs, `demo-ingester-${i}`)[0]!);
    const parameter = `/lokistack/${rs.name}/spec`;
    // As seeded: its S3 is the control plane's, on the task network.
    const seeded = rs.h.cp.ssm.state.parameters[parameter]!.versions.at(-1)!.value;
    await rs.h.ssm.send(new DeleteParameterCommand({ Name: parameter }));
    await until(() => rs.h.cp.ssm.state.parameters[`/lokistack/${rs.name}/status`] === undefined, 900, 1000);
    const pushed = await pusher.stop();
    const deletionFlush = ingesters.map((t) => flushedBeforeStop(rs, t));
    const leftovers = Object.values(rs.h.cp.ecs.state.tasks)
      .filter((t) => t.lastStatus !== "STOPPED" && t.family.startsWith("demo-"))
      .map((t) => `${t.group} ${t.lastStatus}`);

    // A new stack on the same bucket reads everything back.
    await rs.h.ssm.send(new PutParameterCommand({ Name: parameter, Value: seeded.replace(/replicas: \d+/, "replicas: 1"), Type: "String" }));
    await untilSettled(rs, 900);
    const verify = () => pusher.verify(urlsOf(rs, "demo-query-frontend")[0]!);
    const verified = await until(async () => ((await verify()).lost.length === 0 ? verify() : undefined), 60, 5000).catch(verify);

    const figures = {
      acknowledged: pushed.acknowledged,
      lost: verified.lost.length,
      scaleDownOutageMs: scaleDown.longestOutageMs,
      failedPushes: pushed.failures,
      longestInvisibleMs: invisibleMs,
      invisibleAfterWait: missingAfterWait,
      visibilityReads: watch.reads,
      ring: ring.map((m) => `${m.id} ${m.state}`),
      scaleDownFlush,
      deletionFlush,
      deletionLeftovers: leftovers,
    };
    console.log(`ingesters e2e figures: ${JSON.stringify(figures, null, 2)}`);

    expect(rs.logs).toContainEqual(expect.objectContaining({ event: "action", action: "FlushIngester", unit: "demo-ingester-3", result: "ok" }));
    expect(scaleDownFlush.leftRing).toBe(true);
    expect(scaleDownFlush.streams).toBeGreaterThan(0);
    for (const f of deletionFlush) expect(f.leftRing).toBe(true);
    expect(everyTask(rs, "demo-ingester-3").length).toBe(1);
    expect(ring.map((m) => m.id)).toEqual(["demo-ingester-0", "demo-ingester-1", "demo-ingester-2"]);
    expect(ring.every((m) => m.state === "ACTIVE")).toBe(true);
    expect(missingAfterWait).toBe(0);
    expect(leftovers).toEqual([]);
    expect(verified.lost).toEqual([]);
    await rs.op.daemon.stop();
  });
});
