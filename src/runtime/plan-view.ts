// What `lokistack plan` shows, like `terraform plan`: per stack and unit, each
// action with its symbol and the attributes it changes, the drift that asked
// for it, what waits and why, a totals line and the next step. The text and
// the JSON (`-o json`) are built from one document, whose shape is versioned.
import { describeAction } from "../controllers/execute.ts";
import { describeDrift } from "../controllers/drift.ts";
import type { StackResult } from "../controllers/reconciler.ts";
import type { Action, FieldChange } from "../controllers/types.ts";
import { formatIssue } from "../resources/issues.ts";

/** Bumped only when a field of the JSON changes meaning or goes away; new fields may appear. */
export const PLAN_FORMAT_VERSION = 1;

export type ChangeSymbol = "+" | "~" | "-" | "!";

export interface Totals {
  create: number;
  change: number;
  destroy: number;
  /** Safety actions: tasks stopped (a second compactor, a duplicate ordinal) and ingesters flushed. */
  stopTasks: number;
  flushIngesters: number;
}

export interface PlannedChange {
  symbol: ChangeSymbol;
  action: Action["kind"];
  unit: string;
  component: string;
  /** The drifts it repairs, or Create / Update / Delete. */
  repairs: string[];
  attributes: FieldChange[];
  /** What it acts on: service, task, parameter, and so on. */
  details: Record<string, unknown>;
}

export interface StackPlan {
  name: string;
  generation: number | null;
  mode: string;
  /** done, requeue, degraded (with reason and message) or error. */
  outcome: StackResult["outcome"];
  /** Why the spec is invalid, and any error of the pass. */
  errors: string[];
  creating: string[];
  updating: string[];
  drifts: { kind: string; unit: string; component: string; message: string }[];
  changes: PlannedChange[];
  waiting: { unit: string; reason: string }[];
  totals: Totals;
}

export interface PlanDocument {
  formatVersion: number;
  stacks: StackPlan[];
  totals: Totals;
}

const SAFETY = new Set<Action["kind"]>(["StopTask", "FlushIngester"]);
const DESTROY = new Set<Action["kind"]>(["DeleteService", "DeleteDiscoveryService", "DeleteParameter", "ForgetRingMember"]);
const CREATE = new Set<Action["kind"]>(["CreateService", "RegisterTaskDefinition", "CreateDiscoveryService"]);

function symbolOf(a: Action): ChangeSymbol {
  if (SAFETY.has(a.kind)) return "!";
  if (DESTROY.has(a.kind)) return "-";
  if (CREATE.has(a.kind) || (a.kind === "PutConfig" && a.repairs.includes("Create"))) return "+";
  return "~";
}

const noTotals = (): Totals => ({ create: 0, change: 0, destroy: 0, stopTasks: 0, flushIngesters: 0 });

function add(t: Totals, c: PlannedChange): void {
  if (c.action === "StopTask") t.stopTasks += 1;
  else if (c.action === "FlushIngester") t.flushIngesters += 1;
  else if (c.symbol === "+") t.create += 1;
  else if (c.symbol === "-") t.destroy += 1;
  else t.change += 1;
}

export function planDocument(results: readonly StackResult[]): PlanDocument {
  const totals = noTotals();
  const stacks = results.map((r): StackPlan => {
    const changes = r.planned.map((a): PlannedChange => ({ symbol: symbolOf(a), action: a.kind, unit: a.unit, component: a.component, repairs: a.repairs, attributes: a.changes ?? [], details: describeAction(a) }));
    const stackTotals = noTotals();
    for (const c of changes) {
      add(stackTotals, c);
      add(totals, c);
    }
    return {
      name: r.name,
      generation: r.generation ?? null,
      mode: r.mode,
      outcome: r.outcome,
      errors: [...r.errors.map(formatIssue), ...(r.error ? [r.error] : [])],
      creating: r.creating,
      updating: r.updating,
      drifts: r.drifts.map((d) => ({ kind: d.kind, unit: d.unit, component: d.component, message: describeDrift(d) })),
      changes,
      waiting: r.deferrals,
      totals: stackTotals,
    };
  });
  return { formatVersion: PLAN_FORMAT_VERSION, stacks, totals };
}

