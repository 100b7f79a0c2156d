// Property tests: validation never throws on anything, every valid spec renders,
// rendering is deterministic, and the safety invariants hold for every render.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FARGATE_SIZES, isValidFargateSize } from "../src/resources/fargate.ts";
import { canonicalJson } from "../src/resources/hash.ts";
import { canonicalService, canonicalTaskDefinition, diffCanonical } from "../src/resources/normalize.ts";
import { render } from "../src/resources/render.ts";
import type { ResolvedStack } from "../src/resources/resolve.ts";
import { SIZES } from "../src/resources/sizes.ts";
import { TAGS } from "../src/resources/tags.ts";
import { validateDocument, validateText } from "../src/resources/validate.ts";
import { describedService, describedTaskDefinition } from "./helpers/ecs-describe.ts";
import { baseDoc, exampleDoc, NOW, type Doc } from "./helpers/specs.ts";

const RUNS = 2000;

// ---- arbitraries ----

const fargateSize = fc.constantFrom(...[...FARGATE_SIZES].flatMap(([cpu, mems]) => mems.map((memory) => ({ cpu, memory }))));

const componentTemplate = (opts: { replicas?: fc.Arbitrary<number> }) =>
  fc.record(
    {
      ...(opts.replicas ? { replicas: opts.replicas } : {}),
      size: fargateSize,
      env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string({ maxLength: 12 }), { maxKeys: 3 }),
    },
    { requiredKeys: [] },
  ).map(({ size, ...rest }) => ({ ...rest, ...(size ? { cpu: size.cpu, memory: size.memory } : {}) }));

/** Specs built to be valid: every field drawn from its valid range. */
const validDoc: fc.Arbitrary<Doc> = fc
  .record({
    name: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/),
    size: fc.constantFrom(...SIZES),
    mode: fc.constantFrom("microservices", "monolithic"),
    rf: fc.integer({ min: 1, max: 3 }),
    extraIngesters: fc.integer({ min: 0, max: 4 }),
    wal: fc.oneof(
      fc.constant({ volume: "ephemeral" }),
      fc.constant({ volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointRoot: "/wal" }),
    ),
    compactorEfs: fc.boolean(),
    retention: fc.option(fc.constantFrom("744h", "30d", "0s"), { nil: undefined }),
    rules: fc.boolean(),
    image: fc.constantFrom("grafana/loki:3.5.0", "grafana/loki:3.4.2", "grafana/loki:3.7.1", "grafana/loki:3.6.0", "123456789012.dkr.ecr.eu-west-1.amazonaws.com/loki:custom"),
    querier: componentTemplate({ replicas: fc.integer({ min: 1, max: 6 }) }),
    distributor: componentTemplate({ replicas: fc.integer({ min: 1, max: 6 }) }),
    compactor: componentTemplate({}),
    monolithic: componentTemplate({}),
    subnets: fc.uniqueArray(fc.stringMatching(/^subnet-[0-9a-f]{17}$/), { minLength: 1, maxLength: 3 }),
    policy: fc.constantFrom("repair", "report"),
    suspend: fc.boolean(),
  })
  .map((r) => {
    const d = baseDoc();
    d.metadata.name = r.name;
    Object.assign(d.spec, {
      size: r.size,
      mode: r.mode,
      image: r.image,
      rules: { enabled: r.rules },
      drift: { policy: r.policy },
      suspend: r.suspend,
      ingester: { wal: r.wal },
      network: { ...d.spec.network, subnets: r.subnets },
      ...(r.retention ? { limits: { retention_period: r.retention } } : {}),
      ...(r.compactorEfs ? { compactor: { workingDirectory: { volume: "efs", fileSystemId: "fs-0fedcba9876543210" } } } : {}),
    });
    if (r.mode === "monolithic") {
      d.spec.template = { monolithic: r.monolithic };
    } else {
      d.spec.replicationFactor = r.rf;
      d.spec.template = {
        querier: r.querier,
        distributor: r.distributor,
        compactor: r.compactor,
        ingester: { replicas: r.rf + r.extraIngesters },
      };
    }
    return d;
  });

/** Every path to a value inside a document. */
function pathsOf(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== "object") return [prefix];
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...entries.flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
}

type Mutation = { at: number; op: "delete" | "replace" | "addKey"; value: unknown; key: string };

function mutate(doc: Doc, mutations: Mutation[]): unknown {
  let d: unknown = structuredClone(doc);
  for (const m of mutations) {
    const paths = pathsOf(d);
    const path = paths[m.at % paths.length]!;
    if (path.length === 0) {
      d = m.op === "replace" ? m.value : d;
      continue;
    }
    let parent = d as Record<string | number, unknown>;
    for (const seg of path.slice(0, -1)) parent = parent[seg] as Record<string | number, unknown>;
    const last = path[path.length - 1]!;
    if (m.op === "delete") {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (m.op === "replace") parent[last] = m.value;
    else {
      const target = parent[last];
      if (target && typeof target === "object" && !Array.isArray(target)) (target as Record<string, unknown>)[m.key] = m.value;
    }
  }
  return d;
}

const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom("delete", "replace", "addKey"),
  value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(0, -1, 1, 2, 256, 4096, "", "v13", "efs", "2024-01-01", null)),
  key: fc.oneof(fc.constantFrom("shared_store", "replicas", "__proto__", "constructor", "cpu"), fc.string({ maxLength: 8 })),
});

// ---- invariants every render must satisfy ----

