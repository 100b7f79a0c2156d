// Safety under throttling: the daemon (10 s resync) guards 10 stacks while
// half of all ECS calls are throttled. At random moments a rogue compactor
// (RunTask of the compactor's revision) and a second task of an ingester
// ordinal are started; each lifetime is measured from the control plane's
// task states (start → desiredStatus STOPPED), in seconds and in resyncs.
// Asserts nothing.
import { DescribeTaskDefinitionCommand, RunTaskCommand } from "@aws-sdk/client-ecs";
import { makeClients } from "../src/aws/clients.ts";
import { Daemon } from "../src/runtime/daemon.ts";
import { OperatorMetrics } from "../src/runtime/metrics.ts";
import { benchReconciler, fleet, silentLogger } from "./fleet.ts";

const STACKS = 10;
const ROUNDS = 8;
const RESYNC = "*/10 * * * * *";
const THROTTLED = 0.5;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const f = await fleet(STACKS, { size: "1x.demo", name: "s", tickMs: 50, seed: 11 });
  const { cp, ecs: ecsAdmin } = f;
  // The operator exactly as `lokistack run` configures its clients (standard retries, 4 attempts, timeouts).
  const logger = silentLogger();
  const reconciler = benchReconciler(makeClients({ endpoint: cp.endpoint, region: cp.region }), cp, { logger, resyncSeconds: 10 });
  const daemon = new Daemon({ reconciler, logger, metrics: new OperatorMetrics(), resync: RESYNC, watchIntervalMs: 5000 });
  await daemon.start();
  // Converged: every stack's six units run their one task.
  const ready = () => Object.values(cp.ecs.state.tasks).filter((t) => t.lastStatus === "RUNNING" && t.group.startsWith("service:")).length === STACKS * 6;
  while (!ready()) await sleep(500);

  cp.faults.update({ throttle: { "ecs.*": THROTTLED } });
  const lifetimes: { seconds: number; resyncs: number; what: string }[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await sleep(Math.random() * 10_000);
    const stack = `s-${round % STACKS}`;
    // Throttling pauses for the injection itself (milliseconds), so the duplicates start at a known moment.
    cp.faults.update({ throttle: {} });
    const compactor = (await ecsAdmin.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${stack}-compactor` }))).taskDefinition!.taskDefinitionArn!;
    const network = { awsvpcConfiguration: { subnets: ["subnet-0a1b2c3d4e5f60001"], securityGroups: ["sg-0a1b2c3d4e5f60001"] } };
    const injected = await Promise.all([
      ecsAdmin.send(new RunTaskCommand({ cluster: "logging", taskDefinition: compactor, launchType: "FARGATE", networkConfiguration: network, startedBy: "rogue" })).then((r) => ({ arn: r.tasks![0]!.taskArn!, what: "compactor" })),
      ecsAdmin.send(new RunTaskCommand({ cluster: "logging", taskDefinition: `${stack}-ingester-0`, launchType: "FARGATE", networkConfiguration: network })).then((r) => ({ arn: r.tasks![0]!.taskArn!, what: "ordinal" })),
    ]);
    cp.faults.update({ throttle: { "ecs.*": THROTTLED } });
    const started = performance.now();
    const resyncsBefore = daemon.passCount;
    const pending = new Map(injected.map((t) => [t.arn, t.what]));
    while (pending.size > 0) {
      for (const [arn, what] of pending) {
        if (Object.values(cp.ecs.state.tasks).find((t) => t.arn === arn)?.desiredStatus === "STOPPED") {
          lifetimes.push({ seconds: (performance.now() - started) / 1000, resyncs: daemon.passCount - resyncsBefore, what });
          pending.delete(arn);
        }
      }
      await sleep(50);
    }
  }
  const throttledCalls = Object.entries(cp.calls().errors).filter(([k]) => k.endsWith("ThrottlingException")).reduce((n, [, v]) => n + v, 0);
  await daemon.stop();
  await cp.stop();

  const secs = lifetimes.map((l) => l.seconds).sort((a, b) => a - b);
  const resyncs = Math.max(...lifetimes.map((l) => l.resyncs));
  const periods = secs.at(-1)! / 10;
  console.log(`safety under throttling: ${STACKS} stacks, resync every 10 s, ${THROTTLED * 100}% of ECS calls throttled (${throttledCalls} throttled calls)`);
  console.log(`  ${lifetimes.length} duplicates (rogue compactors and second ordinal tasks) injected at random moments`);
  console.log(`  lifetime until StopTask, from the control plane's task states: min ${secs[0]!.toFixed(1)} s, median ${secs[secs.length >> 1]!.toFixed(1)} s, max ${secs.at(-1)!.toFixed(1)} s`);
  console.log(`  longest lifetime: ${periods.toFixed(1)} resync periods; resyncs completed while a duplicate lived, at most: ${resyncs} (target: stopped within two)`);
}

await main();
