// Validation never throws: it returns every error (blocking) and warning
// (non-blocking) it finds, each naming the path and what would be valid.
// A spec may be a SecureString, and these messages reach logs, the status
// parameter, `plan` and `status`: a message names the path, the expected type
// or the allowed values (from the schema, or bounds set by other fields), and at
// most the *type* of what was given, never a string the spec gave. Numbers
// appear only in the cross-field rules that compare them (Fargate pairs,
// replicas against the replication factor, autoscaling bounds).
import { parse as parseYaml, YAMLParseError } from "yaml";
import type { z } from "zod";
import { COMPONENTS, type Component } from "./components.ts";
import { describeFargateMemory, FARGATE_CPUS, FARGATE_SIZES, isValidFargateSize } from "./fargate.ts";
import { healthCheckFor, keepsMarkersInObjectStore, lokiVersionOf } from "./image.ts";
import { formatPath, type Issue, type PathSegment, unknownKeyMessage } from "./issues.ts";
import { resolveStack, type ResolvedStack } from "./resolve.ts";
import { LOKI_CONFIG_BLOCKS, lokiStackDocument, type LokiStackDocument } from "./schema.ts";
import { unitsOf } from "./units.ts";

export type ValidationResult =
  | { ok: true; stack: ResolvedStack; warnings: Issue[] }
  | { ok: false; errors: Issue[]; warnings: Issue[] };

export interface ValidateOptions {
  /** The clock for "a schema must already be in effect"; injectable so results are reproducible. */
  now?: Date;
}

/** Schemas need to be in effect this far ahead of now (the Loki Operator's StorageSchemaUpdateBuffer). */
export const SCHEMA_UPDATE_BUFFER_MS = 2 * 60 * 60 * 1000;
/** Service names become DNS labels in the discovery namespace, so they are held to 63, not ECS's 255. */
const MAX_UNIT_NAME = 63;

/** Parses YAML or JSON text, then validates it. */
export function validateText(text: string, options: ValidateOptions = {}): ValidationResult {
  // Nothing but blank lines and comments (an empty file too).
  if (/^(\s*(#.*)?\n)*\s*(#.*)?$/.test(text)) {
    return { ok: false, errors: [{ path: "(document)", message: "the file is empty: it should hold one LokiStack (apiVersion, kind, metadata, spec)" }], warnings: [] };
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { prettyErrors: true, uniqueKeys: true, logLevel: "error" });
  } catch (e) {
    return { ok: false, errors: [{ path: "(document)", message: `not valid YAML or JSON: ${describeYamlError(e)}` }], warnings: [] };
  }
  return validateDocument(doc, options);
}

export function validateDocument(input: unknown, options: ValidateOptions = {}): ValidationResult {
  const parsed = lokiStackDocument.safeParse(input, { reportInput: true });
  if (!parsed.success) {
    // A value of the wrong type says so once: its other checks (a string's length measured
    // against an array's limit) describe a value the field could never hold.
    const wrongType = new Set(parsed.error.issues.filter((i) => i.code === "invalid_type").map((i) => i.path.join("\u0000")));
    const issues = parsed.error.issues.filter((i) => i.code === "invalid_type" || !wrongType.has(i.path.join("\u0000")));
    return { ok: false, errors: issues.map(describeZodIssue), warnings: [] };
  }
  const stack = resolveStack(parsed.data);
  const errors: Issue[] = [];
  const warnings: Issue[] = [];
  checkTemplates(parsed.data, stack, errors, warnings);
  checkReplication(parsed.data, stack, errors, warnings);
  checkSchemas(stack, options.now ?? new Date(), errors);
  checkNames(stack, errors);
  checkVolumes(stack, errors, warnings);
  checkOverrides(parsed.data.spec.configOverrides, errors);
  const health = healthCheckFor(stack.spec.image);
  if (health.warning) {
    // healthCheckFor's own wording quotes the image when it has no version: say it without the value.
    const message = lokiVersionOf(stack.spec.image)
      ? health.warning
      : "has no Loki version in its tag (such as grafana/loki:3.5.0); assuming 3.7 or newer and checking health with 'loki -health'";
    warnings.push({ path: "spec.image", message, reason: "NoContainerHealthCheck" });
  }
  return errors.length > 0 ? { ok: false, errors, warnings } : { ok: true, stack, warnings };
}

// ---- zod issues → messages a person can act on ----

/** Object keys a schema accepts at a path (looking through optional/default/union wrappers). */
function knownKeysAt(path: readonly PropertyKey[]): string[] {
  let nodes: z.core.$ZodType[] = [lokiStackDocument];
  const unwrap = (n: z.core.$ZodType): z.core.$ZodType[] => {
    const def = n._zod.def as unknown as Record<string, unknown> & { type: string };
    switch (def.type) {
      case "optional":
      case "default":
      case "nullable":
      case "prefault":
      case "readonly":
        return unwrap(def.innerType as z.core.$ZodType);
      case "pipe":
        return unwrap(def.in as z.core.$ZodType);
      case "union":
        return (def.options as z.core.$ZodType[]).flatMap(unwrap);
      default:
        return [n];
    }
  };
  const shapeOf = (n: z.core.$ZodType): Record<string, z.core.$ZodType> | undefined => {
    const def = n._zod.def as unknown as { type: string; shape?: Record<string, z.core.$ZodType> };
    return def.type === "object" ? def.shape : undefined;
  };
  for (const seg of path) {
    nodes = nodes.flatMap(unwrap).flatMap((n): z.core.$ZodType[] => {
      const def = n._zod.def as unknown as Record<string, unknown> & { type: string };
      if (def.type === "object") {
        const child = shapeOf(n)?.[String(seg)];
        return child ? [child] : [];
      }
      if (def.type === "array") return [def.element as z.core.$ZodType];
      if (def.type === "record") return [def.valueType as z.core.$ZodType];
      return [];
    });
  }
  const keys = new Set<string>();
  for (const n of nodes.flatMap(unwrap)) for (const k of Object.keys(shapeOf(n) ?? {})) keys.add(k);
  return [...keys];
}

/** What kind of value was given: never the value itself (it may be a secret). */
function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  return article(typeof v === "object" ? "object" : typeof v);
}

