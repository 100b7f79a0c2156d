// Carries out a plan: one write per action, inside the shared write budget,
// only while this replica holds the lease, stopping at the first failure (a
// later action may depend on an earlier one; the next reconcile re-observes
// and resumes, so nothing is done twice). What a write returns goes into the
// observation cache, so the operator never reads back its own writes.
import type { Service } from "@aws-sdk/client-ecs";
import type { Logger } from "pino";
import { AwsCallError } from "../aws/errors.ts";
import type { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import type { EcsGateway } from "../aws/ecs-gateway.ts";
import type { SsmGateway } from "../aws/ssm-gateway.ts";
import type { WriteKind, WriteLimiter } from "../aws/write-limiter.ts";
import { LokiCallError, type LokiGateway } from "../loki/gateway.ts";
import { isManaged } from "../resources/tags.ts";
import type { NamespaceCache } from "./namespaces.ts";
import type { Observer } from "./observe.ts";
import type { ParameterCache } from "./parameters.ts";
import { PENDING_REGISTRY } from "./plan.ts";
import type { Action } from "./types.ts";

export interface ExecuteDeps {
  ecs: EcsGateway;
  ssm: SsmGateway;
  discovery: DiscoveryGateway;
  observer: Observer;
  parameters: ParameterCache;
  namespaces: NamespaceCache;
  /** The stack's Cloud Map namespace name, for the cache. */
  namespace?: string;
  limiter: WriteLimiter;
  /** False once this replica may no longer act (lost lease, shutting down). */
  canWrite: () => boolean;
  /** ARNs the operator stopped: their stop is expected. */
  stoppedByOperator: Set<string>;
  /** Loki's HTTP API on the stack's tasks. */
  loki: LokiGateway;
  /** Tasks whose ingester flushed and left the ring: never asked twice. */
  flushed: Set<string>;
  /**
   * The stack's spec is a SecureString: its config parameters (the rendered Loki
   * config, which carries spec values) are written as SecureString too. The task
   * definitions read them through `secrets`, so the stack's execution role needs
   * kms:Decrypt on the key. `keyId` is the spec's own key: a spec encrypted with a customer
   * managed key keeps its values under that key, not under the account-wide aws/ssm one.
   */
  secureConfig?: { keyId?: string | undefined };
  onAction?: (action: Action, result: "ok" | "failed") => void;
}

export type ExecuteFailure =
  | { kind: "lease" }
  /** The call failed; `staleTaskDefinition` when it named a revision ECS no longer has ACTIVE. */
  | { kind: "call"; action: Action; error: AwsCallError | Error; staleTaskDefinition?: string }
  /** Not yet possible, and not an error: Cloud Map still has instances registered, a flush is in progress. */
  | { kind: "busy"; action: Action; reason: string };

export interface ExecuteResult {
  done: Action[];
  failure?: ExecuteFailure;
}

/** The AWS write budget each action draws from; Loki's own API has none. */
const WRITE_KIND: Record<Action["kind"], WriteKind | undefined> = {
  StopTask: "task",
  PutConfig: "parameter",
  CreateDiscoveryService: "discovery",
  RegisterTaskDefinition: "taskDefinition",
  CreateService: "service",
  UpdateService: "service",
  DeleteService: "service",
  TagResource: "tag",
  DeleteDiscoveryService: "discovery",
  DeleteParameter: "parameter",
  FlushIngester: undefined,
  ForgetRingMember: undefined,
};

/** What a person reads about an action: never config values or environment contents. */
export function describeAction(a: Action): Record<string, unknown> {
  switch (a.kind) {
    case "StopTask":
      return { task: a.taskArn };
    case "PutConfig":
    case "DeleteParameter":
      return { parameter: a.parameter };
    case "CreateDiscoveryService":
    case "DeleteDiscoveryService":
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
    case "FlushIngester":
      return { task: a.taskArn, address: a.address, member: a.member };
    case "ForgetRingMember":
      return { member: a.member, via: a.via };
  }
}

/** A service as a write returned it, keeping the tags the response may leave out. */
function withTags(service: Service, fallback: Service["tags"]): Service {
  return service.tags && service.tags.length > 0 ? service : { ...service, ...(fallback ? { tags: fallback } : {}) };
}

/** An ingester is still flushing from an earlier request: the scale-down waits, nothing failed. */
class FlushInProgress extends Error {}

/** `log` is the stack's child logger: it already carries the stack name. */
export async function execute(actions: readonly Action[], deps: ExecuteDeps, log: Logger): Promise<ExecuteResult> {
  const done: Action[] = [];
  const registered = new Map<string, string>();
  const pin = (ref: string | undefined) => (ref && !ref.includes(":") ? (registered.get(ref) ?? ref) : ref);
  const registries = new Map<string, string>();
  const pinRegistries = (list: { registryArn?: string }[] | undefined) =>
    list?.map((r) => (r.registryArn?.startsWith(PENDING_REGISTRY) ? { ...r, registryArn: registries.get(r.registryArn.slice(PENDING_REGISTRY.length)) ?? r.registryArn } : r));
  for (const action of actions) {
    const budget = WRITE_KIND[action.kind];
    if (budget) await deps.limiter.acquire(budget);
    if (!deps.canWrite()) {
      log.warn({ event: "action", unit: action.unit, component: action.component, action: action.kind, result: "skipped" }, "not the leader any more: stopping");
      return { done, failure: { kind: "lease" } };
    }
    try {
      await perform(action);
      done.push(action);
      deps.onAction?.(action, "ok");
      log.info({ event: "action", unit: action.unit, component: action.component, action: action.kind, repairs: action.repairs, result: "ok", ...describeAction(action) }, `${action.kind} ${action.unit}`);
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      deps.onAction?.(action, "failed");
      log.error({ event: "action", unit: action.unit, component: action.component, action: action.kind, result: "failed", error: error.message, ...(e instanceof AwsCallError ? { code: e.code, retryable: e.retryable } : {}) }, `${action.kind} ${action.unit} failed`);
      if (e instanceof AwsCallError && action.kind === "DeleteDiscoveryService" && e.code === "ResourceInUse") {
        return { done, failure: { kind: "busy", action, reason: "Cloud Map still has instances registered; deleted once ECS deregisters them" } };
      }
      if (e instanceof FlushInProgress) return { done, failure: { kind: "busy", action, reason: e.message } };
      return { done, failure: { kind: "call", action, error, ...(await staleRevision(action, e)) } };
    }
  }
  return { done };

  async function perform(action: Action): Promise<void> {
    switch (action.kind) {
      case "StopTask":
        deps.stoppedByOperator.add(action.taskArn);
        await deps.ecs.stopTask(action.cluster, action.taskArn, action.reason);
        deps.observer.followStop(action.cluster, action.taskArn);
        return;
      case "PutConfig": {
        const type = deps.secureConfig ? "SecureString" : "String";
        const keyId = deps.secureConfig?.keyId;
        deps.parameters.noteWrite(action.parameter, action.value, await deps.ssm.put(action.parameter, action.value, type, keyId), type, keyId);
        return;
      }
      case "DeleteParameter":
        await deps.ssm.delete(action.parameter);
        deps.parameters.noteDelete(action.parameter);
        return;
      case "CreateDiscoveryService": {
        const arn = await deps.discovery.createService(action.name, action.namespaceId, action.tags);
        registries.set(action.name, arn);
        if (deps.namespace) deps.namespaces.noteCreated(deps.namespace, action.name, arn, action.tags);
        return;
      }
      case "DeleteDiscoveryService":
        // The tags seen when it was planned may be old: ownership is checked again right before the delete.
        if (!isManaged(await deps.namespaces.tags(action.arn, true))) throw new Error(`${action.name} no longer carries the ownership tag: left alone`);
        await deps.discovery.deleteService(action.arn);
        if (deps.namespace) deps.namespaces.noteDeleted(deps.namespace, action.name, action.arn);
        return;
      case "RegisterTaskDefinition": {
        const td = await deps.ecs.registerTaskDefinition(action.input);
        deps.observer.remember(td, action.input.tags ?? []);
        registered.set(action.input.family!, td.taskDefinitionArn!);
        return;
      }
      case "CreateService": {
        const svc = await deps.ecs.createService({ ...action.input, taskDefinition: pin(action.input.taskDefinition), serviceRegistries: pinRegistries(action.input.serviceRegistries) });
        deps.observer.noteService(action.input.cluster!, withTags(svc, action.input.tags));
        return;
      }
      case "UpdateService": {
        const cluster = action.input.cluster!;
        const before = deps.observer.service(cluster, action.input.service!);
        const svc = await deps.ecs.updateService({
          ...action.input,
          ...(action.input.taskDefinition ? { taskDefinition: pin(action.input.taskDefinition) } : {}),
          ...(action.input.serviceRegistries ? { serviceRegistries: pinRegistries(action.input.serviceRegistries) } : {}),
        });
        deps.observer.noteService(cluster, withTags(svc, before?.tags));
        return;
      }
      case "DeleteService": {
        const before = deps.observer.service(action.cluster, action.service);
        deps.observer.noteService(action.cluster, withTags(await deps.ecs.deleteService(action.cluster, action.service), before?.tags));
        return;
      }
      case "FlushIngester": {
        // Synchronous: Loki answers once the chunks are written and the member has left the ring.
        if ((await deps.loki.shutdown(action.address)) === "stopping") {
          // Loki takes one shutdown per process; every later call answers 503, and so does an
          // ingester still starting. An earlier call (one that timed out here, an operator's before a
          // restart) is still under way, or ended: cleanly (Terminated) or not (Failed: the whole
          // process exits). The module's wrapper reads Running until the flush has ended. The
          // task's own ring cannot tell: it is empty once the ingester module stopped.
          const state = await deps.loki.moduleState(action.address, "ingester");
          if (state === "Failed") {
            throw new LokiCallError(action.address, 503, `${action.member}: its ingester module has Failed (an earlier shutdown failed) and Loki takes no second one; the process exits, and the ordinal goes once its task has stopped (what it did not flush is only in its WAL)`);
          }
          if (state !== "Terminated") throw new FlushInProgress(`${action.member} is ${state === "Starting" || state === "New" ? "starting" : "flushing and leaving the ring"} (its ingester module: ${state ?? "absent"}); scaled down once its shutdown has ended`);
        }
        deps.flushed.add(action.taskArn);
        return;
      }
      case "ForgetRingMember":
        await deps.loki.forget(action.via, action.member);
        return;
      case "TagResource": {
        await deps.ecs.tagResource(action.arn, action.tags);
        const cluster = action.arn.split("/").at(-2);
        const before = cluster ? deps.observer.service(cluster, action.unit) : undefined;
        if (cluster && before) {
          const keys = new Set(action.tags.map((t) => t.key));
          deps.observer.noteService(cluster, { ...before, tags: [...(before.tags ?? []).filter((t) => !keys.has(t.key)), ...action.tags] });
        }
        return;
      }
    }
  }

  /**
   * A revision deregistered behind the operator's back: ECS answers ClientException
   * ("TaskDefinition is inactive") or InvalidParameterException. Whatever the
   * wording, the revision is checked: if ECS no longer has it ACTIVE, it is
   * forgotten and the next reconcile registers anew.
   */
  async function staleRevision(action: Action, e: unknown): Promise<{ staleTaskDefinition?: string }> {
    if (!(e instanceof AwsCallError) || !["ClientException", "InvalidParameterException"].includes(e.code)) return {};
    if (action.kind !== "CreateService" && action.kind !== "UpdateService") return {};
    const ref = pin(action.input.taskDefinition);
    if (!ref) return {};
    const found = await deps.ecs.describeTaskDefinition(ref).catch(() => undefined);
    if (found && found.taskDefinition.status === "ACTIVE") return {};
    deps.observer.forgetTaskDefinition(ref);
    return { staleTaskDefinition: ref };
  }
}