function checkInvariants(stack: ResolvedStack): void {
  const out = render(stack);
  const component = (tags: { key?: string; value?: string }[] | undefined) => tags?.find((t) => t.key === TAGS.component)?.value;
  const names = out.services.map((s) => s.serviceName);
  expect(new Set(names).size).toBe(names.length);
  expect(out.taskDefinitions.map((t) => t.family)).toEqual(names);

  const singletons = out.services.filter((s) => ["compactor", "monolithic"].includes(component(s.tags)!));
  expect(singletons).toHaveLength(1);
  for (const s of [...singletons, ...out.services.filter((x) => component(x.tags) === "ingester")]) {
    expect(s.desiredCount).toBe(1);
    expect(s.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
  }
  if (stack.spec.mode === "microservices") {
    const ingesters = stack.components.find((c) => c.component === "ingester")!.replicas;
    expect(out.services.filter((s) => component(s.tags) === "ingester")).toHaveLength(ingesters);
    expect(ingesters).toBeGreaterThanOrEqual(stack.replicationFactor);
  }
  const walDirs = Object.values(out.lokiConfig)
    .map((y) => /\n {4}dir: (.*)\n/.exec(y)?.[1])
    .filter((x) => x !== undefined);
  expect(new Set(walDirs).size).toBe(walDirs.length);
  for (const td of out.taskDefinitions) {
    expect(isValidFargateSize(Number(td.cpu), Number(td.memory))).toBe(true);
    expect(td.tags?.find((t) => t.key === TAGS.managedBy)?.value).toBe("ecs-lokistack-operator");
  }
  for (const y of Object.values(out.lokiConfig)) expect(y).not.toContain("shared_store");
}

// ---- properties ----

describe("validation never throws", () => {
  it("on arbitrary JSON values", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = validateDocument(v, { now: NOW });
        expect(typeof r.ok).toBe("boolean");
      }),
      { numRuns: RUNS },
    );
  });

  it("on arbitrary text", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        expect(typeof validateText(text, { now: NOW }).ok).toBe("boolean");
      }),
      { numRuns: RUNS },
    );
  });

  it("on mutated valid specs, and whatever passes renders safely", () => {
    const seeds = [baseDoc(), exampleDoc("small"), exampleDoc("monolithic"), exampleDoc("efs-wal")];
    let stillValid = 0;
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 }), (seed, ms) => {
        const r = validateDocument(mutate(seed, ms), { now: NOW });
        if (r.ok) {
          stillValid++;
          checkInvariants(r.stack);
        } else for (const e of r.errors) expect(e.path.length).toBeGreaterThan(0);
      }),
      { numRuns: RUNS },
    );
    // The mutations must leave enough specs valid for the render half to mean something.
    expect(stillValid).toBeGreaterThan(RUNS / 20);
  });
});

describe("valid specs", () => {
  it("always validate, always render, and satisfy the safety invariants", () => {
    fc.assert(
      fc.property(validDoc, (doc) => {
        const r = validateDocument(doc, { now: NOW });
        expect(r.ok ? [] : r.errors).toEqual([]);
        if (r.ok) checkInvariants(r.stack);
      }),
      { numRuns: 1000 },
    );
  });

  it("render deterministically, whatever the key order of the input", () => {
    fc.assert(
      fc.property(validDoc, (doc) => {
        const reordered = JSON.parse(canonicalJson(doc)) as Doc;
        const a = validateDocument(doc, { now: NOW });
        const b = validateDocument(reordered, { now: NOW });
        if (!a.ok || !b.ok) throw new Error("expected valid");
        expect(canonicalJson(render(a.stack))).toBe(canonicalJson(render(b.stack)));
        expect(canonicalJson(render(a.stack))).toBe(canonicalJson(render(a.stack)));
      }),
      { numRuns: 300 },
    );
  });

  it("normalize to an empty diff against their ECS describe form", () => {
    fc.assert(
      fc.property(validDoc, (doc) => {
        const r = validateDocument(doc, { now: NOW });
        if (!r.ok) throw new Error("expected valid");
        const out = render(r.stack);
        for (const td of out.taskDefinitions) {
          const d = describedTaskDefinition(td);
          expect(diffCanonical(canonicalTaskDefinition(td), canonicalTaskDefinition(d.taskDefinition!, d.tags))).toEqual([]);
        }
        for (const s of out.services) expect(diffCanonical(canonicalService(s), canonicalService(describedService(s)))).toEqual([]);
      }),
      { numRuns: 300 },
    );
  });

  it("carry a spec hash that is equal exactly when the rest of the object is", () => {
    const specHash = (o: { tags?: { key?: string; value?: string }[] }) => o.tags?.find((t) => t.key === TAGS.specHash)?.value;
    const withoutHash = (o: { tags?: { key?: string; value?: string }[] }) => canonicalJson({ ...o, tags: o.tags?.filter((t) => t.key !== TAGS.specHash) });
    fc.assert(
      fc.property(validDoc, validDoc, (d1, d2) => {
        const a = validateDocument(d1, { now: NOW });
        const b = validateDocument(d2, { now: NOW });
        if (!a.ok || !b.ok) throw new Error("expected valid");
        const objects = [...render(a.stack).taskDefinitions, ...render(a.stack).services];
        const others = [...render(b.stack).taskDefinitions, ...render(b.stack).services];
        for (const x of objects) {
          for (const y of others) expect(specHash(x) === specHash(y)).toBe(withoutHash(x) === withoutHash(y));
        }
      }),
      { numRuns: 100 },
    );
  });
});