/**
 * YAML error codes (yaml's ErrorCode) whose messages are fixed text: their own
 * wording is kept. The others' messages may quote the source (an escape
 * sequence, a tag, a token): those are said in words of our own.
 */
const YAML_FIXED_TEXT = new Set([
  "ALIAS_PROPS",
  "BAD_ALIAS",
  "BAD_INDENT",
  "BAD_SCALAR_START",
  "BLOCK_AS_IMPLICIT_KEY",
  "BLOCK_IN_FLOW",
  "DUPLICATE_KEY",
  "IMPOSSIBLE",
  "KEY_OVER_1024_CHARS",
  "MISSING_CHAR",
  "MULTILINE_IMPLICIT_KEY",
  "MULTIPLE_ANCHORS",
  "MULTIPLE_TAGS",
  "NON_STRING_KEY",
  "TAB_AS_INDENT",
]);
const YAML_IN_WORDS: Record<string, string> = {
  BAD_COLLECTION_TYPE: "a tag does not fit its collection",
  BAD_DIRECTIVE: "an unknown or invalid directive",
  BAD_DQ_ESCAPE: "an invalid escape sequence in a double-quoted string",
  BAD_PROP_ORDER: "anchors and tags must come after the indicator",
  TAG_RESOLVE_FAILED: "an unknown tag",
  MULTIPLE_DOCS: "the file holds more than one YAML document (---): put one LokiStack in each file",
  UNEXPECTED_TOKEN: "unexpected content",
};

/** What kind of YAML error and where: never the source text around it. */
function describeYamlError(e: unknown): string {
  // The yaml package throws a ReferenceError for an alias (*name) whose anchor (&name) is not defined before it.
  if (e instanceof ReferenceError) return "an alias (*name) refers to an anchor (&name) that is not defined before it";
  if (!(e instanceof YAMLParseError)) return "the document could not be parsed";
  const what = YAML_FIXED_TEXT.has(e.code)
    ? e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")
    : (YAML_IN_WORDS[e.code] ?? e.code.toLowerCase().replaceAll("_", " "));
  const at = e.linePos?.[0];
  return at ? `${what} at line ${at.line}, column ${at.col}` : what;
}

