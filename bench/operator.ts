// The operator at its scale target: 50 stacks of 8 units (1x.pico: 5
// components and 3 ingester ordinals) in one process, against the local
// control plane. Prints the cost of converging from nothing, then for a
// steady resync: its time and its calls next to the poller's lower bound
//   L = ceil(P/50) + ceil(S·C/10) + ceil(T/100) + namespaces
// (P parameters, S stacks, C units per stack, T running tasks), and memory.
// Asserts nothing.
import { DISCOVERY_MAX_AGE_MS } from "../src/controllers/reconciler.ts";
import { benchReconciler, convergeAll, fleet } from "./fleet.ts";

const STACKS = 50;
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const f = await fleet(STACKS);
  const { cp } = f;
  const reconciler = benchReconciler(f, f.cp);

  let t0 = performance.now();
  const passes = await convergeAll(reconciler);
  const convergeSeconds = (performance.now() - t0) / 1000;
  const convergeCalls = cp.calls();
  const services = Object.values(cp.ecs.state.services).filter((s) => s.status === "ACTIVE").length;
  const tasks = Object.values(cp.ecs.state.tasks).filter((t) => t.desiredStatus === "RUNNING").length;
  const params = Object.keys(cp.ssm.state.parameters).length;
  const registries = Object.keys(cp.discovery.state.services).length;

  const RESYNCS = 10;
  cp.resetCalls();
  const writesBefore = cp.writes().length;
  const steady: number[] = [];
  for (let i = 0; i < RESYNCS; i++) {
    t0 = performance.now();
    await reconciler.pass({ mode: "apply" });
    steady.push(performance.now() - t0);
  }
  const steadyWrites = cp.writes().length - writesBefore;
  const perResync = Object.fromEntries(Object.entries(cp.calls().calls).map(([k, v]) => [k, v / RESYNCS]));
  gc?.();
  const mem = process.memoryUsage();
  await cp.stop();

  const unitsPerStack = services / STACKS;
  const bound = {
    "ssm.DescribeParameters": Math.ceil(params / 50),
    "ecs.DescribeServices": Math.ceil((STACKS * unitsPerStack) / 10),
    "ecs.ListTasks": Math.ceil(tasks / 100),
    "servicediscovery.ListServices": 1,
  };
  const L = Object.values(bound).reduce((a, b) => a + b, 0);
  const reads = Object.values(perResync).reduce((a, b) => a + b, 0);
  // Cloud Map filters after paging ("Cloud Map gets MaxResults services and then filters them", ListServices API
  // reference): listing one namespace walks every service of the account, 100 a page.
  const cloudMapPages = Math.ceil(registries / 100);
  const writes = Object.entries(convergeCalls.calls).filter(([k]) => /Create|Update|Register|Put|Delete|Stop|Tag/.test(k)).reduce((n, [, v]) => n + v, 0);
  const sorted = [...steady].sort((a, b) => a - b);
  console.log(`operator, ${STACKS} stacks × ${unitsPerStack} units on one cluster: ${services} services, ${tasks} running tasks, ${params} parameters, ${registries} Cloud Map services in one namespace`);
  console.log(`  converge from nothing: ${passes} passes, ${convergeSeconds.toFixed(1)} s, ${convergeCalls.total} calls (${writes} writes)`);
  console.log(`  steady resync (refresh + 50 reconciles): median ${sorted[RESYNCS >> 1]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms (a resync period is 30 s); ${steadyWrites} writes in ${RESYNCS} resyncs`);
  console.log("  reads per steady resync vs the poller's lower bound:");
  for (const k of [...new Set([...Object.keys(bound), ...Object.keys(perResync)])]) {
    console.log(`    ${k.padEnd(30)} ${String(perResync[k] ?? 0).padStart(5)}   (bound ${bound[k as keyof typeof bound] ?? 0})`);
  }
  // The Cloud Map view is read in full every DISCOVERY_MAX_AGE_MS (and before any Cloud Map write): its share of a 30 s resync.
  const cloudMapShare = (cloudMapPages * 30_000) / DISCOVERY_MAX_AGE_MS;
  console.log(`    ${"total".padEnd(30)} ${String(reads).padStart(5)}   (L = ${L})`);
  console.log(`    plus Cloud Map: ${cloudMapPages} account-wide pages every ${DISCOVERY_MAX_AGE_MS / 1000} s = ${cloudMapShare} per 30 s resync: ${reads + cloudMapShare} ≤ L = ${L}`);
  console.log(`  memory (operator and control plane in one process): rss ${mb(mem.rss)}, heap used ${mb(mem.heapUsed)} (before: ${mb(heapBefore)})`);
}

await main();
