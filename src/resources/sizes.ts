// Size presets, modelled on the Grafana Loki Operator's sizes.go (replicas per
// component and replication factor) with its per-pod requests rounded up to the
// nearest valid Fargate task size. See shared/reference/loki-operator.md §2.
import type { Component } from "./components.ts";

export const SIZES = ["1x.demo", "1x.pico", "1x.extra-small", "1x.small", "1x.medium"] as const;
export type Size = (typeof SIZES)[number];

export interface ComponentSize {
  replicas: number;
  /** Fargate CPU units. */
  cpu: number;
  /** MiB. */
  memory: number;
}

export interface SizePreset {
  replicationFactor: number;
  components: Record<Component, ComponentSize>;
}

const c = (replicas: number, cpu: number, memory: number): ComponentSize => ({ replicas, cpu, memory });

export const SIZE_PRESETS: Record<Size, SizePreset> = {
  // One of each, replication factor 1: for trying things out, never for production.
  "1x.demo": {
    replicationFactor: 1,
    components: {
      distributor: c(1, 256, 512),
      ingester: c(1, 512, 1024),
      querier: c(1, 512, 1024),
      "query-frontend": c(1, 256, 512),
      compactor: c(1, 256, 512),
      "index-gateway": c(1, 256, 512),
      ruler: c(1, 256, 512),
      monolithic: c(1, 1024, 2048),
    },
  },
  "1x.pico": {
    replicationFactor: 2,
    components: {
      distributor: c(2, 512, 1024), // 500m / 500Mi
      ingester: c(3, 512, 3072), // 500m / 3Gi
      querier: c(2, 1024, 2048), // 750m / 1.5Gi
      "query-frontend": c(2, 512, 1024), // 500m / 500Mi
      compactor: c(1, 512, 1024), // 500m / 500Mi
      "index-gateway": c(2, 256, 512), // 150m / 250Mi
      ruler: c(2, 512, 1024), // 500m / 1Gi
      monolithic: c(1, 1024, 4096),
    },
  },
  "1x.extra-small": {
    replicationFactor: 2,
    components: {
      distributor: c(2, 1024, 2048), // 1 / 1Gi
      ingester: c(3, 1024, 6144), // 1 / 5.25Gi
      querier: c(2, 2048, 4096), // 1.5 / 3Gi
      "query-frontend": c(2, 1024, 2048), // 1 / 1Gi
      compactor: c(1, 1024, 2048), // 1 / 2Gi
      "index-gateway": c(2, 512, 1024), // 500m / 1Gi
      ruler: c(2, 1024, 2048), // 1 / 2Gi
      monolithic: c(1, 2048, 8192),
    },
  },
  "1x.small": {
    replicationFactor: 2,
    components: {
      distributor: c(2, 2048, 4096), // 2 / 2Gi
      ingester: c(3, 4096, 14336), // 2.5 / 13.25Gi
      querier: c(2, 4096, 8192), // 4 / 4Gi
      "query-frontend": c(2, 4096, 8192), // 4 / 2.5Gi
      compactor: c(1, 2048, 4096), // 2 / 4Gi
      "index-gateway": c(2, 1024, 2048), // 1 / 2Gi
      ruler: c(2, 4096, 8192), // 4 / 8Gi
      monolithic: c(1, 4096, 16384),
    },
  },
  "1x.medium": {
    replicationFactor: 2,
    components: {
      distributor: c(2, 2048, 4096), // 2 / 2Gi
      ingester: c(3, 8192, 32768), // 6 / 30Gi
      querier: c(3, 8192, 16384), // 6 / 10Gi
      "query-frontend": c(2, 4096, 8192), // 4 / 2.5Gi
      compactor: c(1, 2048, 4096), // 2 / 4Gi
      "index-gateway": c(2, 1024, 2048), // 1 / 2Gi
      ruler: c(2, 8192, 16384), // 8 / 16Gi
      monolithic: c(1, 8192, 32768),
    },
  },
};
