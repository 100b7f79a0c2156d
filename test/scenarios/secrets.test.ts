// A SecureString spec's values reach no log line, no status, no String
// parameter and no `plan` or `status` output. A marker is planted in every
// string field of the spec (and in its number and boolean fields where the spec
// is meant to be invalid), and the test looks for it everywhere the operator
// writes or prints. It may appear only in the spec itself and in the stack's
// config parameters, which are SecureString like the spec.
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { validateDocument } from "../../src/resources/validate.ts";
import { cli } from "../helpers/cli.ts";
import { checkedPass, condition, converge, convergedDemo, example, operatorHarness, status, type OperatorHarness } from "../helpers/operator.ts";
import { NOW, type Doc } from "../helpers/specs.ts";

const MARK = "mkr7Qz4Wsecret";
const STACK = "prod-logs";

/**
 * String fields of manifests/examples/small.yaml whose values are constrained
 * (literals, enums, patterns) or name the AWS objects the operator must name in
 * its status and logs (cluster, bucket, namespace, roles, network): the valid
 * variant keeps them as they are. Every other string field gets the marker.
 */
const KEPT = new Set([
  "apiVersion",
  "kind",
  "metadata.name",
  "spec.size",
  "spec.cluster",
  "spec.storage.s3.bucket",
  "spec.storage.s3.region",
  "spec.schemas.0.from",
  "spec.schemas.0.version",
  "spec.compactor.workingDirectory.volume",
  "spec.compactor.workingDirectory.fileSystemId",
  "spec.compactor.retentionDeleteDelay",
  "spec.network.subnets.0",
  "spec.network.subnets.1",
  "spec.network.subnets.2",
  "spec.network.securityGroups.0",
  "spec.discovery.namespace",
  "spec.iam.executionRoleArn",
  "spec.iam.taskRoleArn",
  "spec.limits.retention_period",
  "spec.limits.retention_stream.0.period",
  "spec.drift.policy",
  "spec.deletionPolicy",
]);

type Leaf = string | number | boolean | null;

/** A copy of `value` with every leaf passed through `f` (paths dotted, list indices as numbers). */
function mapLeaves(value: unknown, f: (leaf: Leaf, path: string) => unknown, path: string[] = []): unknown {
  if (Array.isArray(value)) return value.map((v, i) => mapLeaves(v, f, [...path, String(i)]));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, mapLeaves(v, f, [...path, k])]));
  }
  return f(value as Leaf, path.join("."));
}

function stringPaths(value: unknown): string[] {
  const out: string[] = [];
  mapLeaves(value, (leaf, path) => typeof leaf === "string" && out.push(path));
  return out;
}

/** small.yaml, with the free-text fields it lacks: labels, env values, a stream selector, a Loki override, images, a log group. */
function baseVariant(): Doc {
  const doc = parse(example("small")) as Doc;
  doc.metadata.labels = { owner: "team-logs" };
  doc.spec.configInitImage = "public.ecr.aws/docker/library/busybox:1.37";
  doc.spec.logging = { group: "/ecs/lokistack" };
  doc.spec.template.querier.env = { API_TOKEN: "token" };
  doc.spec.limits.retention_stream = [{ selector: '{app="audit"}', priority: 1, period: "2160h" }];
  doc.spec.configOverrides = { memberlist: { cluster_label: "prod" } };
  return doc;
}

/** Valid: the marker in every string field that takes free text, constrained fields kept valid. */
function validVariant(): Doc {
  return mapLeaves(baseVariant(), (leaf, path) => (typeof leaf === "string" && !KEPT.has(path) ? `${leaf}-${MARK}` : leaf)) as Doc;
}

/** Invalid where zod looks: the marker in every field, breaking each string's pattern or enum and each number's and boolean's type. */
function invalidVariant(): Doc {
  const doc = mapLeaves(baseVariant(), (leaf) => (typeof leaf === "string" ? `${MARK} ${leaf}` : typeof leaf === "number" || typeof leaf === "boolean" ? MARK : leaf)) as Doc;
  doc.spec.drift.polcy = MARK;
  doc.spec.suspend = `${MARK}`;
  doc.spec.template.querier.env.BAD_TYPE = [MARK];
  return doc;
}

