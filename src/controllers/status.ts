// The status a stack reports in `<prefix>/<name>/status`: Kubernetes-style
// conditions, counts, the applied schemas, the owned inventory and when it was
// last reconciled, by which replica. Pure; the reconciler writes it when
// anything but the reconcile time changed, and otherwise at most every
// HEARTBEAT_SECONDS, so a status nobody refreshes reads as stale. Always under
// SSM's 4 KB standard tier.
import type { Service } from "@aws-sdk/client-ecs";
import { canonicalJson } from "../resources/hash.ts";
import type { Issue } from "../resources/issues.ts";
import type { ResolvedSchema } from "../resources/resolve.ts";
import type { DegradedReason, Deferral, Drift } from "./types.ts";

export const STATUS_LIMIT_BYTES = 4096;
/** A converged stack's status is rewritten this often, so readers can tell a live operator from a stopped one. */
export const HEARTBEAT_SECONDS = 300;
/** A status is stale once no write came for a heartbeat plus this many resyncs. */
export const STALE_AFTER_RESYNCS = 3;

export type ConditionType = "Ready" | "Progressing" | "Degraded" | "InvalidSpec" | "Suspended";

export interface Condition {
  type: ConditionType;
  status: "True" | "False";
  reason: string;
  message: string;
  lastTransitionTime: string;
}

export interface ComponentCounts {
  desired: number;
  running: number;
  pending: number;
}

export interface StackStatus {
  observedGeneration: number;
  /** The generation being converged to: the newest valid one. */
  appliedGeneration?: number;
  /** The generation the stack was last Ready at: what a newer generation's rollout is measured from. */
  convergedGeneration?: number;
  cluster?: string;
  /** The Cloud Map namespace, so a deleted stack's discovery services can be found. */
  namespace?: string;
  deletionPolicy?: "retain" | "delete";
  conditions: Condition[];
  components: Record<string, ComponentCounts>;
  schemas: Pick<ResolvedSchema, "from" | "version" | "store">[];
  warnings?: string[];
  lastDrift?: { generation: number; count: number; kinds: Record<string, number>; at: string };
  inventory: { services: string[] };
  /** When an operator first wrote the stack's status: its age. */
  since?: string;
  /** When the operator last reconciled the stack (as of this write), and which replica did. */
  lastReconcileTime?: string;
  reconciledBy?: string;
  /** The writer's resync period and heartbeat, so a reader can judge staleness without knowing them. */
  resyncSeconds?: number;
  heartbeatSeconds?: number;
}

export interface StatusInput {
  previous?: StackStatus;
  generation: number;
  appliedGeneration?: number;
  cluster?: string;
  namespace?: string;
  deletionPolicy?: "retain" | "delete";
  invalid: Issue[];
  warnings: Issue[];
  suspended: boolean;
  reportOnly: boolean;
  schemas: StackStatus["schemas"];
  drifts: Drift[];
  actionsTaken: number;
  deferrals: Deferral[];
  errors: string[];
  /** A problem only the user can fix: it sets Degraded with its own reason. */
  degraded?: { reason: DegradedReason; message: string };
  /** Units are being created for the first time. */
  creating: boolean;
  /** Units are being rolled to a newer generation. */
  updating?: boolean;
  /** Desired count per unit (for an autoscaled one, the count within its range), the observed service (if any), and whether it is settled. */
  units: { name: string; component: string; desired: number; service?: Service; ready: boolean }[];
  owned: string[];
  now: Date;
  replica?: string;
  resyncSeconds?: number;
}

function truncate(s: string, max = 300): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

