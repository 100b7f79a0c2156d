// Merges the size preset under the user's template overrides: the one place
// where preset-derived values (replicas, cpu, memory, replication factor) are
// decided. Works on a document that passed the zod schema; the cross-field
// rules are checked afterwards on the result (validate.ts), so that they see
// exactly what would be built.
import { COMPONENTS, MICROSERVICES, type Component } from "./components.ts";
import type { LokiStackDocument, LokiStackSpec, SchemaEntry } from "./schema.ts";
import { SIZE_PRESETS } from "./sizes.ts";

export interface ResolvedComponent {
  component: Component;
  replicas: number;
  cpu: number;
  memory: number;
  env: Record<string, string>;
  autoscaling?: { min: number; max: number };
}

export type ResolvedSchema = Required<Pick<SchemaEntry, "from" | "version" | "objectStore" | "indexPeriod">> & {
  store: "tsdb" | "boltdb-shipper";
};

export interface ResolvedStack {
  name: string;
  spec: LokiStackSpec;
  replicationFactor: number;
  /** The components this stack runs, in a fixed order. */
  components: ResolvedComponent[];
  schemas: ResolvedSchema[];
  retentionEnabled: boolean;
  logGroup: string;
  logRegion: string;
}

export function deployedComponents(spec: LokiStackSpec): Component[] {
  if (spec.mode === "monolithic") return ["monolithic"];
  return MICROSERVICES.filter((c) => c !== "ruler" || spec.rules.enabled);
}

export function resolveSchemas(schemas: readonly SchemaEntry[]): ResolvedSchema[] {
  return schemas.map((s) => ({
    from: s.from,
    version: s.version,
    store: s.store ?? (s.version === "v13" ? "tsdb" : "boltdb-shipper"),
    objectStore: s.objectStore,
    indexPeriod: s.indexPeriod,
  }));
}

/** True when retention_period asks for retention (Loki's default 0s means keep forever). */
export function retentionEnabled(spec: LokiStackSpec): boolean {
  const p = spec.limits.retention_period;
  return p !== undefined && !/^(0+(ms|s|m|h|d|w|y))+$/.test(p);
}

export function resolveStack(doc: LokiStackDocument): ResolvedStack {
  const { spec } = doc;
  const preset = SIZE_PRESETS[spec.size];
  const components = deployedComponents(spec).map((component): ResolvedComponent => {
    const base = preset.components[component];
    const override = spec.template[COMPONENTS[component].templateKey] ?? {};
    return {
      component,
      replicas: override.replicas ?? base.replicas,
      cpu: override.cpu ?? base.cpu,
      memory: override.memory ?? base.memory,
      env: override.env ?? {},
      ...(override.autoscaling ? { autoscaling: override.autoscaling } : {}),
    };
  });
  const replicationFactor =
    spec.replicationFactor ?? (spec.mode === "monolithic" ? 1 : preset.replicationFactor);
  return {
    name: doc.metadata.name,
    spec,
    replicationFactor,
    components,
    schemas: resolveSchemas(spec.schemas),
    retentionEnabled: retentionEnabled(spec),
    logGroup: spec.logging.group ?? `/lokistack/${doc.metadata.name}`,
    logRegion: spec.logging.region ?? spec.storage.s3.region,
  };
}