/** Invalid only in the cross-field rules (the document's shape is right), with a warning on the image. */
function crossFieldVariant(): Doc {
  const doc = validVariant();
  doc.spec.image = `registry.example/loki-${MARK}`;
  doc.spec.ingester = { wal: { volume: "efs", fileSystemId: doc.spec.compactor.workingDirectory.fileSystemId, accessPointRoot: `/wal-${MARK}` } };
  doc.spec.compactor.workingDirectory.rootDirectory = `/wal-${MARK}/compactor`;
  return doc;
}


/** Every parameter version the control plane holds that is not the spec: name, type and value. */
function writtenParameters(op: OperatorHarness): { name: string; version: number; type: string; value: string }[] {
  return Object.values(op.cp.ssm.state.parameters)
    .filter((p) => p.name !== `/lokistack/${STACK}/spec`)
    .flatMap((p) => p.versions.map((v) => ({ name: p.name, version: v.version, type: v.type, value: v.value })));
}

/** One round: apply and plan passes, then `lokistack plan` and `lokistack status` as a person would run them. */
async function round(op: OperatorHarness): Promise<{ all: string[]; plan: string }> {
  await checkedPass(op);
  op.cp.step(1);
  await checkedPass(op);
  const planned = await op.pass({ mode: "plan" });
  const endpoint = ["--endpoint", op.cp.endpoint];
  const outputs = [
    await cli("plan", ...endpoint),
    await cli("plan", STACK, "-o", "json", ...endpoint),
    await cli("status", ...endpoint),
    await cli("status", STACK, ...endpoint),
  ];
  return { all: [JSON.stringify(planned), ...outputs.flatMap((o) => [o.stdout, o.stderr])], plan: outputs[0]!.stdout };
}

/** The marker is in no log line, no status or other String parameter, and no output; SecureString configs may hold it. */
function expectNoLeak(op: OperatorHarness, outputs: string[]): void {
  op.logs.forEach((line, i) => expect(JSON.stringify(line), `log line ${i}`).not.toContain(MARK));
  for (const p of writtenParameters(op)) {
    if (p.type !== "SecureString") expect(p.value, `${p.name} v${p.version} (${p.type})`).not.toContain(MARK);
  }
  outputs.forEach((o, i) => expect(o, `output ${i}`).not.toContain(MARK));
}

