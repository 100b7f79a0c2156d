// The JSON Schema for editors, generated from the zod schema (the source of truth).
import { z } from "zod";
import { lokiStackDocument } from "./schema.ts";

export const JSON_SCHEMA_PATH = "manifests/lokistack.schema.json";

export function lokiStackJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(lokiStackDocument, { io: "input", unrepresentable: "any" }),
    $id: "https://loki.ecs.dev/schemas/lokistack-v1.json",
    title: "LokiStack",
    description:
      "A Grafana Loki stack on Amazon ECS, reconciled by ecs-lokistack-operator. Cross-field rules (one compactor, ingester replicas ≥ replication factor, Fargate sizes, schema order) are checked by `lokistack validate`.",
  };
}

export function lokiStackJsonSchemaText(): string {
  return `${JSON.stringify(lokiStackJsonSchema(), null, 2)}\n`;
}
