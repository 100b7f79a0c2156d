// The operator guarding a real Loki: every ECS task is a real Loki process
// (src/local/tasks), a pusher sends numbered lines through the distributor
// the whole time, and the chaos the operator exists for strikes. Afterwards
// every acknowledged line must come back through the query frontend, and the
// process table must never have shown two compactors (outside the rogue one
// the operator removes) or two processes for one ingester ordinal.
import { readFileSync } from "node:fs";
import { RunTaskCommand } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import { LokiGateway } from "../../src/loki/gateway.ts";
import { LinePusher } from "../../src/runtime/pusher.ts";
import { until } from "../helpers/daemon.ts";
import { example } from "../helpers/operator.ts";
import { compacted, e2eUnavailable, indexFiles, ingesterRing, lokiImage, ProcessTable, realStack, tasksOf, untilSettled, urlsOf, watchIndex, type RealStack } from "./harness.ts";

const unavailable = e2eUnavailable();
if (unavailable) console.warn(unavailable);


const report: Record<string, unknown>[] = [];

async function chaosStep(name: string, rs: RealStack, table: ProcessTable, act: () => Promise<void>): Promise<void> {
  table.phase = name;
  await act();
  await untilSettled(rs);
  table.phase = "steady";
}

function spotKill(rs: RealStack, unit: string): void {
  const [task] = tasksOf(rs, unit);
  if (!task) throw new Error(`no task of ${unit}`);
  rs.h.cp.kill(task.arn, "SpotInterruption");
}

/** Pushes until the pusher has `more` new acknowledgements, then stops it; reads every line back (polling: see below). */
async function finish(rs: RealStack, pusher: LinePusher, table: ProcessTable, frontendUnit: string, more = 40) {
  const target = pusher.acknowledged.size + more;
  await until(() => pusher.acknowledged.size >= target, 600, 100);
  const pushed = await pusher.stop();
  table.stop();
  // Chunks flushed by an ingester that shut down are found through the index it
  // uploaded, which queriers see once the index gateway synced it: poll.
  const verify = () => pusher.verify(urlsOf(rs, frontendUnit)[0]!);
  const verified = await until(async () => {
    const v = await verify();
    return v.lost.length === 0 ? v : undefined;
  }, 60, 5000).catch(verify);
  return { pushed, verified };
}

/** Someone starts a second task of a singleton with RunTask, as when debugging. */
async function runRogue(rs: RealStack, unit: string): Promise<void> {
  const service = rs.h.cp.ecs.state.services[`${rs.cluster}/${unit}`]!;
  const vpc = service.networkConfiguration!.awsvpcConfiguration!;
  await rs.h.ecs.send(
    new RunTaskCommand({
      cluster: rs.cluster,
      taskDefinition: service.taskDefinition,
      launchType: "FARGATE",
      networkConfiguration: { awsvpcConfiguration: { subnets: vpc.subnets ?? [], securityGroups: vpc.securityGroups ?? [] } },
      startedBy: "someone-debugging",
    }),
  );
}

/** What the local S3 answered with an error, by action and code (a missing key is a normal 404). */
function s3Errors(rs: RealStack): Record<string, number> {
  return Object.fromEntries(Object.entries(rs.h.cp.calls().errors).filter(([k]) => k.startsWith("s3.")));
}

/** The Loki logs of every task a service ever ran (stopped ones too). */
function lokiLogs(rs: RealStack, unit: string): string {
  return Object.values(rs.h.cp.ecs.state.tasks)
    .filter((t) => t.group === `service:${unit}`)
    .map((t) => readFileSync(rs.h.cp.runner!.logFile(t, "loki"), "utf8"))
    .join("");
}