const show = (v: unknown) => (v === undefined ? "(none)" : JSON.stringify(v));

function attributeLine(c: FieldChange): string {
  if (c.from === undefined) return `+ ${c.path}: ${show(c.to)}`;
  if (c.to === undefined) return `- ${c.path}: ${show(c.from)}`;
  return `~ ${c.path}: ${show(c.from)} → ${show(c.to)}`;
}

/** What an action acts on, when its unit does not say it all. */
function target(c: PlannedChange): string {
  const d = c.details;
  const shown = Object.entries(d).filter(([k]) => !["service", "family", "fields", "discoveryService"].includes(k) && !(k === "desiredCount" && c.attributes.length > 0));
  return shown.length > 0 ? ` (${shown.map(([k, v]) => `${k} ${Array.isArray(v) ? v.join(",") : String(v)}`).join(", ")})` : "";
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

export function totalsLine(t: Totals): string {
  const safety = [`${count(t.stopTasks, "task")} to stop`, ...(t.flushIngesters > 0 ? [`${count(t.flushIngesters, "ingester")} to flush`] : [])];
  return `Plan: ${t.create} to create, ${t.change} to change, ${t.destroy} to destroy, ${safety.join(", ")}.`;
}

export const LEGEND = "Symbols: + create, ~ update in place, - destroy, ! safety action (stop a task, flush an ingester before it goes).";

/** The plan as a person reads it. */
export function formatPlan(doc: PlanDocument): string {
  const lines: string[] = [];
  for (const s of doc.stacks) {
    lines.push(`LokiStack ${s.name} · generation ${s.generation ?? "-"} · ${s.mode}`);
    for (const e of s.errors) lines.push(`  ✗ ${e}`);
    if (s.outcome.kind === "degraded") lines.push(`  ✗ Degraded (${s.outcome.reason}): ${s.outcome.message}`);
    if (s.creating.length > 0) lines.push(`  creating ${s.creating.length} unit(s): ${s.creating.join(", ")}`);
    if (s.updating.length > 0) lines.push(`  updating ${s.updating.length} unit(s) to generation ${s.generation ?? "-"}: ${s.updating.join(", ")}`);
    const units = [...new Set([...s.drifts.map((d) => d.unit), ...s.changes.map((c) => c.unit)])];
    for (const unit of units) {
      lines.push("", `  # ${unit}`);
      for (const d of s.drifts.filter((x) => x.unit === unit)) lines.push(`  drift ${d.kind}: ${d.message}`);
      for (const c of s.changes.filter((x) => x.unit === unit)) {
        lines.push(`  ${c.symbol} ${c.action}${target(c)}`);
        for (const a of c.attributes) lines.push(`      ${attributeLine(a)}`);
      }
    }
    if (s.waiting.length > 0) lines.push("", ...s.waiting.map((w) => `  … ${w.unit}: ${w.reason}`));
    if (s.changes.length === 0 && s.drifts.length === 0 && s.errors.length === 0 && s.outcome.kind !== "degraded") lines.push("  No changes. ECS matches the spec.");
    lines.push("");
  }
  const t = doc.totals;
  if (t.create + t.change + t.destroy + t.stopTasks + t.flushIngesters === 0) {
    lines.push(doc.stacks.some((s) => s.drifts.length > 0 || s.waiting.length > 0) ? "No changes to make now." : "No changes. Every stack matches its spec.");
    return `${lines.join("\n")}\n`;
  }
  lines.push(totalsLine(t), "", LEGEND);
  const only = doc.stacks.length === 1 ? ` ${doc.stacks[0]!.name}` : "";
  lines.push(`Next: \`lokistack apply${only}\` makes these changes now; a running operator makes them at its next resync.`);
  return `${lines.join("\n")}\n`;
}
