// The Loki components the operator runs, and the facts about each that every
// builder and check needs. One table, so a component's role is decided once.

export const MICROSERVICES = [
  "distributor",
  "ingester",
  "querier",
  "query-frontend",
  "compactor",
  "index-gateway",
  "ruler",
] as const;

export type MicroserviceComponent = (typeof MICROSERVICES)[number];
export type Component = MicroserviceComponent | "monolithic";

/** The key of a component under `spec.template` (camelCase, like the Loki Operator's CRD). */
export type TemplateKey =
  | "distributor"
  | "ingester"
  | "querier"
  | "queryFrontend"
  | "compactor"
  | "indexGateway"
  | "ruler"
  | "monolithic";

/**
 * How ECS may replace a component's tasks.
 * - singleton: at most one task ever (compactor, monolithic): stop before start.
 * - ordinal: one ECS service per ingester ordinal, each a singleton with a stable identity.
 * - stateless: may overlap during deployments, may autoscale.
 */
export type Role = "singleton" | "ordinal" | "stateless";

export interface ComponentInfo {
  templateKey: TemplateKey;
  /** Loki's `-target=` value. */
  target: string;
  role: Role;
  /** Whether Application Auto Scaling may own this component's desiredCount. */
  autoscalable: boolean;
}

export const COMPONENTS: Record<Component, ComponentInfo> = {
  distributor: { templateKey: "distributor", target: "distributor", role: "stateless", autoscalable: true },
  ingester: { templateKey: "ingester", target: "ingester", role: "ordinal", autoscalable: false },
  querier: { templateKey: "querier", target: "querier", role: "stateless", autoscalable: true },
  "query-frontend": { templateKey: "queryFrontend", target: "query-frontend", role: "stateless", autoscalable: true },
  compactor: { templateKey: "compactor", target: "compactor", role: "singleton", autoscalable: false },
  "index-gateway": { templateKey: "indexGateway", target: "index-gateway", role: "stateless", autoscalable: false },
  ruler: { templateKey: "ruler", target: "ruler", role: "stateless", autoscalable: false },
  monolithic: { templateKey: "monolithic", target: "all", role: "singleton", autoscalable: false },
};

/** Ports every Loki target listens on (the Loki Operator's values). */
export const LOKI_PORTS = { http: 3100, grpc: 9095, gossip: 7946 } as const;
