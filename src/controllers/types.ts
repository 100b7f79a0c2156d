// The typed values a reconcile pass produces: drifts (what differs) and
// actions (the smallest safe writes that repair them).
import type { CreateServiceCommandInput, RegisterTaskDefinitionCommandInput, Tag, UpdateServiceCommandInput } from "@aws-sdk/client-ecs";

export const DRIFT_KINDS = [
  "MissingService",
  "DesiredCountChanged",
  "TaskDefinitionChanged",
  "DeploymentConfigurationWeakened",
  "ServiceSettingsChanged",
  "ExtraSingletonTask",
  "DuplicateOrdinalTask",
  "UnexpectedTaskReplacement",
  "OrphanedService",
  "TagDrift",
  "ConfigChanged",
  "ServiceDiscoveryMissing",
  "NameCollision",
] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

export interface Drift {
  kind: DriftKind;
  stack: string;
  /** The ECS service (unit) concerned. */
  unit: string;
  component: string;
  expected: unknown;
  observed: unknown;
  cause: string;
}

interface ActionBase {
  unit: string;
  component: string;
  /** The drifts this action repairs (kinds), for the report. */
  repairs: DriftKind[];
}

export type Action =
  | (ActionBase & { kind: "StopTask"; cluster: string; taskArn: string; reason: string })
  | (ActionBase & { kind: "PutConfig"; parameter: string; value: string })
  | (ActionBase & { kind: "CreateDiscoveryService"; name: string; namespaceId: string; tags: Tag[] })
  | (ActionBase & { kind: "RegisterTaskDefinition"; input: RegisterTaskDefinitionCommandInput })
  | (ActionBase & { kind: "CreateService"; input: CreateServiceCommandInput })
  | (ActionBase & { kind: "UpdateService"; input: UpdateServiceCommandInput; fields: string[] })
  | (ActionBase & { kind: "DeleteService"; cluster: string; service: string })
  | (ActionBase & { kind: "TagResource"; arn: string; tags: Tag[] });

export type ActionKind = Action["kind"];

/** What was decided but not done this pass, and why (ingester gating, draining names, policy). */
export interface Deferral {
  unit: string;
  reason: string;
}