function describeZodIssue(issue: z.core.$ZodIssue): Issue {
  const segments = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)) as PathSegment[];
  const path = formatPath(segments);
  switch (issue.code) {
    case "unrecognized_keys": {
      const key = issue.keys[0] ?? "";
      const keyPath = formatPath([...segments, key]);
      if (key === "shared_store") return { path: keyPath, message: sharedStoreMessage };
      const extra = issue.keys.length > 1 ? ` (and ${issue.keys.slice(1).map((k) => `'${k}'`).join(", ")})` : "";
      return { path: keyPath, message: unknownKeyMessage(key, knownKeysAt(issue.path)) + extra };
    }
    case "invalid_type":
      if (issue.input === undefined) return { path, message: `is required (${issue.expected})` };
      return { path, message: `must be ${article(issue.expected)}, not ${typeName(issue.input)}` };
    // The values listed below come from the schema, never from the input.
    case "invalid_value":
      if (issue.values.length === 1) return { path, message: `must be ${JSON.stringify(issue.values[0])}` };
      return { path, message: `must be one of ${issue.values.map((v) => String(v)).join(" | ")}` };
    case "invalid_union": {
      const options = (issue as unknown as { options?: unknown[] }).options;
      if (options) return { path, message: `must be one of ${options.map(String).join(" | ")}` };
      return { path, message: "does not match any accepted form" };
    }
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const word = issue.code === "too_small" ? "at least" : "at most";
      if (issue.message && !issue.message.startsWith("Too ")) return { path, message: issue.message };
      if (issue.origin === "array") return { path, message: `must have ${word} ${bound} item(s)` };
      if (issue.origin === "string") return { path, message: `must be ${word} ${bound} characters long` };
      return { path, message: `must be ${word} ${bound}` };
    }
    case "invalid_key": {
      const inner = issue.issues[0];
      return { path, message: `is not a valid key: ${inner?.message ?? "rejected"}` };
    }
    default:
      return { path, message: issue.message };
  }
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

const sharedStoreMessage =
  "was removed in Loki 3 (tsdb_shipper and the compactor use the schema's object_store; for deletes set compactor.delete_request_store); remove it";

// ---- cross-field rules ----

function templatePath(component: Component, field: string): string {
  return `spec.template.${COMPONENTS[component].templateKey}.${field}`;
}

function checkTemplates(doc: LokiStackDocument, stack: ResolvedStack, errors: Issue[], warnings: Issue[]): void {
  const { spec } = doc;
  const deployed = new Set(stack.components.map((c) => c.component));
  for (const [key, override] of Object.entries(spec.template)) {
    if (override === undefined) continue;
    const component = (Object.keys(COMPONENTS) as Component[]).find((c) => COMPONENTS[c].templateKey === key)!;
    if (deployed.has(component)) continue;
    if (component === "ruler" && spec.mode === "microservices") {
      warnings.push({
        path: "spec.template.ruler",
        message: "is ignored while spec.rules.enabled is false",
        reason: "UnusedTemplate",
      });
    } else {
      errors.push({
        path: `spec.template.${key}`,
        message:
          spec.mode === "monolithic"
            ? "does not apply in monolithic mode (only spec.template.monolithic does)"
            : "applies only in monolithic mode (set spec.mode: monolithic, or use the per-component templates)",
      });
    }
  }

  for (const c of stack.components) {
    const info = COMPONENTS[c.component];
    const override = spec.template[info.templateKey] ?? {};
    if (info.role === "singleton" && c.replicas !== 1) {
      errors.push({
        path: templatePath(c.component, "replicas"),
        message:
          c.component === "compactor"
            ? "must be 1 (Loki needs exactly one compactor per object store)"
            : "must be 1 (a monolithic Loki must never run two tasks against one store)",
      });
    } else if (c.replicas < 1) {
      errors.push({
        path: templatePath(c.component, "replicas"),
        message: "must be at least 1 (to stop the stack, set spec.suspend or delete its spec)",
      });
    }
    if (!FARGATE_SIZES.has(c.cpu)) {
      errors.push({ path: templatePath(c.component, "cpu"), message: `must be a Fargate cpu: one of ${FARGATE_CPUS.join(", ")}` });
    } else if (!isValidFargateSize(c.cpu, c.memory)) {
      // Numbers only: the cpu is one of FARGATE_CPUS by now, the memory an integer (this wording is documented and
      // matched by the CLI's tests). At the cpu path the memory is the size preset's, so the message names what fits it.
      if (override.memory !== undefined || override.cpu === undefined) {
        errors.push({
          path: templatePath(c.component, "memory"),
          message: `cpu ${c.cpu} with memory ${c.memory} is not a Fargate task size: ${describeFargateMemory(c.cpu)}`,
        });
      } else {
        const fits = FARGATE_CPUS.filter((cpu) => isValidFargateSize(cpu, c.memory));
        errors.push({
          path: templatePath(c.component, "cpu"),
          message: `does not fit the size preset's memory ${c.memory} on Fargate: ${fits.length > 0 ? `that memory needs cpu ${fits.join(" or ")}` : "no cpu does"}, or set memory too`,
        });
      }
    }
    if (c.autoscaling) {
      const path = templatePath(c.component, "autoscaling");
      if (!info.autoscalable) {
        const allowed = Object.values(COMPONENTS).filter((x) => x.autoscalable).map((x) => x.templateKey);
        errors.push({ path, message: `is allowed only for stateless components (${allowed.join(", ")})` });
      } else if (c.autoscaling.min > c.autoscaling.max) {
        errors.push({ path: `${path}.min`, message: `must not exceed max (${c.autoscaling.max})` });
      } else if (c.replicas < c.autoscaling.min || c.replicas > c.autoscaling.max) {
        errors.push({
          path: templatePath(c.component, "replicas"),
          message: `must be within autoscaling.min..max (${c.autoscaling.min}..${c.autoscaling.max}), the initial desiredCount`,
        });
      }
    }
  }
}

