// The LokiStack API: the single source of truth for the document's shape.
// Fixed defaults live here (so the generated JSON Schema shows them); values
// that follow from the size preset are filled in by resolve.ts. Rules that span
// fields (compactor = 1, replicas ≥ replication factor, Fargate pairs, schema
// order) are checked in validate.ts, where they can name the offending path.
import { z } from "zod";
import { SIZES } from "./sizes.ts";

export const API_VERSION = "loki.ecs.dev/v1";
export const KIND = "LokiStack";

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const DNS_NAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/;
const ECS_NAME = /^[A-Za-z0-9_-]{1,255}$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** A Go duration as Loki parses it (model.Duration also takes d, w and y). */
export const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const BYTES = /^\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

function isRealDate(s: string): boolean {
  const d = new Date(`${s}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s);
}

const duration = z.string().regex(DURATION, "must be a duration such as 30s, 5m, 24h or 7d");
const byteSize = z.union([
  z.number().int().nonnegative(),
  z.string().regex(BYTES, "must be a size such as 256KB or 3MB"),
]);

const autoscaling = z
  .strictObject({
    min: z.number().int().min(1).max(1000),
    max: z.number().int().min(1).max(1000),
  })
  .describe("Application Auto Scaling owns desiredCount within [min, max]; the operator only checks the range.");

const componentTemplate = z.strictObject({
  replicas: z.number().int().min(0).max(1000).optional(),
  cpu: z.number().int().optional().describe("Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384."),
  memory: z.number().int().optional().describe("MiB; must be valid for the cpu on Fargate."),
  env: z
    .record(z.string().regex(ENV_NAME, "must be an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"), z.string())
    .optional(),
  autoscaling: autoscaling.optional(),
});
export type ComponentTemplate = z.infer<typeof componentTemplate>;

// No key prefix: Loki 3 writes chunks under the tenant id at the bucket root,
// so a prefix could not isolate two stacks. One bucket per stack.
const s3Storage = z.strictObject({
  bucket: z
    .string()
    .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)"),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-west-1"),
  endpoint: z.url().optional().describe("Only for S3-compatible stores; leave unset on AWS."),
  forcePathStyle: z.boolean().default(false),
});

const schemaEntry = z.strictObject({
  from: z
    .string()
    .regex(DATE, "must be a date in the form YYYY-MM-DD")
    .refine(isRealDate, "must be a real calendar date"),
  version: z.enum(["v11", "v12", "v13"]),
  store: z.enum(["tsdb", "boltdb-shipper"]).optional().describe("Defaults to tsdb for v13, boltdb-shipper before."),
  objectStore: z.literal("s3").default("s3"),
  indexPeriod: z.literal("24h").default("24h"),
});
export type SchemaEntry = z.infer<typeof schemaEntry>;

const efsId = z.string().regex(/^fs-[0-9a-f]{8,40}$/, "must be an EFS file system id such as fs-0123456789abcdef0");
const absPath = z.string().regex(/^\/[A-Za-z0-9_./-]*$/, "must be an absolute path such as /wal");

const wal = z.discriminatedUnion("volume", [
  z.strictObject({ volume: z.literal("ephemeral") }),
  z.strictObject({
    volume: z.literal("efs"),
    fileSystemId: efsId,
    accessPointRoot: absPath.default("/wal").describe("Each ingester ordinal mounts <accessPointRoot>/<stack>-ingester-<i>."),
    accessPointIds: z
      .array(z.string().regex(/^fsap-[0-9a-f]{8,40}$/, "must be an EFS access point id such as fsap-0123456789abcdef0"))
      .optional()
      .describe("One access point per ordinal, in ordinal order; when set, each ordinal mounts its own access point."),
  }),
]);

const compactorVolume = z.discriminatedUnion("volume", [
  z.strictObject({ volume: z.literal("ephemeral") }),
  z.strictObject({ volume: z.literal("efs"), fileSystemId: efsId, rootDirectory: absPath.default("/compactor") }),
]);

const subnet = z.string().regex(/^subnet-[0-9a-f]{8,17}$/, "must be a subnet id such as subnet-0123456789abcdef0");
const securityGroup = z.string().regex(/^sg-[0-9a-f]{8,17}$/, "must be a security group id such as sg-0123456789abcdef0");
const roleArn = z
  .string()
  .regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, "must be an IAM role ARN such as arn:aws:iam::123456789012:role/loki");

/** Keys of Loki's limits_config the operator passes through (Loki 3.x). */
export const LIMITS_SHAPE = {
  ingestion_rate_strategy: z.enum(["global", "local"]),
  ingestion_rate_mb: z.number().positive(),
  ingestion_burst_size_mb: z.number().positive(),
  max_label_name_length: z.number().int().positive(),
  max_label_value_length: z.number().int().positive(),
  max_label_names_per_series: z.number().int().positive(),
  reject_old_samples: z.boolean(),
  reject_old_samples_max_age: duration,
  creation_grace_period: duration,
  max_line_size: byteSize,
  max_line_size_truncate: z.boolean(),
  increment_duplicate_timestamp: z.boolean(),
  discover_log_levels: z.boolean(),
  max_streams_per_user: z.number().int().nonnegative(),
  max_global_streams_per_user: z.number().int().nonnegative(),
  unordered_writes: z.boolean(),
  per_stream_rate_limit: byteSize,
  per_stream_rate_limit_burst: byteSize,
  max_chunks_per_query: z.number().int().positive(),
  max_query_series: z.number().int().positive(),
  max_query_lookback: duration,
  max_query_length: duration,
  max_query_range: duration,
  max_query_parallelism: z.number().int().positive(),
  tsdb_max_query_parallelism: z.number().int().positive(),
  cardinality_limit: z.number().int().positive(),
  max_streams_matchers_per_query: z.number().int().positive(),
  max_concurrent_tail_requests: z.number().int().positive(),
  max_entries_limit_per_query: z.number().int().positive(),
  max_cache_freshness_per_query: duration,
  split_queries_by_interval: duration,
  query_timeout: duration,
  volume_enabled: z.boolean(),
  allow_structured_metadata: z.boolean(),
  retention_period: duration,
  retention_stream: z.array(
    z.strictObject({ selector: z.string().min(1), priority: z.number().int().nonnegative(), period: duration }),
  ),
};

const limits = z.strictObject(
  Object.fromEntries(Object.entries(LIMITS_SHAPE).map(([k, v]) => [k, v.optional()])) as {
    [K in keyof typeof LIMITS_SHAPE]: z.ZodOptional<(typeof LIMITS_SHAPE)[K]>;
  },
);

/** Top-level blocks of a Loki 3.x config file that `configOverrides` may touch. */
export const LOKI_CONFIG_BLOCKS = [
  "server",
  "distributor",
  "querier",
  "query_range",
  "ruler",
  "ingester_client",
  "ingester",
  "pattern_ingester",
  "index_gateway",
  "storage_config",
  "chunk_store_config",
  "schema_config",
  "compactor",
  "limits_config",
  "frontend_worker",
  "frontend",
  "query_scheduler",
  "memberlist",
  "runtime_config",
  "tracing",
  "analytics",
  "common",
  "operational_config",
  "auth_enabled",
  "target",
] as const;

const template = z.strictObject({
  distributor: componentTemplate.optional(),
  ingester: componentTemplate.optional(),
  querier: componentTemplate.optional(),
  queryFrontend: componentTemplate.optional(),
  compactor: componentTemplate.optional(),
  indexGateway: componentTemplate.optional(),
  ruler: componentTemplate.optional(),
  monolithic: componentTemplate.optional(),
});

export const lokiStackSpec = z.strictObject({
  size: z.enum(SIZES).describe("Preset replicas, cpu and memory, like the Loki Operator's sizes."),
  mode: z.enum(["microservices", "monolithic"]).default("microservices"),
  cluster: z.string().regex(ECS_NAME, "must be an ECS cluster name (1-255 letters, digits, '-' or '_')"),
  image: z
    .string()
    .regex(/^[^\s]{1,255}$/, "must be a container image reference such as grafana/loki:3.5.0")
    .default("grafana/loki:3.5.0"),
  configInitImage: z
    .string()
    .regex(/^[^\s]{1,255}$/, "must be a container image reference with a POSIX shell")
    .default("public.ecr.aws/docker/library/busybox:1.37")
    .describe("Writes the Loki config from SSM into the task before Loki starts; needs /bin/sh."),
  storage: z.strictObject({ s3: s3Storage }),
  schemas: z.array(schemaEntry).min(1, "must list at least one schema, such as { from: 2024-01-01, version: v13 }"),
  replicationFactor: z.number().int().min(1).max(5).optional().describe("Defaults to the size preset's."),
  ingester: z.strictObject({ wal: wal.default({ volume: "ephemeral" }) }).default({ wal: { volume: "ephemeral" } }),
  compactor: z
    .strictObject({
      workingDirectory: compactorVolume.default({ volume: "ephemeral" }),
      retentionDeleteDelay: duration.default("2h"),
    })
    .default({ workingDirectory: { volume: "ephemeral" }, retentionDeleteDelay: "2h" }),
  network: z.strictObject({
    subnets: z.array(subnet).min(1).max(16),
    securityGroups: z.array(securityGroup).min(1).max(5),
    assignPublicIp: z.boolean().default(false),
  }),
  discovery: z.strictObject({
    namespace: z.string().regex(DNS_NAME, "must be a DNS name such as loki.internal"),
  }),
  iam: z.strictObject({
    executionRoleArn: roleArn.describe("Pulls images, reads the config parameters, writes logs."),
    taskRoleArn: roleArn.describe("What Loki itself may do: read and write the S3 bucket."),
  }),
  logging: z
    .strictObject({
      group: z.string().regex(/^[\w#/.-]{1,512}$/, "must be a CloudWatch log group name").optional(),
      region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, "must be an AWS region such as eu-west-1").optional(),
    })
    .default({}),
  rules: z.strictObject({ enabled: z.boolean().default(false) }).default({ enabled: false }),
  template: template.default({}),
  limits: limits.default({}),
  configOverrides: z
    .record(z.string(), z.unknown())
    .default({})
    .describe("Deep-merged into every component's Loki config; blocks the operator owns are refused."),
  drift: z.strictObject({ policy: z.enum(["repair", "report"]).default("repair") }).default({ policy: "repair" }),
  suspend: z.boolean().default(false),
  deletionPolicy: z.enum(["retain", "delete"]).default("retain"),
});

export const lokiStackDocument = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND),
  metadata: z.strictObject({
    name: z
      .string()
      .max(63)
      .regex(DNS_LABEL, "must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"),
    labels: z.record(z.string(), z.string()).optional(),
  }),
  spec: lokiStackSpec,
});

export type LokiStackDocument = z.infer<typeof lokiStackDocument>;
export type LokiStackSpec = LokiStackDocument["spec"];
export type LokiStackInput = z.input<typeof lokiStackDocument>;
