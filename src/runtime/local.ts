// `lokistack local`: the embedded control plane as a long-running process,
// optionally seeded with a LokiStack spec (its cluster, bucket and SSM parameter).
import { readFileSync } from "node:fs";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { CreatePrivateDnsNamespaceCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DEFAULT_PREFIX, desiredUnits } from "../resources/render.ts";
import type { ResolvedStack } from "../resources/resolve.ts";
import { validateText } from "../resources/validate.ts";
import { formatIssue } from "../resources/issues.ts";
import { startLocalControlPlane, type LocalControlPlane } from "../local/control-plane.ts";

export interface LocalOptions {
  port: number;
  state?: string;
  tickMs: number;
  seed?: string;
  prefix: string;
}

export class SeedError extends Error {}

/** One line per ECS service the stack converges to: what the operator will create and guard. */
export function describeDesired(stack: ResolvedStack): string[] {
  const rows = desiredUnits(stack).map(({ service: s, taskDefinition: td }) => {
    const dc = s.deploymentConfiguration!;
    return [s.serviceName!, String(s.desiredCount), `${dc.minimumHealthyPercent}/${dc.maximumPercent}`, `${td.cpu}/${td.memory}`];
  });
  const header = ["SERVICE", "DESIRED", "MIN/MAX %", "CPU/MEMORY"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
}

/** Seeds a stack the way a person would (cluster, Cloud Map namespace, bucket, spec), through the AWS APIs. */
export async function seedStack(cp: LocalControlPlane, file: string, prefix = DEFAULT_PREFIX): Promise<ResolvedStack> {
  const text = readFileSync(file, "utf8");
  const result = validateText(text);
  if (!result.ok) throw new SeedError(`${file} is not a valid LokiStack:\n${result.errors.map(formatIssue).join("\n")}`);
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
  await ssm.send(new PutParameterCommand({ Name: `${prefix}/${stack.name}/spec`, Value: text, Type: "String", Overwrite: true }));
  return stack;
}

export async function runLocal(opts: LocalOptions, out: (line: string) => void): Promise<LocalControlPlane> {
  const cp = await startLocalControlPlane({ port: opts.port, tickMs: opts.tickMs, ...(opts.state ? { statePath: opts.state } : {}) });
  const endpoint = cp.endpoint;
  out(`Local AWS control plane (ECS, SSM, S3) listening on ${endpoint}`);
  if (opts.seed) {
    const stack = await seedStack(cp, opts.seed, opts.prefix);
    out(`Seeded LokiStack '${stack.name}' from ${opts.seed} at ${opts.prefix}/${stack.name}/spec (cluster ${stack.spec.cluster}, bucket ${stack.spec.storage.s3.bucket}).`);
    out("It converges to these ECS services (`lokistack render -f FILE` prints every object):");
    for (const line of describeDesired(stack)) out(`  ${line}`);
  }
  out("");
  out("Point any AWS CLI or SDK at it:");
  out(`  export AWS_ENDPOINT_URL=${endpoint}`);
  out(`  export AWS_REGION=${cp.region}`);
  out("  export AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local");
  out("  (S3 clients: use path-style addressing)");
  out("");
  out(`Admin: GET ${endpoint}/_local/calls · POST /_local/faults · POST /_local/kill · POST /_local/scheduler · GET /_local/state`);
  out(opts.state ? `State is saved to ${opts.state} on exit.` : "State is in memory only (use --state FILE to keep it).");
  out("Ctrl-C to stop.");
  return cp;
}