function checkReplication(doc: LokiStackDocument, stack: ResolvedStack, errors: Issue[], warnings: Issue[]): void {
  const rf = stack.replicationFactor;
  if (doc.spec.mode === "monolithic") {
    if (rf !== 1) errors.push({ path: "spec.replicationFactor", message: "must be 1 in monolithic mode (one ingester)" });
    return;
  }
  const ingester = stack.components.find((c) => c.component === "ingester")!;
  // Numbers only (validated integers, or the size preset's): no string of the spec reaches these messages.
  const path = doc.spec.template.ingester?.replicas !== undefined ? templatePath("ingester", "replicas") : "spec.replicationFactor";
  if (ingester.replicas < rf) {
    errors.push({
      path,
      message: `ingester replicas (${ingester.replicas}) must be at least the replication factor (${rf}), or writes cannot reach a quorum`,
    });
  } else if (ingester.replicas === rf && rf > 1) {
    warnings.push({
      path,
      message: `ingester replicas equal the replication factor (${rf}): any ingester restart stops writes; run at least ${rf + 1}`,
      reason: "InsufficientIngesterReplicas",
    });
  }
}

function checkSchemas(stack: ResolvedStack, now: Date, errors: Issue[]): void {
  const schemas = stack.schemas;
  schemas.forEach((s, i) => {
    if (s.version === "v13" && s.store !== "tsdb") {
      errors.push({ path: `spec.schemas[${i}].store`, message: "must be tsdb for schema v13" });
    }
    for (let j = 0; j < i; j++) {
      if (schemas[j]!.from === s.from) {
        errors.push({ path: `spec.schemas[${i}].from`, message: `duplicates spec.schemas[${j}].from; dates must be unique` });
        return;
      }
    }
    const prev = schemas[i - 1];
    if (prev && s.from < prev.from) {
      errors.push({ path: `spec.schemas[${i}].from`, message: `must be after spec.schemas[${i - 1}].from; list schemas oldest first` });
    }
  });
  const last = schemas.length - 1;
  const newest = schemas[last];
  if (newest && (newest.version !== "v13" || newest.store !== "tsdb")) {
    errors.push({
      path: `spec.schemas[${last}].version`,
      // Both are enum values of the schema, never free text.
      message: `the newest schema must be v13 with store tsdb (found ${newest.version}/${newest.store}); add one dated in the future`,
    });
  }
  const cutoff = new Date(now.getTime() + SCHEMA_UPDATE_BUFFER_MS).toISOString().slice(0, 10);
  if (schemas.length > 0 && !schemas.some((s) => s.from <= cutoff)) {
    errors.push({
      path: "spec.schemas[0].from",
      message: `no schema is in effect by ${cutoff}: the oldest schema must start on or before it (for a new stack, use yesterday's date)`,
    });
  }
}

function checkNames(stack: ResolvedStack, errors: Issue[]): void {
  const longest = unitsOf(stack).reduce((a, u) => (u.name.length > a.length ? u.name : a), "");
  if (longest.length > MAX_UNIT_NAME) {
    const room = stack.name.length - (longest.length - MAX_UNIT_NAME);
    // Units are named <name><suffix>: the suffix is the operator's, the name is the spec's and is not repeated.
    const suffix = longest.startsWith(stack.name) ? longest.slice(stack.name.length) : "";
    errors.push({
      path: "metadata.name",
      message: `makes the service name '<name>${suffix}' ${longest.length} characters long; service names are discovery DNS labels (at most ${MAX_UNIT_NAME}), so use at most ${room} characters`,
    });
  }
}

