// How many ECS calls per second the local control plane serves, and its memory,
// with 600 services and 2,000 tasks (50 stacks of 12 services, as the operator's
// scale target). Prints figures; asserts nothing.
import { CreateClusterCommand, CreateServiceCommand, DescribeServicesCommand, DescribeTasksCommand, ECSClient, ListTasksCommand, RegisterTaskDefinitionCommand } from "@aws-sdk/client-ecs";
import { startLocalControlPlane } from "../src/local/control-plane.ts";

const SERVICES = 600;
const TASKS = 2000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = 8;

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  gc?.();
  const baseline = process.memoryUsage();
  const cp = await startLocalControlPlane({ paused: true, seed: 1 });
  const ecs = new ECSClient({ ...cp.clientConfig, maxAttempts: 1 });
  const network = { awsvpcConfiguration: { subnets: ["subnet-0123456789abcdef0"], securityGroups: ["sg-0123456789abcdef0"] } };

  let t0 = performance.now();
  await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
  for (let i = 0; i < SERVICES; i++) {
    // 2,000 tasks over 600 services: 400 services with 3 tasks and 200 with 4.
    const desiredCount = i < 400 ? 3 : 4;
    await ecs.send(new RegisterTaskDefinitionCommand({
      family: `svc-${i}`, networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "256", memory: "512",
      containerDefinitions: [{ name: "loki", image: "grafana/loki:3.5.0", portMappings: [{ containerPort: 3100 }] }],
    }));
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: `svc-${i}`, taskDefinition: `svc-${i}`, desiredCount, launchType: "FARGATE", networkConfiguration: network }));
  }
  const setupMs = performance.now() - t0;

  t0 = performance.now();
  const ticks = 6;
  cp.step(ticks);
  const tickMs = (performance.now() - t0) / ticks;
  const running = Object.values(cp.ecs.state.tasks).filter((t) => t.lastStatus === "RUNNING").length;
  if (running !== TASKS) throw new Error(`expected ${TASKS} running tasks, have ${running}`);

  gc?.();
  const loaded = process.memoryUsage();

  const allArns: string[] = [];
  let token: string | undefined;
  do {
    const page = await ecs.send(new ListTasksCommand({ cluster: "logging", nextToken: token }));
    allArns.push(...page.taskArns!);
    token = page.nextToken;
  } while (token);

  // Each action alone, so one slow action does not hide the others' rate.
  const actions: Record<string, (i: number) => Promise<unknown>> = {
    DescribeServices: (i) =>
      ecs.send(new DescribeServicesCommand({ cluster: "logging", services: Array.from({ length: 10 }, (_, k) => `svc-${(i * 10 + k) % SERVICES}`) })),
    ListTasks: () => ecs.send(new ListTasksCommand({ cluster: "logging", maxResults: 100 })),
    DescribeTasks: (i) => ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: allArns.slice((i * 100) % TASKS, ((i * 100) % TASKS) + 100) })),
  };
  // The server's own share: the handler plus JSON encoding, without HTTP and the SDK.
  const serverSide: Record<string, number> = {};
  const direct: Record<string, (i: number) => Record<string, unknown>> = {
    DescribeServices: (i) => ({ cluster: "logging", services: Array.from({ length: 10 }, (_, k) => `svc-${(i * 10 + k) % SERVICES}`) }),
    ListTasks: () => ({ cluster: "logging", maxResults: 100 }),
    DescribeTasks: (i) => ({ cluster: "logging", tasks: allArns.slice((i * 100) % TASKS, ((i * 100) % TASKS) + 100) }),
  };
  for (const [action, input] of Object.entries(direct)) {
    const t = performance.now();
    for (let i = 0; i < 200; i++) JSON.stringify(cp.ecs.handle(action, input(i)));
    serverSide[action] = 200 / ((performance.now() - t) / 1000);
  }
  const rates: Record<string, number> = {};
  for (const [action, call] of Object.entries(actions)) {
    let n = 0;
    const deadline = performance.now() + (SECONDS * 1000) / 3;
    const t = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < deadline) await call(n++);
      }),
    );
    rates[action] = n / ((performance.now() - t) / 1000);
  }
  await cp.stop();

  console.log(`control plane, ${SERVICES} services / ${TASKS} tasks; ${CONCURRENCY} concurrent SDK clients in the same process (their work counts against the figures)`);
  console.log(`  setup (600 RegisterTaskDefinition + 600 CreateService, sequential): ${(setupMs / 1000).toFixed(1)} s`);
  console.log(`  scheduler tick with ${TASKS} tasks: ${tickMs.toFixed(1)} ms`);
  console.log("  action             through the SDK   server side only");
  for (const [action, rate] of Object.entries(rates)) {
    console.log(`  ${action.padEnd(17)}  ${`${rate.toFixed(0)} calls/s`.padEnd(16)}  ${serverSide[action]!.toFixed(0)} calls/s`);
  }
  console.log(`  memory with the state loaded: rss ${mb(loaded.rss)}, heap used ${mb(loaded.heapUsed)} (heap before start ${mb(baseline.heapUsed)})${gc ? "" : " (run with --expose-gc for settled figures)"}`);
}

await main();
