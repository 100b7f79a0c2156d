// How a drift reads to a person: each changed field with its old and new
// value, never the values of environment variables, secrets or labels. Pure.
import type { FieldDiff } from "../resources/normalize.ts";
import type { Drift, FieldChange } from "./types.ts";

/** Paths whose values may hold credentials or config: only their names are shown. */
const HIDDEN = /(^|\.)(environment|secrets|dockerLabels)(\[|\.|$)/;
const HIDDEN_VALUE = "(hidden)";

/** A value with every environment, secret and label value inside it hidden, at any depth (a whole container added or removed). */
function scrub(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(scrub);
  if (value === null || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if ((k === "environment" || k === "secrets") && Array.isArray(v)) out[k] = v.map((item: { name?: string }) => ({ name: item?.name, value: HIDDEN_VALUE }));
    else if (k === "dockerLabels" && v && typeof v === "object") out[k] = Object.fromEntries(Object.keys(v).map((label) => [label, HIDDEN_VALUE]));
    else out[k] = scrub(v);
  }
  return out;
}

/** Field changes from a canonical diff (expected = desired, observed = ECS), with hidden values masked. */
export function fieldChanges(diffs: readonly FieldDiff[]): FieldChange[] {
  return diffs.map((d) => {
    const hide = HIDDEN.test(d.path);
    const mask = (v: unknown) => (v === undefined ? undefined : hide ? HIDDEN_VALUE : scrub(v));
    const from = mask(d.observed);
    const to = mask(d.expected);
    return { path: d.path, ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
  });
}

function show(v: unknown): string {
  if (v === undefined) return "(none)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/** `containerDefinitions[loki].image: grafana/loki:3.5.0 → grafana/loki:3.4.2` */
export function formatChange(c: FieldChange): string {
  return c.from === HIDDEN_VALUE && c.to === HIDDEN_VALUE ? `${c.path}: changed (value hidden)` : `${c.path}: ${show(c.from)} → ${show(c.to)}`;
}

const MAX_LISTED = 6;

function changeList(changes: readonly FieldChange[]): string {
  const listed = changes.slice(0, MAX_LISTED).map(formatChange);
  if (changes.length > MAX_LISTED) listed.push(`and ${changes.length - MAX_LISTED} more`);
  return listed.join("; ");
}

/** One line: what differs, in the words of the fields. */
export function describeDrift(d: Drift): string {
  switch (d.kind) {
    case "MissingService":
      return d.state === "DRAINING" ? "the service was deleted and is draining; it is recreated once INACTIVE" : "the service was deleted";
    case "DesiredCountChanged":
      return `desiredCount: ${d.from} → ${d.to}${d.range ? ` (autoscaling range ${d.range.min}–${d.range.max})` : ""}`;
    case "TaskDefinitionChanged":
      return `${d.revision}: ${changeList(d.changes)}`;
    case "DeploymentConfigurationWeakened":
    case "ServiceSettingsChanged":
    case "TagDrift":
      return changeList(d.changes);
    case "ExtraSingletonTask":
    case "DuplicateOrdinalTask":
      return `${d.task} runs beside ${d.keep} (${d.group.startsWith("service:") ? "a second task of the service" : `started outside the service, ${d.group}${d.startedBy ? `, by ${d.startedBy}` : ""}`})`;
    case "StrayTask":
      return `${d.task} runs ${d.unit}, which the stack no longer has (started outside any service, ${d.group}${d.startedBy ? `, by ${d.startedBy}` : ""})`;
    case "UnexpectedTaskReplacement":
      return `${d.task} stopped: ${d.stopCode}: ${d.reason}`;
    case "OrphanedService":
      return d.ordinal !== undefined ? `ingester ordinal ${d.ordinal} is above the desired count (desiredCount ${d.desiredCount})` : `no longer part of the stack (desiredCount ${d.desiredCount})`;
    case "ConfigChanged":
      return d.state === "missing"
        ? `${d.parameter} was deleted`
        : d.state === "plaintext"
          ? `${d.parameter} is not encrypted like the SecureString spec (a String, or under another KMS key): it is written again under the spec's key`
          : `${d.parameter} was edited: it differs from the rendered Loki config`;
    case "ServiceDiscoveryMissing":
      return d.missing === "service" ? "its Cloud Map service was deleted: the DNS name does not resolve" : "the service no longer registers its tasks in its Cloud Map service";
    case "NameCollision":
      return "a service of this name exists without the ownership tag; it is left alone";
    case "RingMemberNotDesired":
      return `ring member ${d.member} (${d.state}, ${d.address || "no address"}) is not a desired ingester ordinal`;
    case "IngesterNotActive":
      return `${d.task} has run for ${d.runningSeconds} s but its ingester is ${d.state === "absent" ? "not in the ring" : `${d.state} in the ring`}`;
  }
}
