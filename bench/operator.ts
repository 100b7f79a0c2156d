// The operator at its scale target: 50 stacks (600 services) in one process,
// against the local control plane. Prints the time and calls of a steady-state
// pass next to the batched lower bound, the cost of converging from nothing,
// and memory. Asserts nothing.
import { Writable } from "node:stream";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { readFileSync } from "node:fs";
import { CreatePrivateDnsNamespaceCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { DiscoveryGateway } from "../src/aws/discovery-gateway.ts";
import { EcsGateway } from "../src/aws/ecs-gateway.ts";
import { SsmGateway } from "../src/aws/ssm-gateway.ts";
import { WriteLimiter } from "../src/aws/write-limiter.ts";
import { Reconciler } from "../src/controllers/reconciler.ts";
import { startLocalControlPlane } from "../src/local/control-plane.ts";
import { createLogger } from "../src/runtime/logger.ts";

const STACKS = 50;
const CLUSTERS = 5;
const INGESTERS = 7; // 1x.pico plus 7 ingester ordinals: 12 services a stack
const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

const template = readFileSync(new URL("../manifests/examples/demo.yaml", import.meta.url), "utf8");
function spec(i: number): string {
  return template
    .replace("name: demo", `name: stack-${i}`)
    .replace("size: 1x.demo", "size: 1x.pico")
    .replace("cluster: logging", `cluster: logging-${i % CLUSTERS}`)
    .replace("drift: { policy: repair }", `replicationFactor: 2\n  template: { ingester: { replicas: ${INGESTERS} } }`);
}

async function main(): Promise<void> {
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const cp = await startLocalControlPlane({ tickMs: 20, seed: 7 });
  const config = { ...cp.clientConfig, maxAttempts: 5 };
  const ecs = new ECSClient(config);
  const ssm = new SSMClient(config);
  const discovery = new ServiceDiscoveryClient(config);
  for (let c = 0; c < CLUSTERS; c++) await ecs.send(new CreateClusterCommand({ clusterName: `logging-${c}` }));
  await discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
  for (let i = 0; i < STACKS; i++) await ssm.send(new PutParameterCommand({ Name: `/lokistack/stack-${i}/spec`, Value: spec(i), Type: "String" }));

  const quiet = new Writable({ write: (_c, _e, done) => done() });
  const reconciler = new Reconciler({
    prefix: "/lokistack",
    ecs: new EcsGateway(ecs),
    ssm: new SsmGateway(ssm),
    discovery: new DiscoveryGateway(discovery),
    // The real budget would make converging 600 services take minutes by design; the bench measures the operator.
    limiter: new WriteLimiter({ service: { rate: 1e6, burst: 1e6 }, taskDefinition: { rate: 1e6, burst: 1e6 }, task: { rate: 1e6, burst: 1e6 }, tag: { rate: 1e6, burst: 1e6 }, parameter: { rate: 1e6, burst: 1e6 }, discovery: { rate: 1e6, burst: 1e6 } }),
    logger: createLogger({ pretty: false, destination: quiet, level: "silent" }),
  });

  let t0 = performance.now();
  let passes = 0;
  for (;;) {
    passes++;
    const results = await reconciler.pass({ mode: "apply" });
    const settled = results.every((r) => r.drifts.length === 0 && r.planned.length === 0 && r.deferrals.length === 0 && r.status?.conditions.some((c) => c.type === "Ready" && c.status === "True"));
    if (settled) break;
    if (passes > 200) throw new Error("did not converge");
    await new Promise((r) => setTimeout(r, 150));
  }
  const convergeSeconds = (performance.now() - t0) / 1000;
  const convergeCalls = cp.calls();
  const services = Object.values(cp.ecs.state.services).filter((s) => s.status === "ACTIVE").length;
  const tasks = Object.values(cp.ecs.state.tasks).filter((t) => t.lastStatus === "RUNNING").length;
  const params = Object.keys(cp.ssm.state.parameters).length;

  cp.resetCalls();
  const steady: number[] = [];
  for (let i = 0; i < 5; i++) {
    t0 = performance.now();
    await reconciler.pass({ mode: "apply" });
    steady.push(performance.now() - t0);
  }
  const perPass = Object.fromEntries(Object.entries(cp.calls().calls).map(([k, v]) => [k, v / 5]));
  gc?.();
  const mem = process.memoryUsage();
  await cp.stop();

  const tasksPerCluster = tasks / CLUSTERS;
  const servicesPerCluster = services / CLUSTERS;
  const lowerBound = {
    "ssm.GetParametersByPath": Math.ceil(params / 10),
    "ecs.DescribeServices": CLUSTERS * Math.ceil(servicesPerCluster / 10),
    "ecs.ListTasks": CLUSTERS * Math.ceil(tasksPerCluster / 100),
    // One namespace shared by all stacks: one page of its services each pass.
    "servicediscovery.ListServices": Math.ceil(services / 100),
  };
  const writes = Object.entries(convergeCalls.calls).filter(([k]) => /Create|Update|Register|Put|Delete|Stop|Tag/.test(k)).reduce((n, [, v]) => n + v, 0);
  console.log(`operator, ${STACKS} stacks on ${CLUSTERS} clusters: ${services} services, ${tasks} running tasks, ${params} parameters`);
  console.log(`  converge from nothing: ${passes} passes, ${convergeSeconds.toFixed(1)} s, ${convergeCalls.total} calls (${writes} writes)`);
  console.log(`  steady-state pass: median ${steady.sort((a, b) => a - b)[2]!.toFixed(0)} ms (a resync period is 30 s)`);
  console.log("  calls per steady-state pass vs the batched lower bound:");
  for (const [k, v] of Object.entries({ ...lowerBound, ...perPass })) {
    console.log(`    ${k.padEnd(30)} ${String(perPass[k] ?? 0).padStart(4)}   (lower bound ${lowerBound[k as keyof typeof lowerBound] ?? 0})`);
  }
  console.log(`  memory (operator and control plane in one process): rss ${mb(mem.rss)}, heap used ${mb(mem.heapUsed)} (before: ${mb(heapBefore)})`);
}

await main();