function checkVolumes(stack: ResolvedStack, errors: Issue[], warnings: Issue[]): void {
  const { wal } = stack.spec.ingester;
  const ordinals = stack.spec.mode === "monolithic" ? 1 : (stack.components.find((c) => c.component === "ingester")?.replicas ?? 0);
  if (wal.volume === "efs" && wal.accessPointIds) {
    if (wal.accessPointIds.length < ordinals) {
      errors.push({
        path: "spec.ingester.wal.accessPointIds",
        message: `lists ${wal.accessPointIds.length} access point(s) for ${ordinals} ingester(s): each ordinal needs its own`,
      });
    }
    wal.accessPointIds.forEach((id, i) => {
      const first = wal.accessPointIds!.indexOf(id);
      if (first !== i) {
        errors.push({
          path: `spec.ingester.wal.accessPointIds[${i}]`,
          message: `is the same access point as [${first}]: two ingesters must never share a WAL`,
        });
      }
    });
  }
  const dir = stack.spec.compactor.workingDirectory;
  if (dir.volume === "efs" && wal.volume === "efs" && dir.fileSystemId === wal.fileSystemId && !wal.accessPointIds) {
    const inside = (a: string, b: string) => a === b || a.startsWith(b.endsWith("/") ? b : `${b}/`);
    if (inside(dir.rootDirectory, wal.accessPointRoot) || inside(wal.accessPointRoot, dir.rootDirectory)) {
      errors.push({
        path: "spec.compactor.workingDirectory.rootDirectory",
        message: "overlaps the ingester WAL root (spec.ingester.wal.accessPointRoot) on the same file system; use a separate directory such as /compactor",
      });
    }
  }
  // From Loki 3.7 the markers live in the bucket (loki-config), and the working directory holds nothing that must survive.
  if (stack.retentionEnabled && dir.volume === "ephemeral" && !keepsMarkersInObjectStore(stack.spec.image)) {
    warnings.push({
      path: "spec.compactor.workingDirectory",
      message:
        "retention is enabled but the compactor's working directory is ephemeral: retention markers are lost when its task is replaced and chunks can be left undeleted; use volume: efs, or Loki 3.7 or newer (markers in the bucket)",
      reason: "RetentionOnEphemeralStorage",
    });
  }
}

/** Config the operator owns and renders itself; an override would break an invariant. */
const OWNED_CONFIG: Record<string, string> = {
  schema_config: "set spec.schemas instead",
  target: "the operator sets -target per service",
  "common.storage": "set spec.storage instead",
  "common.ring.instance_id": "each ingester ordinal has a fixed instance id",
  "ingester.lifecycler.id": "each ingester ordinal has a fixed instance id",
  "ingester.wal.dir": "each ingester ordinal has its own WAL directory",
  "storage_config.tsdb_shipper.active_index_directory": "fixed at /loki/index",
  "storage_config.tsdb_shipper.cache_location": "fixed at /loki/cache",
  "compactor.working_directory": "set spec.compactor.workingDirectory instead",
  "memberlist.join_members": "derived from spec.discovery.namespace",
  limits_config: "set spec.limits instead",
};

function checkOverrides(overrides: Record<string, unknown>, errors: Issue[]): void {
  const walk = (value: unknown, path: string[]): void => {
    if (value === null || typeof value !== "object" || Array.isArray(value)) return;
    for (const [key, child] of Object.entries(value)) {
      const here = [...path, key];
      const dotted = here.join(".");
      const where = formatPath(["spec", "configOverrides", ...here]);
      if (key === "shared_store") errors.push({ path: where, message: sharedStoreMessage });
      else if (OWNED_CONFIG[dotted]) errors.push({ path: where, message: `is managed by the operator (${OWNED_CONFIG[dotted]})` });
      else walk(child, here);
    }
  };
  for (const key of Object.keys(overrides)) {
    if (!(LOKI_CONFIG_BLOCKS as readonly string[]).includes(key)) {
      errors.push({ path: formatPath(["spec", "configOverrides", key]), message: unknownKeyMessage(key, LOKI_CONFIG_BLOCKS).replace("field", "Loki config block") });
    }
  }
  walk(overrides, []);
}
