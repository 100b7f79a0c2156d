// `npm start`: the whole story on the embedded control plane. The operator
// converges the demo stack, then a short chaos script strikes (a rogue
// compactor, a Spot interruption, a hand-scaled service, a deleted service)
// and the log shows each drift and its repair. Then it keeps running, with the
// endpoint printed, so a person can edit the spec and watch it converge.
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { DeleteServiceCommand, DescribeTaskDefinitionCommand, RunTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import type { Logger } from "pino";
import { parseStatus } from "../controllers/status.ts";
import { startLocalControlPlane, type LocalControlPlane } from "../local/control-plane.ts";
import { DEFAULT_PREFIX, statusParameterName } from "../resources/render.ts";
import { chooseTasks, REAL_TASKS_HOWTO, seedStack, type TaskMode } from "./local.ts";
import { LinePusher } from "./pusher.ts";
import { createLogger } from "./logger.ts";
import { createOperator, type Operator } from "./operator.ts";

export const DEMO_SPEC = fileURLToPath(new URL("../../manifests/examples/demo.yaml", import.meta.url));

export interface DemoOptions {
  port?: number;
  tickMs?: number;
  resync?: string;
  logger?: Logger;
  /** Give up waiting for a repair after this many status checks. */
  maxChecks?: number;
  checkIntervalMs?: number;
  /** simulated (the default here), real, or auto (real when a Loki binary and root are there): what `npm start` passes. */
  tasks?: TaskMode;
  lokiBin?: string;
}

/** Loki's HTTP address on each RUNNING task of a service, as a load balancer in front of them would have it. */
export function runningTaskUrls(cp: LocalControlPlane, service: string): string[] {
  return Object.values(cp.ecs.state.tasks)
    .filter((t) => t.group === `service:${service}` && t.lastStatus === "RUNNING" && t.desiredStatus === "RUNNING")
    .map((t) => `http://${t.privateIp}:3100`);
}

export interface Demo {
  cp: LocalControlPlane;
  operator: Operator;
  /** Runs the chaos script; resolves with each step's name and whether it was repaired. */
  chaos(): Promise<{ step: string; repaired: boolean; seconds: number }[]>;
  stop(): Promise<void>;
}

export async function startDemo(options: DemoOptions = {}): Promise<Demo> {
  const logger = options.logger ?? createLogger();
  const tasks = chooseTasks(options.tasks ?? "simulated", options.lokiBin);
  const cp = await startLocalControlPlane({ port: options.port ?? 4566, tickMs: options.tickMs ?? 250, ...tasks.options });
  if (tasks.note) logger.info({ event: "demo", tasks: cp.runner ? "real" : "simulated" }, tasks.note);
  const stack = await seedStack(cp, DEMO_SPEC);
  const operator = createOperator({
    endpoint: cp.endpoint,
    region: cp.region,
    resync: options.resync ?? "*/2 * * * * *",
    lease: "s3://lokistack-operator/leader",
    leaseMs: 6000,
    watchIntervalMs: 1000,
    logger,
    // Simulated tasks have no network of their own: the control plane answers for their Loki.
    ...(cp.runner ? {} : { lokiProxy: cp.endpoint }),
  });
  await operator.clients.s3.send(new CreateBucketCommand({ Bucket: "lokistack-operator" }));
  logger.info(
    {
      event: "demo",
      endpoint: cp.endpoint,
      env: `AWS_ENDPOINT_URL=${cp.endpoint} AWS_REGION=${cp.region} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local`,
    },
    `local AWS control plane on ${cp.endpoint}; LokiStack '${stack.name}' seeded; starting the operator`,
  );
  await operator.daemon.start();

  const ready = async (): Promise<boolean> => {
    const s = parseStatus((await operator.ssm.get(statusParameterName(DEFAULT_PREFIX, stack.name)))?.Value);
    return s?.conditions.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  };
  // stop() (Ctrl-C) ends the chaos wherever it is: nothing may strike a control plane that is gone.
  const stopping = new AbortController();
  const waitReady = async (after: number): Promise<boolean> => {
    const passesBefore = operator.daemon.passCount;
    for (let i = 0; i < (options.maxChecks ?? (cp.runner ? 600 : 240)) && !stopping.signal.aborted; i++) {
      // A repair counts only once a pass has run since the chaos struck.
      if (operator.daemon.passCount > passesBefore + after && (await ready())) return true;
      await sleep(options.checkIntervalMs ?? 500, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
    return false;
  };

  // With real tasks a client pushes numbered lines through the distributor the whole time, so
  // the chaos has real consequences: a count of acknowledged lines, and whether any was lost.
  const pusher = cp.runner ? new LinePusher({ distributors: () => runningTaskUrls(cp, `${stack.name}-distributor`), rate: 10, labels: { job: "demo-pusher" } }) : undefined;
  const pushed = () => {
    const r = pusher!.report();
    return { acknowledged: r.acknowledged, failedPushes: r.failures, longestOutageSeconds: r.longestOutageMs / 1000 };
  };

  const ecs = operator.clients.ecs;
  const network = { awsvpcConfiguration: { subnets: stack.spec.network.subnets, securityGroups: stack.spec.network.securityGroups } };
  const steps: { step: string; strike: () => Promise<unknown> }[] = [
    {
      step: "a rogue compactor is started by hand with RunTask",
      strike: async () => {
        const td = (await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: `${stack.name}-compactor` }))).taskDefinition!;
        return ecs.send(new RunTaskCommand({ cluster: stack.spec.cluster, taskDefinition: td.taskDefinitionArn, launchType: "FARGATE", networkConfiguration: network, startedBy: "someone-debugging" }));
      },
    },
    {
      step: "a Spot interruption kills the ingester's task",
      strike: async () => {
        const task = Object.values(cp.ecs.state.tasks).find((t) => t.group === `service:${stack.name}-ingester-0` && t.lastStatus === "RUNNING");
        if (task) cp.kill(task.arn, "SpotInterruption");
      },
    },
    {
      step: "someone scales the querier to 3 by hand",
      strike: () => ecs.send(new UpdateServiceCommand({ cluster: stack.spec.cluster, service: `${stack.name}-querier`, desiredCount: 3 })),
    },
    {
      step: "someone deletes the distributor service",
      strike: () => ecs.send(new DeleteServiceCommand({ cluster: stack.spec.cluster, service: `${stack.name}-distributor`, force: true })),
    },
  ];

  return {
    cp,
    operator,
    async chaos() {
      const converged = await waitReady(0);
      logger.info({ event: "demo", converged }, converged ? `'${stack.name}' is Ready: chaos begins` : `'${stack.name}' did not become Ready`);
      if (pusher) {
        pusher.start();
        logger.info({ event: "pusher", distributor: `${stack.name}-distributor` }, "a client pushes 10 numbered log lines a second through the distributor");
      }
      const outcomes = [];
      for (const [i, s] of steps.entries()) {
        if (stopping.signal.aborted) break;
        const t0 = performance.now();
        logger.warn({ event: "chaos", step: i + 1, of: steps.length }, `chaos ${i + 1}/${steps.length}: ${s.step}`);
        await s.strike();
        const repaired = await waitReady(1);
        if (stopping.signal.aborted) break;
        const seconds = Math.round((performance.now() - t0) / 100) / 10;
        logger.info({ event: "chaos", step: i + 1, repaired, seconds }, repaired ? `repaired in ${seconds} s` : "not repaired in time");
        if (pusher) logger.info({ event: "pusher", ...pushed() }, `${pushed().acknowledged} lines acknowledged so far, ${pushed().failedPushes} pushes failed`);
        outcomes.push({ step: s.step, repaired, seconds });
      }
      if (stopping.signal.aborted) return outcomes;
      if (pusher) {
        await pusher.stop();
        const frontend = runningTaskUrls(cp, `${stack.name}-query-frontend`)[0];
        const verified = frontend ? await pusher.verify(frontend).catch(() => undefined) : undefined;
        logger.info(
          { event: "pusher", ...pushed(), found: verified?.found, lost: verified?.lost.length },
          verified
            ? `read back through the query frontend: ${verified.found} of ${verified.acknowledged} acknowledged lines found, ${verified.lost.length} lost`
            : "could not read the lines back through the query frontend",
        );
      } else {
        logger.info({ event: "demo" }, `These tasks were simulated. ${REAL_TASKS_HOWTO}`);
      }
      logger.info(
        { event: "demo", endpoint: cp.endpoint },
        `chaos is over; the operator keeps running. Edit the spec and watch it converge: npx lokistack spec put -f manifests/examples/demo.yaml --endpoint ${cp.endpoint} (Ctrl-C to stop)`,
      );
      return outcomes;
    },
    async stop() {
      stopping.abort();
      await pusher?.stop();
      await operator.daemon.stop();
      await cp.stop();
    },
  };
}
