// `lokistack local`: the embedded control plane as a long-running process,
// optionally seeded with a LokiStack spec (its cluster, bucket and SSM parameter).
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreatePrivateDnsNamespaceCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DEFAULT_PREFIX, desiredUnits, specParameterName } from "../resources/render.ts";
import type { ResolvedStack } from "../resources/resolve.ts";
import { validateText } from "../resources/validate.ts";
import { formatIssue } from "../resources/issues.ts";
import { startLocalControlPlane, type LocalControlPlane, type LocalControlPlaneOptions } from "../local/control-plane.ts";
import { checkHost } from "../local/tasks/host.ts";
import { findLokiBinary, RealTasksUnavailable } from "../local/tasks/runner.ts";
import { table } from "./table.ts";

export type TaskMode = "simulated" | "real" | "auto";

export interface LocalOptions {
  port: number;
  state?: string;
  tickMs: number;
  seed?: string;
  prefix: string;
  tasks?: TaskMode;
  lokiBin?: string;
}

export const REAL_TASKS_HOWTO =
  "For real Loki tasks, download Loki from https://github.com/grafana/loki/releases, set LOKI_BIN=/path/to/loki (or pass --loki-bin), and run as root with iproute2, bubblewrap, util-linux and busybox installed (Debian: apt-get install iproute2 bubblewrap busybox).";

/**
 * How tasks will run. `real` needs a Loki binary (--loki-bin, LOKI_BIN or `loki` on PATH)
 * and what checkHost() lists, and throws RealTasksUnavailable naming everything missing;
 * `auto` runs real tasks when it can and simulated ones otherwise, saying why.
 */
export function chooseTasks(mode: TaskMode = "simulated", lokiBin?: string): { options: Pick<LocalControlPlaneOptions, "tasks" | "realTasks">; note?: string } {
  if (mode === "simulated") return { options: { tasks: "simulated" } };
  const bin = findLokiBinary(lokiBin);
  const host = checkHost();
  const given = lokiBin ?? (process.env.LOKI_BIN || undefined);
  const noBinary = given
    ? `a Loki binary: ${given} (${lokiBin ? "--loki-bin" : "LOKI_BIN"}) is not an executable file`
    : "a Loki binary: --loki-bin, LOKI_BIN or `loki` on PATH (https://github.com/grafana/loki/releases)";
  const missing = [...(bin ? [] : [noBinary]), ...(host.ok ? [] : host.missing)];
  if (missing.length === 0) return { options: { tasks: "real", realTasks: { lokiBin: bin! } }, note: `Tasks are real processes: Loki from ${bin}.` };
  if (mode === "real") throw new RealTasksUnavailable(missing);
  return { options: { tasks: "simulated" }, note: `Tasks are simulated: this machine lacks ${missing.map((m) => m.split(/[:(]/)[0]!.trim()).join(", ")}. ${REAL_TASKS_HOWTO}` };
}

export class SeedError extends Error {}

/** One line per ECS service the stack converges to: what the operator will create and guard. */
export function describeDesired(stack: ResolvedStack): string[] {
  const rows = desiredUnits(stack).map(({ service: s, taskDefinition: td }) => {
    const dc = s.deploymentConfiguration!;
    return [s.serviceName!, String(s.desiredCount), `${dc.minimumHealthyPercent}/${dc.maximumPercent}`, `${td.cpu}/${td.memory}`];
  });
  return table(["SERVICE", "DESIRED", "MIN/MAX %", "CPU/MEMORY"], rows).trimEnd().split("\n");
}

/** Seeds a stack the way a person would (cluster, Cloud Map namespace, bucket, spec), through the AWS APIs. */
export async function seedStack(cp: LocalControlPlane, file: string, prefix = DEFAULT_PREFIX): Promise<ResolvedStack> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new SeedError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  return seedStackText(cp, text, file, prefix);
}

/**
 * Real tasks reach S3 at the control plane's address on the task network: a
 * spec written for AWS gets that endpoint (path-style, as S3-compatible
 * stores need) so its Loki stores chunks and index in the local S3.
 */
function pointAtLocalS3(text: string, taskEndpoint: string): string {
  const doc = parseDocument(text);
  doc.setIn(["spec", "storage", "s3", "endpoint"], taskEndpoint);
  doc.setIn(["spec", "storage", "s3", "forcePathStyle"], true);
  return doc.toString();
}