describe("a SecureString spec's values are found nowhere but in SecureString parameters", () => {
  it("the variants plant the marker in every string field", () => {
    const base = baseVariant();
    const paths = stringPaths(base);
    // The kept list names only fields small.yaml has: if the example changes, this list is looked at again.
    expect([...KEPT].filter((p) => !paths.includes(p))).toEqual([]);
    const valid = validVariant();
    const marked = stringPaths(valid).filter((p) => String(p.split(".").reduce<unknown>((v, k) => (v as Record<string, unknown>)[k], valid)).includes(MARK));
    expect(marked.sort()).toEqual(paths.filter((p) => !KEPT.has(p)).sort());
    expect(marked.length).toBeGreaterThanOrEqual(8);
    const r = validateDocument(valid, { now: NOW });
    expect(r.ok ? [] : r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
    const invalid = validateDocument(invalidVariant(), { now: NOW });
    expect(invalid.ok).toBe(false);
    // Each string field of the base is broken or carries the marker in the invalid variant.
    const text = stringify(invalidVariant());
    expect(text.split(MARK).length - 1).toBeGreaterThan(paths.length);
    const cross = validateDocument(crossFieldVariant(), { now: NOW });
    expect(cross.ok ? [] : cross.errors.map((e) => e.path)).toEqual(["spec.compactor.workingDirectory.rootDirectory"]);
  });

  it("valid, then invalid by type, then invalid across fields: no log, status, String parameter or output holds the marker", async () => {
    const op = await operatorHarness();
    const outputs: string[] = [];

    // 1. Valid: the stack converges; its config parameters are SecureString and hold the marker (from limits and overrides).
    await op.putSpec(stringify(validVariant()), STACK, "SecureString");
    await converge(op, STACK);
    outputs.push(...(await round(op)).all);
    expectNoLeak(op, outputs);
    const configs = writtenParameters(op).filter((p) => p.name.startsWith(`/lokistack/${STACK}/config/`));
    expect(configs.length).toBeGreaterThan(5);
    expect(configs.filter((p) => p.type !== "SecureString")).toEqual([]);
    expect(configs.every((p) => p.value.includes(MARK))).toBe(true);
    expect(condition(await status(op, STACK), "Ready")?.status).toBe("True");

    // 2. Invalid by type, enum, pattern and unknown key: status and plan say what is wrong, by path and type only.
    await op.putSpec(stringify(invalidVariant()), STACK, "SecureString");
    const second = await round(op);
    outputs.push(...second.all);
    expectNoLeak(op, outputs);
    const invalid = condition(await status(op, STACK), "InvalidSpec");
    expect(invalid?.status).toBe("True");
    // The condition's message is cut to fit the status; the log line and `plan` list every error.
    expect(invalid?.message).toMatch(/^generation 2: apiVersion: must be "loki\.ecs\.dev\/v1"/);
    expect(op.logs).toContainEqual(expect.objectContaining({ event: "spec.invalid", errors: expect.arrayContaining(["spec.template.querier.replicas: must be a number, not a string"]) }));
    expect(second.plan).toContain("✗ spec.suspend: must be a boolean, not a string");

    // 3. Invalid across fields, with a warning on the image: still nothing leaks.
    await op.putSpec(stringify(crossFieldVariant()), STACK, "SecureString");
    outputs.push(...(await round(op)).all);
    expectNoLeak(op, outputs);
    expect(condition(await status(op, STACK), "InvalidSpec")?.message).toContain("overlaps the ingester WAL root");

    // The stack kept converging to the valid generation, its configs still SecureString.
    expect(writtenParameters(op).filter((p) => p.name.includes("/config/") && p.type !== "SecureString")).toEqual([]);
  });
});

describe("a spec that becomes a SecureString", () => {
  it("has its String config parameters written again as SecureString, reported without their values", async () => {
    const op = await convergedDemo();
    await op.putSpec(example("demo"), "demo", "SecureString");
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts.map((d) => d.kind === "ConfigChanged" && d.state)).toEqual(Array(6).fill("plaintext"));
    const configs = Object.entries(op.cp.ssm.state.parameters).filter(([name]) => name.startsWith("/lokistack/demo/config/"));
    expect(configs.map(([, p]) => p.versions.at(-1)!.type)).toEqual(Array(6).fill("SecureString"));
    expect((await checkedPass(op)).results[0]!.drifts).toEqual([]);
  });
});

describe("a SecureString spec under a customer managed key", () => {
  it("keeps its config parameters under the same key, and follows the spec to a new key", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    const keys = ["1111aaaa-11aa-11aa-11aa-111111111111", "2222bbbb-22bb-22bb-22bb-222222222222"].map((id) => `arn:aws:kms:us-east-1:123456789012:key/${id}`);
    const configKeys = () => Object.values(op.cp.ssm.state.parameters).filter((p) => p.name.startsWith("/lokistack/demo/config/")).map((p) => p.versions.at(-1)!.keyId);
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: example("demo"), Type: "SecureString", KeyId: keys[0], Overwrite: true }));
    await converge(op, "demo");
    expect(configKeys()).toEqual(Array(6).fill(keys[0]));
    await op.ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: example("demo"), Type: "SecureString", KeyId: keys[1], Overwrite: true }));
    const r = await checkedPass(op);
    expect(r.results[0]!.drifts.filter((d) => d.kind === "ConfigChanged")).toHaveLength(6);
    expect(configKeys()).toEqual(Array(6).fill(keys[1]));
    expect((await checkedPass(op)).results[0]!.drifts).toEqual([]);
  });
});
