// The operator's reconciler wired to a local control plane, with its log lines captured.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { DeleteParameterCommand, GetParameterCommand, PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { ConfiguredRetryStrategy } from "@smithy/core/retry";
import { CreatePrivateDnsNamespaceCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { DiscoveryGateway } from "../../src/aws/discovery-gateway.ts";
import { EcsGateway } from "../../src/aws/ecs-gateway.ts";
import { SsmGateway } from "../../src/aws/ssm-gateway.ts";
import { WriteLimiter } from "../../src/aws/write-limiter.ts";
import { LokiGateway } from "../../src/loki/gateway.ts";
import { Reconciler, type PassOptions, type StackResult } from "../../src/controllers/reconciler.ts";
import { parseStatus, type StackStatus } from "../../src/controllers/status.ts";
import { isManaged } from "../../src/resources/tags.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { harness, type Harness } from "./local.ts";
import { NOW } from "./specs.ts";

export interface LogLine {
  event?: string;
  [k: string]: unknown;
}

export interface OperatorHarness extends Harness {
  reconciler: Reconciler;
  logs: LogLine[];
  putSpec(text: string, name?: string, type?: "String" | "SecureString"): Promise<void>;
  deleteSpec(name: string): Promise<void>;
  pass(options?: Partial<PassOptions>): Promise<StackResult[]>;
  /** Replaces the reconciler with a new one: an operator restarted with a cold cache. */
  restart(): Reconciler;
}

/** A stream that parses the JSON log lines written to it into `logs`. */
export function logSink(logs: LogLine[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
}

export function example(name: string): string {
  return readFileSync(new URL(`../../manifests/examples/${name}.yaml`, import.meta.url), "utf8");
}

/** A paused control plane plus a reconciler whose clients retry like the operator's. */
export async function operatorHarness(
  opts: { attempts?: number; now?: Date | (() => Date); canWrite?: () => boolean; seed?: number; clock?: () => number; cpNow?: () => number } = {},
): Promise<OperatorHarness> {
  const h = await harness({ paused: true, attempts: opts.attempts ?? 1, ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.cpNow ? { now: opts.cpNow } : {}) });
  const retry = { retryStrategy: new ConfiguredRetryStrategy(opts.attempts ?? 3, (attempt) => 5 * attempt) };
  const ecsClient = new ECSClient({ ...h.cp.clientConfig, ...retry });
  const ssmClient = new SSMClient({ ...h.cp.clientConfig, ...retry });
  const logs: LogLine[] = [];
  const destination = logSink(logs);
  const now = typeof opts.now === "function" ? opts.now : () => (opts.now as Date | undefined) ?? NOW;
  const unlimited = { rate: 1000, burst: 1000 };
  // A new reconciler is a restarted operator: nothing cached.
  const makeReconciler = () =>
    new Reconciler({
      prefix: "/lokistack",
      ecs: new EcsGateway(ecsClient),
      ssm: new SsmGateway(ssmClient, async () => {}),
      discovery: new DiscoveryGateway(new ServiceDiscoveryClient({ ...h.cp.clientConfig, ...retry })),
      limiter: new WriteLimiter({ service: unlimited, taskDefinition: unlimited, task: unlimited, tag: unlimited, parameter: unlimited, discovery: unlimited }),
      logger: createLogger({ pretty: false, destination, level: "debug" }),
      now,
      replica: "test-replica",
      resyncSeconds: 30,
      loki: new LokiGateway({ proxy: h.cp.endpoint }),
      ...(opts.canWrite ? { canWrite: opts.canWrite } : {}),
      ...(opts.clock ? { clock: opts.clock } : {}),
    });
  const putSpec = async (text: string, name?: string, type: "String" | "SecureString" = "String") => {
    const stackName = name ?? /name: (\S+)/.exec(text)![1]!;
    const cluster = /cluster: (\S+)/.exec(text)![1]!;
    await h.ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    const namespace = /namespace: ([a-z0-9.-]+)/.exec(text)?.[1];
    if (namespace && !Object.values(h.cp.discovery.state.namespaces).some((n) => n.name === namespace)) {
      await h.discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: namespace, Vpc: "vpc-0123456789abcdef0" }));
    }
    const bucket = /bucket: ([a-z0-9.-]+)/.exec(text)?.[1];
    if (bucket && !h.cp.s3.state.buckets[bucket]) await h.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await h.ssm.send(new PutParameterCommand({ Name: `/lokistack/${stackName}/spec`, Value: text, Type: type, Overwrite: true }));
  };
  const deleteSpec = async (name: string) => {
    await h.ssm.send(new DeleteParameterCommand({ Name: `/lokistack/${name}/spec` }));
  };
  const op: OperatorHarness = {
    ...h,
    reconciler: makeReconciler(),
    logs,
    putSpec,
    deleteSpec,
    pass: (o = {}) => op.reconciler.pass({ mode: "apply", ...o }),
    restart: () => (op.reconciler = makeReconciler()),
  };
  return op;
}

export interface PassRecord {
  results: StackResult[];
  /** Write calls the operator made during the pass. */
  writes: ReturnType<Harness["cp"]["writes"]>;
}


/**
 * One operator pass, checked: every write it made touched only resources that
 * carried the ownership tag before the pass (or that it created in the pass).
 */
