// The benchmarks' common ground: a local control plane holding N LokiStacks
// (the demo spec at a given size) on one cluster and one Cloud Map namespace,
// a reconciler whose write budget does not slow the figures down (the real
// budget makes converging hundreds of units take minutes by design), and a
// loop that converges them.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { CreateClusterCommand, ECSClient } from "@aws-sdk/client-ecs";
import { CreatePrivateDnsNamespaceCommand, ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { PutParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DiscoveryGateway } from "../src/aws/discovery-gateway.ts";
import { EcsGateway } from "../src/aws/ecs-gateway.ts";
import { SsmGateway } from "../src/aws/ssm-gateway.ts";
import { WriteLimiter } from "../src/aws/write-limiter.ts";
import { Reconciler, type ReconcilerOptions } from "../src/controllers/reconciler.ts";
import { LokiGateway } from "../src/loki/gateway.ts";
import { startLocalControlPlane, type LocalControlPlane, type LocalControlPlaneOptions } from "../src/local/control-plane.ts";
import { createLogger } from "../src/runtime/logger.ts";

const template = readFileSync(new URL("../manifests/examples/demo.yaml", import.meta.url), "utf8");

export interface Fleet {
  cp: LocalControlPlane;
  /** Clients that retry hard, for setting up and striking. */
  ecs: ECSClient;
  ssm: SSMClient;
  discovery: ServiceDiscoveryClient;
}

/** A control plane with `stacks` specs named `<name>-<i>`, the cluster `logging` and the namespace `loki.internal`. */
export async function fleet(stacks: number, options: { size?: string; name?: string } & LocalControlPlaneOptions = {}): Promise<Fleet> {
  const { size = "1x.pico", name = "stack", ...cpOptions } = options;
  const cp = await startLocalControlPlane({ tickMs: 20, seed: 7, ...cpOptions });
  const config = { ...cp.clientConfig, maxAttempts: 5 };
  const f = { cp, ecs: new ECSClient(config), ssm: new SSMClient(config), discovery: new ServiceDiscoveryClient(config) };
  await f.ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
  await f.discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
  for (let i = 0; i < stacks; i++) {
    const spec = template.replace("name: demo", `name: ${name}-${i}`).replace("size: 1x.demo", `size: ${size}`);
    await f.ssm.send(new PutParameterCommand({ Name: `/lokistack/${name}-${i}/spec`, Value: spec, Type: "String" }));
  }
  return f;
}

/** A silent reconciler over these clients, with a write budget that never waits; simulated Loki answers through `cp`. */
export function benchReconciler(
  clients: { ecs: ECSClient; ssm: SSMClient; discovery: ServiceDiscoveryClient },
  cp: LocalControlPlane,
  options: Partial<ReconcilerOptions> = {},
): Reconciler {
  const unlimited = { rate: 1e6, burst: 1e6 };
  return new Reconciler({
    prefix: "/lokistack",
    ecs: new EcsGateway(clients.ecs),
    ssm: new SsmGateway(clients.ssm),
    discovery: new DiscoveryGateway(clients.discovery),
    limiter: new WriteLimiter({ service: unlimited, taskDefinition: unlimited, task: unlimited, tag: unlimited, parameter: unlimited, discovery: unlimited }),
    logger: silentLogger(),
    loki: new LokiGateway({ proxy: cp.endpoint }),
    ...options,
  });
}

/** A logger that writes nothing: benchmarks measure work, not logging. */
export const silentLogger = () => createLogger({ pretty: false, destination: new Writable({ write: (_c, _e, done) => done() }), level: "silent" });

/** Passes until every stack is done (converged and Ready); returns how many it took. */
export async function convergeAll(reconciler: Reconciler): Promise<number> {
  for (let passes = 1; ; passes++) {
    const results = await reconciler.pass({ mode: "apply" });
    if (results.every((r) => r.outcome.kind === "done")) return passes;
    if (passes > 200) throw new Error("did not converge");
    await new Promise((r) => setTimeout(r, 150));
  }
}