/** Seeds a stack from its text; `source` names it in errors. With real tasks, its S3 is the local one. */
export async function seedStackText(cp: LocalControlPlane, original: string, source: string, prefix = DEFAULT_PREFIX): Promise<ResolvedStack> {
  const text = cp.runner ? pointAtLocalS3(original, cp.runner.taskEndpoint) : original;
  const result = validateText(text);
  if (!result.ok) throw new SeedError(`${source} is not a valid LokiStack:\n${result.errors.map(formatIssue).join("\n")}`);
  const { stack } = result;
  const ecs = new ECSClient(cp.clientConfig);
  const ssm = new SSMClient(cp.clientConfig);
  const s3 = new S3Client({ ...cp.clientConfig, forcePathStyle: true });
  await ecs.send(new CreateClusterCommand({ clusterName: stack.spec.cluster }));
  const namespace = stack.spec.discovery.namespace;
  if (!Object.values(cp.discovery.state.namespaces).some((n) => n.name === namespace)) {
    await new ServiceDiscoveryClient(cp.clientConfig).send(new CreatePrivateDnsNamespaceCommand({ Name: namespace, Vpc: "vpc-0123456789abcdef0" }));
  }
  if (!cp.s3.state.buckets[stack.spec.storage.s3.bucket]) await s3.send(new CreateBucketCommand({ Bucket: stack.spec.storage.s3.bucket }));
  await ssm.send(new PutParameterCommand({ Name: specParameterName(prefix, stack.name), Value: text, Type: "String", Overwrite: true }));
  return stack;
}

export async function runLocal(opts: LocalOptions, out: (line: string) => void): Promise<LocalControlPlane> {
  const tasks = chooseTasks(opts.tasks, opts.lokiBin);
  const cp = await startLocalControlPlane({ port: opts.port, tickMs: opts.tickMs, ...tasks.options, ...(opts.state ? { statePath: opts.state } : {}) });
  const endpoint = cp.endpoint;
  // A seed that cannot be read or is invalid ends the command: nothing may keep running behind an error.
  const stack = opts.seed
    ? await seedStack(cp, opts.seed, opts.prefix).catch(async (e: unknown) => {
        await cp.stop();
        throw e;
      })
    : undefined;
  out(`Local AWS control plane (ECS, SSM, S3, Cloud Map) listening on ${endpoint}`);
  if (tasks.note) out(tasks.note);
  if (cp.runner) out(`Task network ${cp.runner.cidr}: tasks reach the control plane at ${cp.runner.taskEndpoint}; container logs under ${cp.runner.runDir}/logs.`);
  if (stack && opts.seed) {
    out(`Seeded LokiStack '${stack.name}' from ${opts.seed} at ${opts.prefix}/${stack.name}/spec (cluster ${stack.spec.cluster}, bucket ${stack.spec.storage.s3.bucket}).`);
    out("It converges to these ECS services (`lokistack render -f FILE` prints every object):");
    for (const line of describeDesired(stack)) out(`  ${line}`);
  }
  out("");
  out("Point any AWS CLI or SDK at it:");
  out(`  export AWS_ENDPOINT_URL=${endpoint}`);
  // AWS CLI v1 and some SDKs read only AWS_DEFAULT_REGION.
  out(`  export AWS_REGION=${cp.region} AWS_DEFAULT_REGION=${cp.region}`);
  out("  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local");
  out("  (S3 clients: use path-style addressing)");
  out("");
  out("Start the operator against it, in another terminal:");
  // Simulated tasks have no network of their own: their Loki API answers through the control plane.
  out(`  npx lokistack run --endpoint ${endpoint} --region ${cp.region} --no-lease${cp.runner ? "" : ` --loki-proxy ${endpoint}`}`);
  out("");
  out(`Admin: GET ${endpoint}/_local/calls · POST /_local/faults · POST /_local/kill · POST /_local/scheduler · GET /_local/state`);
  out(opts.state ? `State is saved to ${opts.state} on exit.` : "State is in memory only (use --state FILE to keep it).");
  out("Ctrl-C to stop.");
  return cp;
}
