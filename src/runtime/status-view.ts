// What `lokistack status` shows, like `flux get`: one row per stack with
// whether it is Ready, the condition that matters most, how old it is, when
// an operator last reconciled it, and that condition's message. A status no
// operator refreshed reads Stale, a stack without one Unknown. Pure.
import type { Service } from "@aws-sdk/client-ecs";
import { isStale, type Condition, type StackStatus } from "../controllers/status.ts";
import { table } from "./table.ts";

export interface StackSummary {
  name: string;
  ready: "True" | "False" | "Unknown";
  /** Ready, Stale, Unknown, or the reason of what holds it back (Degraded's, InvalidSpec, Suspended, Updating, ...). */
  status: string;
  message: string;
  /** When the operator first wrote the stack's status. */
  since?: string;
  lastReconcileTime?: string;
  generation?: number;
}

const condition = (s: StackStatus, type: Condition["type"]) => s.conditions.find((c) => c.type === type);

export function summarize(name: string, hasSpec: boolean, status: StackStatus | undefined, now: Date): StackSummary {
  if (!status) {
    return { name, ready: "Unknown", status: "Unknown", message: hasSpec ? "no status yet: no operator has reconciled this spec" : "no spec and no status" };
  }
  const base = {
    name,
    generation: status.observedGeneration,
    ...(status.since ? { since: status.since } : {}),
    ...(status.lastReconcileTime ? { lastReconcileTime: status.lastReconcileTime } : {}),
  };
  if (isStale(status, now)) {
    const by = status.reconciledBy ? ` by ${status.reconciledBy}` : "";
    return { ...base, ready: "Unknown", status: "Stale", message: `not reconciled since ${status.lastReconcileTime ?? "ever"}${by}: is the operator running?` };
  }
  const ready = condition(status, "Ready");
  const readyFlag = ready?.status === "True" ? "True" : "False";
  for (const type of ["Degraded", "InvalidSpec", "Suspended"] as const) {
    const c = condition(status, type);
    if (c?.status === "True") return { ...base, ready: readyFlag, status: c.reason, message: c.message };
  }
  if (readyFlag === "True") return { ...base, ready: "True", status: "Ready", message: ready?.message ?? "" };
  const progressing = condition(status, "Progressing");
  const message = [ready?.message, progressing?.status === "True" ? progressing.message : undefined].filter(Boolean).join("; ");
  return { ...base, ready: "False", status: ready?.reason ?? "NotReady", message };
}

/** `12s`, `5m`, `3h`, `2d`: as kubectl and flux print ages. */
export function age(iso: string | undefined, now: Date): string {
  if (!iso) return "-";
  const seconds = Math.max(0, Math.round((now.getTime() - Date.parse(iso)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

const MESSAGE_WIDTH = 100;

export function formatSummaries(rows: readonly StackSummary[], now: Date): string {
  const cut = (s: string) => (s.length <= MESSAGE_WIDTH ? s : `${s.slice(0, MESSAGE_WIDTH - 1)}…`);
  return table(
    ["NAME", "READY", "STATUS", "AGE", "LAST-RECONCILED", "MESSAGE"],
    rows.map((r) => [r.name, r.ready, r.status, age(r.since, now), r.lastReconcileTime ? `${age(r.lastReconcileTime, now)} ago` : "never", cut(r.message)]),
  );
}

/** One stack in detail: its conditions, and each unit's service as ECS reports it now. */
export function formatDetail(status: StackStatus, services: ReadonlyMap<string, Service>, now: Date): string {
  const out: string[] = [];
  out.push(`\nGeneration ${status.observedGeneration} (applied ${status.appliedGeneration ?? "-"}, last converged ${status.convergedGeneration ?? "-"}) on cluster ${status.cluster ?? "-"}\n`);
  out.push(
    "\n",
    table(
      ["CONDITION", "STATUS", "REASON", "SINCE", "MESSAGE"],
      status.conditions.map((c) => [c.type, c.status, c.reason, age(c.lastTransitionTime, now), c.message]),
    ),
  );
  const names = [...new Set([...status.inventory.services, ...services.keys()])].sort();
  if (names.length > 0) {
    const rows = names.map((n) => {
      const s = services.get(n);
      const primary = s?.deployments?.find((d) => d.status === "PRIMARY");
      const revision = s?.taskDefinition?.slice(s.taskDefinition.lastIndexOf("/") + 1) ?? "-";
      return [n, String(s?.desiredCount ?? "-"), String(s?.runningCount ?? "-"), String(s?.pendingCount ?? "-"), revision, !s ? "missing" : s.status !== "ACTIVE" ? (s.status ?? "-") : (primary?.rolloutState ?? "-")];
    });
    out.push("\n", table(["UNIT", "DESIRED", "RUNNING", "PENDING", "REVISION", "ROLLOUT"], rows));
  }
  return out.join("");
}