export async function checkedPass(op: OperatorHarness, options: Partial<PassOptions> = {}): Promise<PassRecord> {
  const state = op.cp.ecs.state;
  const ownedServices = new Set(Object.values(state.services).filter((s) => isManaged(s.tags)).map((s) => s.name));
  const ownedFamilies = new Set(Object.values(state.taskDefinitions).flat().filter((t) => isManaged(t.tags)).map((t) => t.family));
  const ownedRegistries = new Set(Object.values(op.cp.discovery.state.services).filter((s) => isManaged(s.tags.map((t) => ({ key: t.Key, value: t.Value })))).map((s) => s.id));
  const before = op.cp.writes().length;
  const results = await op.pass(options);
  const writes = op.cp.writes().slice(before);
  const created = new Set(writes.filter((w) => w.action === "CreateService" && w.ok).map((w) => w.target));
  const registered = new Set(writes.filter((w) => w.action === "RegisterTaskDefinition" && w.ok).map((w) => w.target));
  for (const w of writes) {
    const name = w.target.slice(w.target.lastIndexOf("/") + 1);
    if (w.service === "servicediscovery") {
      if (w.action === "DeleteService" && !ownedRegistries.has(w.target)) throw new Error(`operator deleted Cloud Map service ${w.target}, which it does not own`);
      continue;
    }
    if (["UpdateService", "DeleteService", "TagResource", "UntagResource"].includes(w.action)) {
      if (!ownedServices.has(name) && !created.has(name)) throw new Error(`operator wrote ${w.action} to ${w.target}, which it does not own`);
    }
    if (w.action === "StopTask") {
      const task = Object.values(state.tasks).find((t) => t.arn === w.target || t.id === name);
      if (!task || !(ownedFamilies.has(task.family) || registered.has(task.family))) throw new Error(`operator stopped ${w.target}, a task of a family it does not own`);
    }
    if (w.action === "RunTask") throw new Error("the operator never starts tasks itself");
    if (w.service === "ssm" && !w.target.startsWith("/lokistack/")) throw new Error(`operator wrote parameter ${w.target} outside its prefix`);
  }
  return { results, writes };
}

/** Live tasks for a unit in the simulator: its service's tasks and any task of its family. */
export function runningTasksOf(op: Pick<Harness, "cp">, unit: string): number {
  return Object.values(op.cp.ecs.state.tasks).filter((t) => (t.group === `service:${unit}` || t.family === unit) && t.lastStatus === "RUNNING").length;
}

/**
 * The safety invariants of every scenario: at most one running compactor (or
 * monolithic) task and at most one running task per ingester ordinal. `allow`
 * names units allowed a second task (a rogue one injected since the last pass).
 */
export function checkInvariants(op: Pick<Harness, "cp">, stack: string, allow: ReadonlySet<string> = new Set()): void {
  const units = new Set(Object.values(op.cp.ecs.state.tasks).map((t) => (t.group.startsWith("service:") ? t.group.slice(8) : t.family)));
  for (const unit of units) {
    if (!unit.startsWith(`${stack}-`)) continue;
    const single = unit === `${stack}-compactor` || unit === `${stack}-monolithic` || /-ingester-\d+$/.test(unit);
    if (!single || allow.has(unit)) continue;
    const n = runningTasksOf(op, unit);
    if (n > 1) throw new Error(`${n} running tasks for ${unit}`);
  }
  // The monolithic unit runs a compactor too: one compactor per store, across both units.
  const compactors = [`${stack}-compactor`, `${stack}-monolithic`];
  const running = compactors.map((u) => runningTasksOf(op, u));
  if (!compactors.some((u) => allow.has(u)) && running[0]! + running[1]! > 1) throw new Error(`${running[0]} compactor and ${running[1]} monolithic tasks run at once`);
}

/** Passes and scheduler ticks until `done` holds after a pass; the safety invariants are checked at every tick. */
export async function passUntil(op: OperatorHarness, stack: string, done: (results: StackResult[]) => boolean, maxPasses = 60, ticksPerPass = 4): Promise<number> {
  for (let i = 1; i <= maxPasses; i++) {
    const { results } = await checkedPass(op);
    for (let t = 0; t < ticksPerPass; t++) {
      op.cp.step(1);
      checkInvariants(op, stack);
    }
    if (done(results)) return i;
  }
  throw new Error(`${stack}: not done after ${maxPasses} passes`);
}

/** Passes and scheduler ticks until a pass finds nothing to do and the stack is Ready. */
export async function converge(op: OperatorHarness, stack: string, maxPasses = 60, ticksPerPass = 4): Promise<number> {
  const settled = (results: StackResult[]) => {
    const r = results.find((x) => x.name === stack);
    return r !== undefined && r.drifts.length === 0 && r.planned.length === 0 && r.deferrals.length === 0 && r.status?.conditions.find((c) => c.type === "Ready")?.status === "True";
  };
  return passUntil(op, stack, settled, maxPasses, ticksPerPass);
}

/** A harness on which an example's stack (named in its metadata) has converged within `maxPasses`. */
export async function convergedExample(name: string, options: Parameters<typeof operatorHarness>[0] = {}, maxPasses = 60): Promise<OperatorHarness> {
  const op = await operatorHarness(options);
  const text = example(name);
  await op.putSpec(text);
  await converge(op, /name: (\S+)/.exec(text)![1]!, maxPasses);
  return op;
}

/** A harness whose demo stack has converged. */
export const convergedDemo = (options: Parameters<typeof operatorHarness>[0] = {}) => convergedExample("demo", options);

/** A stack's status parameter, read through SSM. */
export const status = async (op: OperatorHarness, name: string) => parseStatus((await op.ssm.send(new GetParameterCommand({ Name: `/lokistack/${name}/status` }))).Parameter?.Value);

/** One condition of a status. */
export const condition = (s: StackStatus | undefined, type: string) => s?.conditions.find((c) => c.type === type);

export const ecsWrites = (writes: PassRecord["writes"]) => writes.filter((w) => w.service === "ecs");
