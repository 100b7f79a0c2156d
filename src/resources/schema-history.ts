// Schemas can never change retroactively: once a schema's date has passed,
// Loki has written data under it. Compares a new spec's schemas with those the
// operator recorded as applied (the Loki Operator's ValidateSchemas rules).
import type { Issue } from "./issues.ts";
import type { ResolvedSchema } from "./resolve.ts";
import { SCHEMA_UPDATE_BUFFER_MS } from "./validate.ts";

type SchemaKey = Pick<ResolvedSchema, "from" | "version" | "store">;

const same = (a: SchemaKey, b: SchemaKey) => a.from === b.from && a.version === b.version && a.store === b.store;

export function checkSchemaHistory(applied: readonly SchemaKey[], next: readonly SchemaKey[], now: Date): Issue[] {
  if (applied.length === 0) return [];
  const today = now.toISOString().slice(0, 10);
  const cutoff = new Date(now.getTime() + SCHEMA_UPDATE_BUFFER_MS).toISOString().slice(0, 10);
  const issues: Issue[] = [];
  for (const old of applied) {
    if (old.from > today) continue;
    const i = next.findIndex((s) => s.from === old.from);
    if (i < 0) {
      issues.push({ path: "spec.schemas", message: `removes the schema from ${old.from} (${old.version}), which is already in effect; schemas can never change retroactively` });
    } else if (!same(old, next[i]!)) {
      issues.push({ path: `spec.schemas[${i}]`, message: `changes the schema from ${old.from}, which is already in effect (was ${old.version}/${old.store}); add a new schema dated after ${cutoff} instead` });
    }
  }
  next.forEach((s, i) => {
    if (applied.some((a) => a.from === s.from)) return;
    if (s.from <= cutoff) {
      issues.push({ path: `spec.schemas[${i}].from`, message: `a new schema must start in the future, after ${cutoff} (a schema dated ${s.from} would rewrite history)` });
    }
  });
  return issues;
}