describe.skipIf(unavailable !== undefined)("a real Loki under the operator", () => {
  it("keeps every acknowledged line of a microservices stack with three ingesters through a Spot kill, a full rollout, scaling 3 → 4 → 3, a compactor kill and a rogue compactor; the compactor compacts the index in the local S3", async () => {
    const spec = example("demo")
      .replace(/image: grafana\/loki:\S+/, `image: ${lokiImage()}`)
      .replace("drift: { policy: repair }", "drift: { policy: repair }\n  replicationFactor: 2\n  template: { ingester: { replicas: 3 } }\n  configOverrides: { compactor: { compaction_interval: 30s } }");
    const rs = await realStack(spec);
    await untilSettled(rs);
    const table = new ProcessTable(rs, ["compactor"]);
    table.start();
    const bucket = "demo-loki-chunks";
    const indexWatch = watchIndex(rs, bucket);
    const pusher = new LinePusher({ distributors: () => urlsOf(rs, "demo-distributor"), rate: 20, labels: { job: "e2e", stack: "demo" } });
    pusher.start();
    await until(() => pusher.acknowledged.size >= 100, 300, 100);

    await chaosStep("spot-ingester", rs, table, async () => spotKill(rs, "demo-ingester-1"));
    await chaosStep("rollout", rs, table, () => rs.edit((d) => d.setIn(["spec", "limits", "max_query_series"], 600)));
    await chaosStep("scale-up", rs, table, () => rs.edit((d) => d.setIn(["spec", "template", "ingester", "replicas"], 4)));
    await chaosStep("scale-down", rs, table, () => rs.edit((d) => d.setIn(["spec", "template", "ingester", "replicas"], 3)));
    await chaosStep("spot-compactor", rs, table, async () => spotKill(rs, "demo-compactor"));
    await chaosStep("rogue-compactor", rs, table, () => runRogue(rs, "demo-compactor"));
    const { pushed, verified } = await finish(rs, pusher, table, "demo-query-frontend");
    const ring = await ingesterRing(urlsOf(rs, "demo-distributor")[0]!);
    const stale = ring.filter((m) => !/^demo-ingester-[0-2]$/.test(m.id) || m.state !== "ACTIVE");

    // Every ingester that shut down uploaded its index: several files per table, until the compactor merges them.
    const afterCompaction = await until(() => {
      const index = indexFiles(rs, bucket);
      return compacted(index) ? index : undefined;
    }, 120, 1000).catch(() => indexFiles(rs, bucket));
    indexWatch.stop();
    const before = indexWatch.most();
    const compactions = lokiLogs(rs, "demo-compactor").match(/msg="finished compacting table"/g)?.length ?? 0;

    report.push({
      stack: "microservices, 3 ingesters",
      acknowledged: pushed.acknowledged,
      lost: verified.lost.length,
      pushAttempts: pushed.attempts,
      failedPushes: pushed.failures,
      longestWriteOutageSeconds: pushed.longestOutageMs / 1000,
      twoCompactorMoments: table.compactorOverlaps(),
      ordinalOverlapMoments: table.ordinalOverlaps(),
      ringMembers: ring.map((m) => `${m.id}:${m.state}`),
      staleRingMembers: stale.length,
      mostIndexFilesPerTable: before,
      indexFilesAfterCompaction: Object.fromEntries([...afterCompaction].map(([k, v]) => [k, v.length])),
      compactionsLogged: compactions,
      s3ErrorAnswers: s3Errors(rs),
    });
    console.log(JSON.stringify(report.at(-1), null, 2));
    expect(verified.lost).toEqual([]);
    expect(pushed.acknowledged).toBeGreaterThan(500);
    // Two compactors only while the rogue one lived, never during a rollout or a replacement.
    expect(Object.keys(table.compactorOverlaps()).filter((phase) => phase !== "rogue-compactor")).toEqual([]);
    expect(table.ordinalOverlaps()).toBe(0);
    expect(stale).toEqual([]);
    expect(before).toBeGreaterThan(1);
    expect(compacted(afterCompaction)).toBe(true);
    expect(compactions).toBeGreaterThan(0);
  });

  it("keeps every acknowledged line of the monolithic example through a Spot kill, a rollout and a rogue second task", async () => {
    const spec = example("monolithic").replace(/image: grafana\/loki:\S+/, `image: ${lokiImage()}`);
    const rs = await realStack(spec);
    await untilSettled(rs);
    const unit = `${rs.name}-monolithic`;
    const table = new ProcessTable(rs, ["all"]);
    table.start();
    const pusher = new LinePusher({ distributors: () => urlsOf(rs, unit), rate: 20, labels: { job: "e2e", stack: rs.name } });
    pusher.start();
    await until(() => pusher.acknowledged.size >= 100, 300, 100);

    await chaosStep("spot", rs, table, async () => spotKill(rs, unit));
    await chaosStep("rollout", rs, table, () => rs.edit((d) => d.setIn(["spec", "limits", "max_query_series"], 600)));
    await chaosStep("rogue", rs, table, () => runRogue(rs, unit));
    const { pushed, verified } = await finish(rs, pusher, table, unit);
    report.push({
      stack: "monolithic",
      acknowledged: pushed.acknowledged,
      lost: verified.lost.length,
      pushAttempts: pushed.attempts,
      failedPushes: pushed.failures,
      longestWriteOutageSeconds: pushed.longestOutageMs / 1000,
      twoMonolithicMoments: table.compactorOverlaps(),
      s3ErrorAnswers: s3Errors(rs),
    });
    console.log(JSON.stringify(report.at(-1), null, 2));
    expect(verified.lost).toEqual([]);
    expect(Object.keys(table.compactorOverlaps()).filter((phase) => phase !== "rogue")).toEqual([]);

    // What FlushIngester reads from a real Loki, through the operator's gateway: one shutdown per
    // process, every later call 503, the task's own ring empty once its ingester stopped (shards
    // null), so only the module's state tells a clean shutdown; the process stays up.
    await rs.op.daemon.stop();
    const [task] = tasksOf(rs, unit).filter((t) => t.lastStatus === "RUNNING");
    const gateway = new LokiGateway();
    expect((await gateway.ring(task!.privateIp!)).map((m) => m.id)).toEqual([unit]);
    expect(await gateway.shutdown(task!.privateIp!)).toBe("flushed");
    expect(await gateway.shutdown(task!.privateIp!)).toBe("stopping");
    expect(await gateway.ring(task!.privateIp!)).toEqual([]);
    expect(await gateway.moduleState(task!.privateIp!, "ingester")).toBe("Terminated");
    expect(await gateway.ready(task!.privateIp!)).toMatchObject({ ready: false });
    expect(task!.lastStatus).toBe("RUNNING");
  });
});
