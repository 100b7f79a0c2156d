// The typed values a reconcile produces: drifts (what differs, field by
// field), actions (the smallest safe writes that repair them) and the outcome
// the work queue acts on.
import type { CreateServiceCommandInput, RegisterTaskDefinitionCommandInput, Tag, UpdateServiceCommandInput } from "@aws-sdk/client-ecs";

/** One changed field: what ECS has now (`from`) and what the spec wants (`to`). Hidden values read "(hidden)". */
export interface FieldChange {
  path: string;
  from?: unknown;
  to?: unknown;
}

interface DriftBase {
  stack: string;
  /** The ECS service (unit) concerned. */
  unit: string;
  component: string;
}

export type Drift =
  | (DriftBase & { kind: "MissingService"; state: "absent" | "DRAINING" })
  | (DriftBase & { kind: "DesiredCountChanged"; from: number; to: number; range?: { min: number; max: number } })
  | (DriftBase & { kind: "TaskDefinitionChanged"; revision: string; changes: FieldChange[] })
  | (DriftBase & { kind: "DeploymentConfigurationWeakened"; changes: FieldChange[] })
  | (DriftBase & { kind: "ServiceSettingsChanged"; changes: FieldChange[] })
  | (DriftBase & { kind: "TagDrift"; changes: FieldChange[] })
  | (DriftBase & { kind: "ExtraSingletonTask" | "DuplicateOrdinalTask"; task: string; keep: string; group: string; startedBy?: string })
  | (DriftBase & { kind: "StrayTask"; task: string; group: string; startedBy?: string })
  | (DriftBase & { kind: "UnexpectedTaskReplacement"; task: string; stopCode: string; reason: string })
  | (DriftBase & { kind: "OrphanedService"; desiredCount: number; ordinal?: number })
  | (DriftBase & { kind: "ConfigChanged"; parameter: string; state: "missing" | "edited" | "plaintext" })
  | (DriftBase & { kind: "ServiceDiscoveryMissing"; missing: "service" | "registration" })
  | (DriftBase & { kind: "NameCollision" })
  /** Loki's view: a ring member no desired ordinal accounts for (a ghost of a crashed or removed ingester). */
  | (DriftBase & { kind: "RingMemberNotDesired"; member: string; state: string; address: string })
  /** Loki's view: an ordinal's task has run longer than the grace period, but its ingester is not ACTIVE in the ring. */
  | (DriftBase & { kind: "IngesterNotActive"; task: string; state: string; runningSeconds: number });

export type DriftKind = Drift["kind"];

/** Why an action is planned: a drift it repairs, or the creation, update (a newer generation) or deletion of the stack's objects. */
export type Purpose = DriftKind | "Create" | "Update" | "Delete";

interface ActionBase {
  unit: string;
  component: string;
  /** What this action is for, for the report. */
  repairs: Purpose[];
  /** The attributes it changes, from what ECS has to what it will have (values of environment, secrets and labels hidden). */
  changes?: FieldChange[];
}

export type Action =
  | (ActionBase & { kind: "StopTask"; cluster: string; taskArn: string; reason: string })
  | (ActionBase & { kind: "PutConfig"; parameter: string; value: string })
  | (ActionBase & { kind: "CreateDiscoveryService"; name: string; namespaceId: string; tags: Tag[] })
  | (ActionBase & { kind: "RegisterTaskDefinition"; input: RegisterTaskDefinitionCommandInput })
  | (ActionBase & { kind: "CreateService"; input: CreateServiceCommandInput })
  | (ActionBase & { kind: "UpdateService"; input: UpdateServiceCommandInput; fields: string[] })
  | (ActionBase & { kind: "DeleteService"; cluster: string; service: string })
  | (ActionBase & { kind: "TagResource"; arn: string; tags: Tag[] })
  | (ActionBase & { kind: "DeleteDiscoveryService"; name: string; arn: string })
  | (ActionBase & { kind: "DeleteParameter"; parameter: string })
  /** Loki, not AWS: ask an ingester to flush its chunks and leave the ring, before its ordinal goes away. */
  | (ActionBase & { kind: "FlushIngester"; taskArn: string; address: string; member: string })
  /** Loki, not AWS: remove a ghost member from the ring, through a live component. */
  | (ActionBase & { kind: "ForgetRingMember"; member: string; via: string });

export type ActionKind = Action["kind"];

/** What was decided but not done now, and why (ingester gating, draining names, policy). */
export interface Deferral {
  unit: string;
  reason: string;
}

/**
 * A problem only the user can fix (a missing cluster or namespace, a name
 * taken by someone else, a permission the role lacks, a request ECS rejects).
 * It becomes the `Degraded` condition with a stable reason, is logged once when
 * it appears, and is retried at the resync, not with backoff. Modelled on the
 * Loki Operator's DegradedError.
 */
export type DegradedReason =
  | "ClusterNotFound"
  | "NamespaceNotFound"
  | "ResourceNotOwned"
  | "AccessDenied"
  | "RequestRejected"
  /** An ingester asked to flush before its ordinal goes away answered with an error or not at all: the ordinal stays. */
  | "IngesterFlushFailed"
  /** The operator cannot reach Loki's HTTP port on the stack's tasks (a security group rule is missing). */
  | "LokiUnreachable";

export class DegradedError extends Error {
  constructor(
    readonly reason: DegradedReason,
    message: string,
  ) {
    super(message);
    this.name = "DegradedError";
  }
}

/** How one reconcile of one stack ended: what the work queue does next. */
export type Outcome =
  | { kind: "done" }
  | { kind: "requeue"; afterMs: number; reason: string }
  | { kind: "degraded"; reason: DegradedReason; message: string }
  | { kind: "error"; message: string };
