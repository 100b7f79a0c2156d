// Carries out a plan: one write per action, inside the shared write budget,
// only while this replica holds the lease, stopping at the first failure (a
// later action may depend on an earlier one; the next pass re-observes and
// resumes, so nothing is done twice).
import type { Logger } from "pino";
import { AwsCallError } from "../aws/errors.ts";
import type { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import type { SsmGateway } from "../aws/ssm-gateway.ts";
import type { WriteKind, WriteLimiter } from "../aws/write-limiter.ts";
import type { Observer } from "./observe.ts";
import { PENDING_REGISTRY } from "./plan.ts";
import type { Action } from "./types.ts";

export interface ExecuteDeps {
  ecs: EcsGateway;
  ssm: SsmGateway;
  discovery: DiscoveryGateway;
  observer: Observer;
  limiter: WriteLimiter;
  /** False once this replica may no longer act (lost lease, shutting down). */
  canWrite: () => boolean;
  /** ARNs the operator stopped: their stop is expected. */
  stoppedByOperator: Set<string>;
  onAction?: (action: Action, result: "ok" | "failed") => void;
}

export interface ExecuteResult {
  done: Action[];
  error?: string;
}

const WRITE_KIND: Record<Action["kind"], WriteKind> = {
  StopTask: "task",
  PutConfig: "parameter",
  CreateDiscoveryService: "discovery",
  RegisterTaskDefinition: "taskDefinition",
  CreateService: "service",
  UpdateService: "service",
  DeleteService: "service",
  TagResource: "tag",
};

/** What a person reads about an action: never config values or environment contents. */
export function describeAction(a: Action): Record<string, unknown> {
  switch (a.kind) {
    case "StopTask":
      return { task: a.taskArn };
    case "PutConfig":
      return { parameter: a.parameter };
    case "CreateDiscoveryService":
      return { discoveryService: a.name };
    case "RegisterTaskDefinition":
      return { family: a.input.family };
    case "CreateService":
      return { service: a.input.serviceName, desiredCount: a.input.desiredCount, taskDefinition: a.input.taskDefinition };
    case "UpdateService":
      return { service: a.input.service, fields: a.fields, ...(a.input.desiredCount !== undefined ? { desiredCount: a.input.desiredCount } : {}) };
    case "DeleteService":
      return { service: a.service };
    case "TagResource":
      return { resource: a.arn, tags: a.tags.map((t) => t.key) };
  }
}

/** `log` is the stack's child logger: it already carries the stack name. */
export async function execute(actions: readonly Action[], deps: ExecuteDeps, log: Logger): Promise<ExecuteResult> {
  const done: Action[] = [];
  const registered = new Map<string, string>();
  const pin = (ref: string | undefined) => (ref && !ref.includes(":") ? (registered.get(ref) ?? ref) : ref);
  const registries = new Map<string, string>();
  const pinRegistries = (list: { registryArn?: string }[] | undefined) =>
    list?.map((r) => (r.registryArn?.startsWith(PENDING_REGISTRY) ? { ...r, registryArn: registries.get(r.registryArn.slice(PENDING_REGISTRY.length)) ?? r.registryArn } : r));
  for (const action of actions) {
    await deps.limiter.acquire(WRITE_KIND[action.kind]);
    if (!deps.canWrite()) {
      log.warn({ event: "action", unit: action.unit, component: action.component, action: action.kind, result: "skipped" }, "not the leader any more: stopping");
      return { done, error: "lost the lease or shutting down" };
    }
    try {
      switch (action.kind) {
        case "StopTask":
          deps.stoppedByOperator.add(action.taskArn);
          await deps.ecs.stopTask(action.cluster, action.taskArn, action.reason);
          deps.observer.followStop(action.cluster, action.taskArn);
          break;
        case "PutConfig":
          await deps.ssm.put(action.parameter, action.value);
          break;
        case "CreateDiscoveryService":
          registries.set(action.name, await deps.discovery.createService(action.name, action.namespaceId, action.tags));
          break;
        case "RegisterTaskDefinition": {
          const td = await deps.ecs.registerTaskDefinition(action.input);
          deps.observer.remember(td, action.input.tags ?? []);
          registered.set(action.input.family!, td.taskDefinitionArn!);
          break;
        }
        case "CreateService":
          await deps.ecs.createService({ ...action.input, taskDefinition: pin(action.input.taskDefinition), serviceRegistries: pinRegistries(action.input.serviceRegistries) });
          break;
        case "UpdateService":
          await deps.ecs.updateService({
            ...action.input,
            ...(action.input.taskDefinition ? { taskDefinition: pin(action.input.taskDefinition) } : {}),
            ...(action.input.serviceRegistries ? { serviceRegistries: pinRegistries(action.input.serviceRegistries) } : {}),
          });
          break;
        case "DeleteService":
          await deps.ecs.deleteService(action.cluster, action.service);
          break;
        case "TagResource":
          await deps.ecs.tagResource(action.arn, action.tags);
          break;
      }
      done.push(action);
      deps.onAction?.(action, "ok");
      log.info({ event: "action", unit: action.unit, component: action.component, action: action.kind, repairs: action.repairs, result: "ok", ...describeAction(action) }, `${action.kind} ${action.unit}`);
    } catch (e) {
      const message = e instanceof AwsCallError ? e.message : String(e);
      // A revision deregistered behind the operator's back: forget it, the next pass registers anew.
      if ((action.kind === "CreateService" || action.kind === "UpdateService") && e instanceof AwsCallError && /TaskDefinition not found/i.test(e.message)) {
        const ref = pin(action.input.taskDefinition);
        if (ref) deps.observer.forgetTaskDefinition(ref);
      }
      deps.onAction?.(action, "failed");
      log.error({ event: "action", unit: action.unit, component: action.component, action: action.kind, result: "failed", error: message, retryable: e instanceof AwsCallError ? e.retryable : false }, `${action.kind} ${action.unit} failed`);
      return { done, error: `${action.kind} ${action.unit}: ${message}` };
    }
  }
  return { done };
}
