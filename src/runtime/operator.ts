// Wires the operator together from its configuration: clients, gateways,
// reconciler, lease, metrics and daemon. Nothing here differs between AWS and
// the local control plane but the endpoint.
import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import type { Logger } from "pino";
import { makeClients, type AwsClients } from "../aws/clients.ts";
import { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import { EcsGateway } from "../aws/ecs-gateway.ts";
import { S3Gateway } from "../aws/s3-gateway.ts";
import { SsmGateway } from "../aws/ssm-gateway.ts";
import { WriteLimiter } from "../aws/write-limiter.ts";
import { Reconciler } from "../controllers/reconciler.ts";
import { LokiGateway } from "../loki/gateway.ts";
import { DEFAULT_PREFIX } from "../resources/render.ts";
import { Daemon, DEFAULT_RESYNC, resyncSeconds } from "./daemon.ts";
import { LeaderLease, parseLeaseUrl } from "./lease.ts";
import { createLogger } from "./logger.ts";
import { OperatorMetrics } from "./metrics.ts";

export interface OperatorConfig {
  endpoint?: string;
  region?: string;
  prefix?: string;
  resync?: string;
  /** `s3://BUCKET/KEY`; unset runs without leader election (one replica only). */
  lease?: string;
  leaseMs?: number;
  port?: number;
  host?: string;
  watchIntervalMs?: number;
  logger?: Logger;
  logLevel?: string;
  /** An HTTP proxy to reach Loki on the stack's tasks through (default: direct, from the tasks' VPC). */
  lokiProxy?: string;
}

export interface Operator {
  daemon: Daemon;
  reconciler: Reconciler;
  clients: AwsClients;
  ssm: SsmGateway;
  metrics: OperatorMetrics;
  logger: Logger;
  lease?: LeaderLease;
}

export function createOperator(config: OperatorConfig = {}): Operator {
  const logger = config.logger ?? createLogger({ ...(config.logLevel ? { level: config.logLevel } : {}) });
  // No region given: the SDK's default chain decides (a local endpoint with none configured says so in the log).
  const clients = makeClients({
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(config.region ? { region: config.region } : {}),
    warn: (message) => logger.warn({ event: "region" }, message),
  });
  const ecs = new EcsGateway(clients.ecs);
  const ssm = new SsmGateway(clients.ssm);
  const metrics = new OperatorMetrics();
  const prefix = config.prefix ?? DEFAULT_PREFIX;
  const replica = `${process.env.ECS_TASK_ID ?? hostname()}-${randomBytes(4).toString("hex")}`;
  const lease = config.lease
    ? new LeaderLease({
        s3: new S3Gateway(clients.s3),
        ...parseLeaseUrl(config.lease),
        holder: replica,
        ...(config.leaseMs ? { leaseMs: config.leaseMs } : {}),
        logger,
      })
    : undefined;
  let daemon: Daemon | undefined;
  const reconciler = new Reconciler({
    prefix,
    ecs,
    ssm,
    discovery: new DiscoveryGateway(clients.discovery),
    limiter: new WriteLimiter(),
    logger,
    metrics,
    canWrite: () => daemon?.canWrite() ?? false,
    replica,
    resyncSeconds: resyncSeconds(config.resync ?? DEFAULT_RESYNC),
    loki: new LokiGateway(config.lokiProxy ? { proxy: config.lokiProxy } : {}),
  });
  daemon = new Daemon({
    reconciler,
    logger,
    metrics,
    ...(config.resync ? { resync: config.resync } : {}),
    ...(config.watchIntervalMs ? { watchIntervalMs: config.watchIntervalMs } : {}),
    ...(lease ? { lease } : {}),
    ...(config.port !== undefined ? { port: config.port } : {}),
    ...(config.host ? { host: config.host } : {}),
  });
  return { daemon, reconciler, clients, ssm, metrics, logger, ...(lease ? { lease } : {}) };
}
