// What the daemon-level tests share: a control plane seeded with the demo
// stack and the lease bucket, polling on a count, the demo's readiness, and
// the operator run as a real process.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { CreateClusterCommand } from "@aws-sdk/client-ecs";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreatePrivateDnsNamespaceCommand } from "@aws-sdk/client-servicediscovery";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { parseStatus } from "../../src/controllers/status.ts";
import { harness, type Harness } from "./local.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { createOperator, type Operator, type OperatorConfig } from "../../src/runtime/operator.ts";
import { example, logSink, type LogLine } from "./operator.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** A running control plane with the cluster, namespace and lease bucket, and the demo spec put. */
export async function seeded(spec = example("demo")): Promise<Harness> {
  const h = await harness({ tickMs: 20 });
  await h.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
  await h.discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
  await h.s3.send(new CreateBucketCommand({ Bucket: "lokistack-operator" }));
  await h.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: spec, Type: "String" }));
  return h;
}

/** Polls `probe` until it holds; fails after `polls` polls (a count, not a clock). */
export async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, polls = 300, everyMs = 50): Promise<T> {
  for (let i = 0; i < polls; i++) {
    const v = await probe();
    if (v) return v;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`not reached after ${polls} polls`);
}

/** A stack's latest status, as the operator wrote it to the control plane. */
export const statusOf = (h: Pick<Harness, "cp">, stack = "demo") => parseStatus(h.cp.ssm.state.parameters[`/lokistack/${stack}/status`]?.versions.at(-1)?.value);

/** Ready at the spec's newest generation: the stack converged to what was last put. */
export function convergedAtNewest(h: Pick<Harness, "cp">, stack: string): boolean {
  const generation = h.cp.ssm.state.parameters[`/lokistack/${stack}/spec`]?.versions.at(-1)?.version;
  return statusOf(h, stack)?.convergedGeneration === generation && ready(h, stack);
}

/** Whether a stack's (the demo's) latest status says Ready. */
export const ready = (h: Pick<Harness, "cp">, stack = "demo"): boolean => statusOf(h, stack)?.conditions.some((c) => c.type === "Ready" && c.status === "True") ?? false;

/** The operator in this process against the harness's endpoint (health on a free loopback port), its log lines captured; `config` adds to that. */
export function inProcessOperator(h: Pick<Harness, "cp">, config: OperatorConfig = {}): { op: Operator; logs: LogLine[] } {
  const logs: LogLine[] = [];
  const op = createOperator({
    endpoint: h.cp.endpoint,
    port: 0,
    host: "127.0.0.1",
    logger: createLogger({ pretty: false, destination: logSink(logs), level: "debug" }),
    // Simulated tasks' Loki answers through the control plane; real ones are reached directly.
    ...(h.cp.runner ? {} : { lokiProxy: h.cp.endpoint }),
    ...config,
  });
  return { op, logs };
}

export interface OperatorProcess {
  child: ChildProcess;
  logs: LogLine[];
  exited: Promise<number | null>;
}

/**
 * `lokistack run` as its own process against `endpoint`, with a 2-second lease, a resync every second
 * and its JSON log lines parsed; `env` adds to the environment (credentials, for one).
 */
export function operatorProcess(endpoint: string, name: string, options: { lease?: string; env?: Record<string, string> } = {}): OperatorProcess {
  const lease = options.lease ?? "s3://lokistack-operator/leader";
  const child = spawn(
    process.execPath,
    // The control plane answers for its simulated tasks' Loki as an HTTP proxy.
    [`${root}bin/lokistack.js`, "run", "--endpoint", endpoint, "--loki-proxy", endpoint, "--lease", lease, "--lease-duration", "2000", "--resync", "* * * * * *", "--watch-interval", "500", "--port", "0", "--host", "127.0.0.1"],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LOG_FORMAT: "json", ECS_TASK_ID: name, ...options.env } },
  );
  const logs: LogLine[] = [];
  let buffer = "";
  child.stdout!.on("data", (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const l of lines) if (l.startsWith("{")) logs.push(JSON.parse(l) as LogLine);
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, logs, exited };
}