export function buildStatus(input: StatusInput): StackStatus {
  const components: Record<string, ComponentCounts> = {};
  for (const u of input.units) {
    const c = (components[u.component] ??= { desired: 0, running: 0, pending: 0 });
    c.desired += u.desired;
    c.running += u.service?.status === "ACTIVE" ? (u.service.runningCount ?? 0) : 0;
    c.pending += u.service?.status === "ACTIVE" ? (u.service.pendingCount ?? 0) : 0;
  }
  const converged = Object.values(components).every((c) => c.running === c.desired && c.pending === 0) && input.units.every((u) => u.ready);
  const repairable = input.drifts.filter((d) => d.kind !== "UnexpectedTaskReplacement");
  const collisions = input.drifts.filter((d) => d.kind === "NameCollision");

  const when = (type: ConditionType, active: boolean, reason: string, message: string): Omit<Condition, "lastTransitionTime"> => ({
    type,
    status: active ? "True" : "False",
    reason,
    message: truncate(message),
  });
  const kinds = (ds: Drift[]) => [...new Set(ds.map((d) => d.kind))].join(", ");
  const problem = input.degraded ?? (input.errors.length > 0 ? { reason: "ActionFailed", message: input.errors[0]! } : undefined);
  const raw = [
    input.units.length > 0 && repairable.length === 0 && converged && !input.updating && !problem
      ? when("Ready", true, "ReadyComponents", "all components are running the desired state")
      : when(
          "Ready",
          false,
          input.creating ? "Creating" : repairable.length > 0 ? "DriftDetected" : input.updating ? "Updating" : converged ? "NotReady" : "PendingComponents",
          input.creating
            ? "the stack is being created"
            : repairable.length > 0
              ? `drift: ${kinds(repairable)}`
              : input.updating
                ? `rolling out generation ${input.appliedGeneration ?? input.generation}`
                : converged
                  ? "not converged"
                  : "some components are not running their desired count yet",
        ),
    input.actionsTaken > 0 || input.deferrals.length > 0 || !converged || input.updating
      ? when("Progressing", true, input.creating ? "Creating" : input.updating ? "Updating" : input.actionsTaken > 0 ? "Repairing" : "Converging", input.actionsTaken > 0 ? `${input.actionsTaken} action(s) taken` : input.deferrals[0]?.reason ?? "tasks are starting")
      : when("Progressing", false, "Converged", "nothing to do"),
    problem
      ? when("Degraded", true, problem.reason, problem.message)
      : collisions.length > 0
        ? when("Degraded", true, "ResourceNotOwned", `${collisions.map((c) => c.unit).join(", ")} exist without the ownership tag`)
        : (input.suspended || input.reportOnly) && repairable.length > 0
          ? when("Degraded", true, "DriftNotRepaired", `${input.suspended ? "suspended" : "drift policy report"}: ${kinds(repairable)}`)
          : when("Degraded", false, "AsExpected", "no errors"),
    input.invalid.length > 0
      ? when("InvalidSpec", true, "InvalidSpec", `generation ${input.generation}: ${input.invalid.map((i) => `${i.path}: ${i.message}`).join("; ")}`)
      : when("InvalidSpec", false, "ValidSpec", `generation ${input.generation} is valid`),
    when("Suspended", input.suspended, input.suspended ? "Suspended" : "Active", input.suspended ? "spec.suspend is true: drift is reported, nothing is changed" : "reconciling"),
  ];
  const conditions = raw.map((c): Condition => {
    const before = input.previous?.conditions.find((p) => p.type === c.type);
    return { ...c, lastTransitionTime: before && before.status === c.status ? before.lastTransitionTime : input.now.toISOString() };
  });

  const driftKinds: Record<string, number> = {};
  for (const d of input.drifts) driftKinds[d.kind] = (driftKinds[d.kind] ?? 0) + 1;
  const previousDrift = input.previous?.lastDrift;
  const sameDrift = previousDrift && canonicalJson(previousDrift.kinds) === canonicalJson(driftKinds);
  const lastDrift =
    input.drifts.length === 0
      ? previousDrift
      : sameDrift
        ? previousDrift
        : { generation: input.generation, count: input.drifts.length, kinds: driftKinds, at: input.now.toISOString() };

  const isReady = conditions.some((c) => c.type === "Ready" && c.status === "True");
  const convergedGeneration = isReady ? input.appliedGeneration : input.previous?.convergedGeneration;
  const status: StackStatus = {
    observedGeneration: input.generation,
    ...(input.appliedGeneration !== undefined ? { appliedGeneration: input.appliedGeneration } : {}),
    ...(convergedGeneration !== undefined ? { convergedGeneration } : {}),
    ...(input.cluster ? { cluster: input.cluster } : {}),
    ...(input.namespace ? { namespace: input.namespace } : {}),
    ...(input.deletionPolicy ? { deletionPolicy: input.deletionPolicy } : {}),
    conditions,
    components,
    schemas: input.schemas,
    ...(input.warnings.length > 0 ? { warnings: input.warnings.map((w) => w.reason ?? w.message) } : {}),
    ...(lastDrift ? { lastDrift } : {}),
    inventory: { services: [...new Set(input.owned)].sort() },
    since: input.previous?.since ?? input.now.toISOString(),
    lastReconcileTime: input.now.toISOString(),
    ...(input.replica ? { reconciledBy: input.replica } : {}),
    ...(input.resyncSeconds ? { resyncSeconds: input.resyncSeconds } : {}),
    heartbeatSeconds: HEARTBEAT_SECONDS,
  };
  return fitStatus(status);
}

