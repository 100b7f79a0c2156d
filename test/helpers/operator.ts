// The operator's reconciler wired to a local control plane, with its log lines captured.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { DeleteParameterCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { ConfiguredRetryStrategy } from "@smithy/core/retry";
import { EcsGateway } from "../../src/aws/ecs-gateway.ts";
import { SsmGateway } from "../../src/aws/ssm-gateway.ts";
import { WriteLimiter } from "../../src/aws/write-limiter.ts";
import { Reconciler, type PassOptions, type StackResult } from "../../src/controllers/reconciler.ts";
import { createLogger } from "../../src/runtime/logger.ts";
import { harness, type Harness } from "./local.ts";
import { NOW } from "./specs.ts";
import { SSMClient } from "@aws-sdk/client-ssm";

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
}

export function example(name: string): string {
  return readFileSync(new URL(`../../manifests/examples/${name}.yaml`, import.meta.url), "utf8");
}

/** A paused control plane plus a reconciler whose clients retry like the operator's. */
export async function operatorHarness(opts: { attempts?: number; now?: Date; canWrite?: () => boolean } = {}): Promise<OperatorHarness> {
  const h = await harness({ paused: true, attempts: opts.attempts ?? 1 });
  const retry = { retryStrategy: new ConfiguredRetryStrategy(opts.attempts ?? 3, (attempt) => 5 * attempt) };
  const ecsClient = new ECSClient({ ...h.cp.clientConfig, ...retry });
  const ssmClient = new SSMClient({ ...h.cp.clientConfig, ...retry });
  const logs: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split("\n")) if (line) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const now = opts.now ?? NOW;
  const reconciler = new Reconciler({
    prefix: "/lokistack",
    ecs: new EcsGateway(ecsClient),
    ssm: new SsmGateway(ssmClient, async () => {}),
    limiter: new WriteLimiter({ service: { rate: 1000, burst: 1000 }, taskDefinition: { rate: 1000, burst: 1000 }, task: { rate: 1000, burst: 1000 }, tag: { rate: 1000, burst: 1000 }, parameter: { rate: 1000, burst: 1000 } }),
    logger: createLogger({ pretty: false, destination, level: "debug" }),
    now: () => now,
    ...(opts.canWrite ? { canWrite: opts.canWrite } : {}),
  });
  const putSpec = async (text: string, name?: string, type: "String" | "SecureString" = "String") => {
    const stackName = name ?? /name: (\S+)/.exec(text)![1]!;
    const cluster = /cluster: (\S+)/.exec(text)![1]!;
    await h.ecs.send(new CreateClusterCommand({ clusterName: cluster }));
    const bucket = /bucket: ([a-z0-9.-]+)/.exec(text)?.[1];
    if (bucket && !h.cp.s3.state.buckets[bucket]) await h.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    await h.ssm.send(new PutParameterCommand({ Name: `/lokistack/${stackName}/spec`, Value: text, Type: type, Overwrite: true }));
  };
  const deleteSpec = async (name: string) => {
    await h.ssm.send(new DeleteParameterCommand({ Name: `/lokistack/${name}/spec` }));
  };
  return { ...h, reconciler, logs, putSpec, deleteSpec, pass: (o = {}) => reconciler.pass({ mode: "apply", ...o }) };
}
