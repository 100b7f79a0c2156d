// Spec documents for tests: a valid base and a way to derive variants from it.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import type { ResolvedStack } from "../../src/resources/resolve.ts";
import { validateDocument } from "../../src/resources/validate.ts";

export const NOW = new Date("2026-11-25T12:00:00Z");

export type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form test documents

export function baseDoc(): Doc {
  return {
    apiVersion: "loki.ecs.dev/v1",
    kind: "LokiStack",
    metadata: { name: "prod-logs" },
    spec: {
      size: "1x.small",
      cluster: "logging",
      image: "grafana/loki:3.5.0",
      storage: { s3: { bucket: "acme-loki", region: "eu-west-1" } },
      schemas: [{ from: "2024-01-01", version: "v13" }],
      network: { subnets: ["subnet-0123456789abcdef0"], securityGroups: ["sg-0123456789abcdef0"] },
      discovery: { namespace: "loki.internal" },
      iam: {
        executionRoleArn: "arn:aws:iam::123456789012:role/exec",
        taskRoleArn: "arn:aws:iam::123456789012:role/task",
      },
    },
  };
}

/** A copy of the base document with `edit` applied. */
export function docWith(edit: (d: Doc) => void): Doc {
  const d = baseDoc();
  edit(d);
  return d;
}

export function exampleDoc(name: string): Doc {
  return parse(readFileSync(new URL(`../../manifests/examples/${name}.yaml`, import.meta.url), "utf8")) as Doc;
}

export function resolved(doc: Doc): ResolvedStack {
  const r = validateDocument(doc, { now: NOW });
  if (!r.ok) throw new Error(`expected a valid spec: ${JSON.stringify(r.errors)}`);
  return r.stack;
}