/** Whether `next` must be written over `previous`: something but the reconcile time changed, or the heartbeat is due. */
export function statusNeedsWrite(previous: StackStatus | undefined, next: StackStatus, now: Date): boolean {
  if (!previous) return true;
  const content = (s: StackStatus) => canonicalJson({ ...s, lastReconcileTime: undefined, reconciledBy: undefined });
  if (content(previous) !== content(next)) return true;
  const last = previous.lastReconcileTime ? Date.parse(previous.lastReconcileTime) : NaN;
  return !(now.getTime() - last < HEARTBEAT_SECONDS * 1000);
}

/** Whether a status is older than its writer's heartbeat plus three resyncs: its operator is not reconciling the stack. */
export function isStale(status: StackStatus, now: Date): boolean {
  if (!status.lastReconcileTime) return true;
  const budget = (status.heartbeatSeconds ?? HEARTBEAT_SECONDS) + STALE_AFTER_RESYNCS * (status.resyncSeconds ?? 30);
  return now.getTime() - Date.parse(status.lastReconcileTime) > budget * 1000;
}

/** Keeps the status under the standard tier: shorter messages first, then a compact inventory. */
export function fitStatus(status: StackStatus): StackStatus {
  const size = (s: StackStatus) => Buffer.byteLength(JSON.stringify(s));
  if (size(status) <= STATUS_LIMIT_BYTES) return status;
  let fitted: StackStatus = { ...status, conditions: status.conditions.map((c) => ({ ...c, message: truncate(c.message, 80) })) };
  if (size(fitted) <= STATUS_LIMIT_BYTES) return fitted;
  // Ingester ordinals are implied by the ingester count; list the rest.
  fitted = { ...fitted, inventory: { services: fitted.inventory.services.filter((s) => !/-ingester-\d+$/.test(s)) } };
  if (size(fitted) <= STATUS_LIMIT_BYTES) return fitted;
  // Last resort: conditions and counts matter most; the inventory is recomputed every pass anyway.
  return { ...fitted, inventory: { services: [] }, conditions: fitted.conditions.map((c) => ({ ...c, message: truncate(c.message, 40) })) };
}

export function parseStatus(text: string | undefined): StackStatus | undefined {
  if (!text) return undefined;
  try {
    const s = JSON.parse(text) as StackStatus;
    return Array.isArray(s.conditions) ? s : undefined;
  } catch {
    return undefined;
  }
}

export function statusText(status: StackStatus): string {
  return JSON.stringify(status);
}
