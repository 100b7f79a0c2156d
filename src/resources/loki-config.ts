// Builds the Loki 3.x configuration of each unit (pure). Components share one
// config; ingester ordinals (and the monolithic task) add their fixed ring
// identity and their own WAL directory.
import { stringify } from "yaml";
import { COMPONENTS, LOKI_PORTS, type Component } from "./components.ts";
import { DELETION_MARKER_PREFIX, keepsMarkersInObjectStore } from "./image.ts";
import type { ResolvedStack } from "./resolve.ts";
import type { Size } from "./sizes.ts";
import { unitName, type Unit } from "./units.ts";

export const PATHS = {
  config: "/etc/loki",
  configFile: "/etc/loki/config.yaml",
  data: "/loki",
  wal: "/loki/wal",
  index: "/loki/index",
  cache: "/loki/cache",
  compactor: "/loki/compactor",
  rules: "/loki/rules-temp",
} as const;

/** Ingestion limits per size, from the Loki Operator's sizes.go; query limits are shared by all sizes. */
const SIZE_LIMITS: Record<Size, Record<string, number>> = {
  "1x.demo": { ingestion_rate_mb: 4, ingestion_burst_size_mb: 6 },
  "1x.pico": { ingestion_rate_mb: 4, ingestion_burst_size_mb: 6, max_global_streams_per_user: 10000 },
  "1x.extra-small": { ingestion_rate_mb: 4, ingestion_burst_size_mb: 6, max_global_streams_per_user: 10000 },
  "1x.small": { ingestion_rate_mb: 15, ingestion_burst_size_mb: 20, max_global_streams_per_user: 10000 },
  "1x.medium": { ingestion_rate_mb: 50, ingestion_burst_size_mb: 20, max_global_streams_per_user: 25000 },
};
const QUERY_LIMITS = {
  max_entries_limit_per_query: 5000,
  max_chunks_per_query: 2_000_000,
  max_query_series: 500,
  query_timeout: "3m",
};

type Yaml = Record<string, unknown>;

function isPlainObject(v: unknown): v is Yaml {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deep merge where `over` wins; lists are replaced, not concatenated. */
export function deepMerge(base: Yaml, over: Yaml): Yaml {
  const out: Yaml = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

/** WAL replay must fit in the task: half the ingester's memory, at least 512 MiB (Loki Operator, PR #13066). */
export function replayMemoryCeilingMb(memoryMiB: number): number {
  return Math.max(Math.floor(memoryMiB / 2), 512);
}

function s3Config(stack: ResolvedStack): Yaml {
  const { s3 } = stack.spec.storage;
  return {
    bucketnames: s3.bucket,
    region: s3.region,
    ...(s3.endpoint ? { endpoint: s3.endpoint } : {}),
    ...(s3.forcePathStyle ? { s3forcepathstyle: true } : {}),
  };
}

function baseConfig(stack: ResolvedStack): Yaml {
  const monolithic = stack.spec.mode === "monolithic";
  const ns = stack.spec.discovery.namespace;
  const address = (component: Component, ordinal?: number) => `${unitName(stack.name, component, ordinal)}.${ns}`;
  // Seeds for gossip: every component service and the first ingester ordinal.
  // Not every ordinal: the list must not depend on the ingester count, or
  // scaling ingesters would change every component's config and roll them all.
  const gossipMembers = monolithic
    ? []
    : stack.components.map((c) => `dns+${c.component === "ingester" ? address("ingester", 0) : address(c.component)}:${LOKI_PORTS.gossip}`);
  const hasBoltdb = stack.schemas.some((s) => s.store === "boltdb-shipper");

  const config: Yaml = {
    auth_enabled: false,
    server: {
      http_listen_port: LOKI_PORTS.http,
      grpc_listen_port: LOKI_PORTS.grpc,
      log_level: "info",
      grpc_server_max_recv_msg_size: 104857600,
      grpc_server_max_send_msg_size: 104857600,
    },
    common: {
      path_prefix: PATHS.data,
      replication_factor: stack.replicationFactor,
      ring: {
        kvstore: { store: monolithic ? "inmemory" : "memberlist" },
        heartbeat_timeout: "1m",
        // Under awsvpc the task's ENI is eth0 on EC2 and eth1 on some Fargate
        // platforms; never advertise loopback (an empty or 127.0.0.1 ring on ECS is a known failure).
        instance_interface_names: ["eth0", "eth1"],
      },
      storage: { s3: s3Config(stack) },
      ...(monolithic ? {} : { compactor_address: `http://${address("compactor")}:${LOKI_PORTS.http}` }),
    },
    schema_config: {
      configs: stack.schemas.map((s) => ({
        from: s.from,
        store: s.store,
        object_store: s.objectStore,
        schema: s.version,
        index: { prefix: "index_", period: s.indexPeriod },
      })),
    },
    storage_config: {
      tsdb_shipper: {
        active_index_directory: PATHS.index,
        cache_location: PATHS.cache,
        // How often readers (index gateways; queriers without one) list the store for index files
        // that ingesters uploaded: a removed or replaced ingester's last lines are invisible until
        // then (Loki's default is 5m). One LIST per table held per interval. A little over Loki's
        // 1-minute listing cache, so every resync sees a fresh listing. Set on every component:
        // Loki derives other delays from it.
        resync_interval: "70s",
        ...(monolithic
          ? {}
          : { index_gateway_client: { server_address: `dns:///${address("index-gateway")}:${LOKI_PORTS.grpc}` } }),
      },
      ...(hasBoltdb
        ? { boltdb_shipper: { active_index_directory: `${PATHS.data}/boltdb-index`, cache_location: `${PATHS.data}/boltdb-cache` } }
        : {}),
    },
    ingester: {
      lifecycler: { join_after: "30s", final_sleep: "0s", num_tokens: 512 },
      chunk_idle_period: "1h",
      max_chunk_age: "2h",
      chunk_encoding: "snappy",
      // A replaced task must never leave a dead member that blocks writes. A single binary's
      // in-memory ring has only itself: there, autoforget only warns every heartbeat.
      autoforget_unhealthy: !monolithic,
    },
    compactor: {
      working_directory: PATHS.compactor,
      compaction_interval: "10m",
      retention_enabled: stack.retentionEnabled,
      ...(stack.retentionEnabled ? { retention_delete_delay: stack.spec.compactor.retentionDeleteDelay } : {}),
      // Retention's deletion markers in the bucket, not on the task's disk: a replaced compactor loses none.
      ...(stack.retentionEnabled && keepsMarkersInObjectStore(stack.spec.image) ? { deletion_marker_object_store_prefix: DELETION_MARKER_PREFIX } : {}),
      delete_request_store: "s3",
    },
    limits_config: {
      ...SIZE_LIMITS[stack.spec.size],
      ...QUERY_LIMITS,
      reject_old_samples: true,
      reject_old_samples_max_age: "168h",
      allow_structured_metadata: stack.schemas.at(-1)?.version === "v13",
      ...stack.spec.limits,
    },
  };
  if (!monolithic) {
    config.memberlist = {
      join_members: gossipMembers,
      bind_port: LOKI_PORTS.gossip,
      abort_if_cluster_join_fails: false,
      rejoin_interval: "90s",
      max_join_retries: 10,
      dead_node_reclaim_time: "30s",
    };
    config.frontend_worker = { frontend_address: `${address("query-frontend")}:${LOKI_PORTS.grpc}` };
    config.frontend = { max_outstanding_per_tenant: 2048, compress_responses: true };
  }
  if (stack.spec.rules.enabled || monolithic) {
    config.ruler = {
      rule_path: PATHS.rules,
      enable_api: true,
      storage: { type: "s3", s3: s3Config(stack) },
      ...(monolithic ? {} : { ring: { kvstore: { store: "memberlist" } } }),
    };
  }
  return config;
}

/** The parts that give one ingester ordinal (or the monolithic task) its own identity and WAL. */
function identity(stack: ResolvedStack, unit: Unit): Yaml {
  const persistentWal = stack.spec.ingester.wal.volume === "efs";
  const walDir = `${PATHS.wal}/${unit.name}`;
  return {
    common: { ring: { instance_id: unit.name } },
    ingester: {
      lifecycler: {
        id: unit.name,
        ...(persistentWal ? { tokens_file_path: `${walDir}/tokens` } : {}),
      },
      wal: {
        enabled: true,
        dir: walDir,
        replay_memory_ceiling: `${replayMemoryCeilingMb(unit.resources.memory)}MB`,
        // Flush on SIGTERM, whatever the volume: ECS stops tasks the operator
        // did not plan (Spot, a failed host) with no other warning. When the
        // operator removes an ordinal, it asks for the flush itself first
        // (/ingester/shutdown), free of Fargate's 120 s stopTimeout.
        flush_on_shutdown: true,
      },
    },
  };
}

export function buildLokiConfig(stack: ResolvedStack, unit: Unit): Yaml {
  const hasIngester = unit.component === "ingester" || unit.component === "monolithic";
  const config = hasIngester ? deepMerge(baseConfig(stack), identity(stack, unit)) : baseConfig(stack);
  return deepMerge(config, stack.spec.configOverrides);
}

export function renderLokiConfigYaml(stack: ResolvedStack, unit: Unit): string {
  const header = `# Loki config for ${unit.name} (-target=${COMPONENTS[unit.component].target}), rendered by ecs-lokistack-operator; edit the LokiStack spec, not this file.\n`;
  return header + stringify(buildLokiConfig(stack, unit), { lineWidth: 0 });
}
