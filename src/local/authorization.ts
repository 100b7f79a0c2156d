// What IAM would be asked for each call: the action, the resource ARN and the
// condition keys the request carries, as the Service Authorization Reference
// lists them per action and resource type ("Actions, resources, and condition
// keys for Amazon ECS / AWS Systems Manager / AWS Cloud Map / Amazon S3 /
// AWS KMS"). One API call can need several actions: ECS tag-on-create also
// authorizes ecs:TagResource with ecs:CreateAction ("Grant permission to tag
// resources on creation", ECS developer guide); Cloud Map's CreateService with
// Tags also authorizes servicediscovery:TagResource (the reference's "API
// operations" table); RegisterTaskDefinition passes its roles (iam:PassRole
// with iam:PassedToService); a SecureString read or write uses the parameter's
// KMS key through SSM (kms:Decrypt; kms:Encrypt for a standard parameter,
// kms:GenerateDataKey for an advanced one: "AWS KMS encryption for Parameter
// Store SecureString parameters"); and a read of a missing S3 key needs
// s3:ListBucket to be told 404 instead of 403 (S3 API reference, GetObject).
//
// The local control plane records these per call so a test can evaluate them
// against a policy. Nothing is enforced here.
import { lastSegment, type EcsService } from "./ecs/ecs.ts";
import type { ServiceName } from "./faults.ts";
import { header, type S3Request, type S3Service } from "./s3.ts";
import type { DiscoveryService } from "./servicediscovery.ts";
import { underPath, type SsmService } from "./ssm.ts";

export type ConditionContext = Record<string, string | string[]>;

export interface AuthorizationRequest {
  /** `service:Action`, as IAM policies name it. */
  action: string;
  /** The resource ARN, or `*` for actions the reference lists without a resource type. */
  resource: string;
  context: ConditionContext;
  /**
   * Granted by the resource's own policy whatever the caller's identity policy says: the AWS managed
   * key aws/ssm "grants Decrypt permission to all IAM principals in the AWS account" for use through
   * Parameter Store ("Restricting decryption of SecureString parameter values", SSM user guide).
   */
  grantedByResourcePolicy?: true;
}

export interface AuthorizedCall {
  /** The access key the request was signed with. */
  principal: string;
  service: ServiceName;
  operation: string;
  requests: AuthorizationRequest[];
  ok: boolean;
}

export interface World {
  region: string;
  account: string;
  ecs: EcsService;
  ssm: SsmService;
  discovery: DiscoveryService;
  s3: S3Service;
}

export type S3Call = Pick<S3Request, "bucket" | "key" | "query" | "headers">;

type Input = Record<string, unknown>;
type Tags = readonly { key?: string; value?: string; Key?: string; Value?: string }[];

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
/** A lookup that throws for what does not exist (a missing cluster), as undefined. */
const found = <T>(lookup: () => T): T | undefined => {
  try {
    return lookup();
  } catch {
    return undefined;
  }
};

function tagContext(prefix: "aws:ResourceTag" | "aws:RequestTag", tags: Tags | undefined): ConditionContext {
  const out: ConditionContext = {};
  for (const t of tags ?? []) out[`${prefix}/${t.key ?? t.Key}`] = t.value ?? t.Value ?? "";
  return out;
}

/** aws:RequestTag/<key> and aws:TagKeys for tags sent in the request, nothing when there are none. */
function requestTags(tags: Tags | undefined): ConditionContext {
  if (!tags || tags.length === 0) return {};
  return { ...tagContext("aws:RequestTag", tags), "aws:TagKeys": tags.map((t) => (t.key ?? t.Key)!) };
}

/** The key ARN IAM evaluates for a KMS KeyId, and whether it is the AWS managed aws/ssm key. */
function kmsKey(world: World, keyId: string): { arn: string; awsManaged: boolean } {
  if (keyId === "alias/aws/ssm" || keyId.endsWith(":alias/aws/ssm")) {
    // The managed key's id differs per account; this model gives it a fixed one.
    return { arn: `arn:aws:kms:${world.region}:${world.account}:key/aws-managed-ssm`, awsManaged: true };
  }
  if (keyId.startsWith("arn:")) return { arn: keyId, awsManaged: false };
  return { arn: `arn:aws:kms:${world.region}:${world.account}:${keyId.startsWith("alias/") ? keyId : `key/${keyId}`}`, awsManaged: false };
}

function ecsRequests(world: World, operation: string, input: Input): AuthorizationRequest[] {
  const prefix = `arn:aws:ecs:${world.region}:${world.account}`;
  const clusterRef = str(input.cluster) ?? "default";
  const clusterName = lastSegment(clusterRef);
  const cluster = { "ecs:cluster": clusterRef.startsWith("arn:") ? clusterRef : `${prefix}:cluster/${clusterRef}` };
  const action = `ecs:${operation}`;
  const service = (ref: string) => {
    const state = found(() => world.ecs.service(clusterRef, ref));
    return { resource: state?.arn ?? (ref.startsWith("arn:") ? ref : `${prefix}:service/${clusterName}/${ref}`), tags: tagContext("aws:ResourceTag", state?.tags) };
  };
  const task = (ref: string) => {
    const state = found(() => world.ecs.task(clusterRef, ref));
    return { resource: state?.arn ?? `${prefix}:task/${clusterName}/${lastSegment(ref)}`, tags: tagContext("aws:ResourceTag", state?.tags) };
  };
  const taskDefinitionArn = (ref: string | undefined): ConditionContext => {
    if (!ref) return {};
    if (ref.startsWith("arn:")) return { "ecs:task-definition": ref };
    const td = world.ecs.taskDefinition(ref);
    return td ? { "ecs:task-definition": td.arn } : {};
  };
  const tags = input.tags as Tags | undefined;
  const tagOnCreate = (resource: string): AuthorizationRequest[] =>
    tags && tags.length > 0 ? [{ action: "ecs:TagResource", resource, context: { "ecs:CreateAction": operation, ...requestTags(tags) } }] : [];

  switch (operation) {
    case "CreateService": {
      const resource = `${prefix}:service/${clusterName}/${str(input.serviceName) ?? ""}`;
      return [{ action, resource, context: { ...cluster, ...taskDefinitionArn(str(input.taskDefinition)), ...requestTags(tags) } }, ...tagOnCreate(resource)];
    }
    case "UpdateService":
    case "DeleteService": {
      const s = service(str(input.service) ?? "");
      return [{ action, resource: s.resource, context: { ...cluster, ...s.tags, ...(operation === "UpdateService" ? taskDefinitionArn(str(input.taskDefinition)) : {}) } }];
    }
    case "DescribeServices":
      return ((input.services as string[] | undefined) ?? []).map((ref) => {
        const s = service(ref);
        return { action, resource: s.resource, context: { ...cluster, ...s.tags } };
      });
    case "DescribeTasks":
      return ((input.tasks as string[] | undefined) ?? []).map((ref) => {
        const t = task(ref);
        return { action, resource: t.resource, context: { ...cluster, ...t.tags } };
      });
    case "StopTask": {
      const t = task(str(input.task) ?? "");
      return [{ action, resource: t.resource, context: { ...cluster, ...t.tags } }];
    }
    case "RunTask": {
      const td = taskDefinitionArn(str(input.taskDefinition))["ecs:task-definition"] ?? "*";
      return [{ action, resource: String(td), context: { ...cluster, ...requestTags(tags) } }, ...tagOnCreate(`${prefix}:task/${clusterName}/*`)];
    }
    case "ListTasks":
    case "ListServices":
      return [{ action, resource: "*", context: cluster }];
    case "RegisterTaskDefinition": {
      const family = str(input.family) ?? "";
      const resource = `${prefix}:task-definition/${family}:${(world.ecs.state.taskDefinitions[family]?.length ?? 0) + 1}`;
      const roles = [str(input.taskRoleArn), str(input.executionRoleArn)].filter((r): r is string => r !== undefined);
      return [
        { action, resource, context: requestTags(tags) },
        ...tagOnCreate(resource),
        ...[...new Set(roles)].map((role) => ({ action: "iam:PassRole", resource: role, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com", "iam:AssociatedResourceArn": resource } })),
      ];
    }
    case "TagResource":
    case "UntagResource": {
      const resource = str(input.resourceArn) ?? "";
      const keys = operation === "TagResource" ? requestTags(tags) : { "aws:TagKeys": (input.tagKeys as string[] | undefined) ?? [] };
      return [{ action, resource, context: { ...tagContext("aws:ResourceTag", world.ecs.taggableOrUndefined(resource)?.tags), ...keys } }];
    }
    case "CreateCluster":
      return [{ action, resource: `${prefix}:cluster/${str(input.clusterName) ?? "default"}`, context: requestTags(tags) }];
    default:
      // DescribeTaskDefinition, ListTaskDefinitions, DeregisterTaskDefinition, ListClusters: no resource type.
      return [{ action, resource: "*", context: {} }];
  }
}

function ssmRequests(world: World, operation: string, input: Input): AuthorizationRequest[] {
  const arn = (name: string) => `arn:aws:ssm:${world.region}:${world.account}:parameter/${name.replace(/^\//, "").replace(/:[^/:]+$/, "")}`;
  const action = `ssm:${operation}`;
  const viaSsm = (parameter: string) => ({ "kms:ViaService": `ssm.${world.region}.amazonaws.com`, "kms:CallerAccount": world.account, "kms:EncryptionContext:PARAMETER_ARN": parameter });
  const kms = (kmsAction: string, keyId: string, parameter: string): AuthorizationRequest => {
    const key = kmsKey(world, keyId);
    return { action: kmsAction, resource: key.arn, context: viaSsm(parameter), ...(key.awsManaged ? { grantedByResourcePolicy: true as const } : {}) };
  };
  const read = (name: string): AuthorizationRequest[] => {
    const param = world.ssm.state.parameters[name.replace(/:[^/:]+$/, "")];
    const latest = param?.versions.at(-1);
    const decrypt = input.WithDecryption === true && latest?.type === "SecureString";
    return [{ action, resource: arn(name), context: tagContext("aws:ResourceTag", param?.tags) }, ...(decrypt ? [kms("kms:Decrypt", latest.keyId ?? "alias/aws/ssm", arn(name))] : [])];
  };
  switch (operation) {
    case "GetParameters":
      return ((input.Names as string[] | undefined) ?? []).flatMap(read);
    case "GetParameter":
      return read(str(input.Name) ?? "");
    case "GetParametersByPath": {
      const path = str(input.Path) ?? "/";
      const under = Object.values(world.ssm.state.parameters).filter((p) => underPath(p.name, path, input.Recursive === true));
      const secure = input.WithDecryption === true ? under.filter((p) => p.versions.at(-1)?.type === "SecureString") : [];
      return [{ action, resource: arn(path), context: {} }, ...secure.map((p) => kms("kms:Decrypt", p.versions.at(-1)!.keyId ?? "alias/aws/ssm", arn(p.name)))];
    }
    case "PutParameter": {
      const name = str(input.Name) ?? "";
      const latest = world.ssm.state.parameters[name]?.versions.at(-1);
      const tags = input.Tags as Tags | undefined;
      const out: AuthorizationRequest[] = [{ action, resource: arn(name), context: { "ssm:Overwrite": String(input.Overwrite === true), ...requestTags(tags) } }];
      if (tags && tags.length > 0) out.push({ action: "ssm:AddTagsToResource", resource: arn(name), context: requestTags(tags) });
      if ((str(input.Type) ?? latest?.type) === "SecureString") {
        // Standard parameters are encrypted directly under the key, advanced ones by envelope encryption.
        const advanced = world.ssm.tierOf(input) === "Advanced";
        out.push(kms(advanced ? "kms:GenerateDataKey" : "kms:Encrypt", str(input.KeyId) ?? latest?.keyId ?? "alias/aws/ssm", arn(name)));
      }
      return out;
    }
    case "DeleteParameter": {
      const name = str(input.Name) ?? "";
      return [{ action, resource: arn(name), context: tagContext("aws:ResourceTag", world.ssm.state.parameters[name]?.tags) }];
    }
    default:
      // DescribeParameters: no resource type.
      return [{ action, resource: "*", context: {} }];
  }
}

function discoveryRequests(world: World, operation: string, input: Input): AuthorizationRequest[] {
  const prefix = `arn:aws:servicediscovery:${world.region}:${world.account}`;
  const action = `servicediscovery:${operation}`;
  const tags = input.Tags as Tags | undefined;
  switch (operation) {
    case "CreateService": {
      // Both resource types are required; the new service's id does not exist yet.
      const namespace = world.discovery.state.namespaces[str(input.NamespaceId) ?? ""]?.arn ?? `${prefix}:namespace/${str(input.NamespaceId) ?? ""}`;
      const context = { "servicediscovery:NamespaceArn": namespace, ...requestTags(tags) };
      return [
        { action, resource: namespace, context },
        { action, resource: `${prefix}:service/(new)`, context },
        // TagResource takes no resource type and no create-time key: only the tags sent.
        ...(tags && tags.length > 0 ? [{ action: "servicediscovery:TagResource", resource: "*", context: requestTags(tags) }] : []),
      ];
    }
    case "DeleteService": {
      const s = world.discovery.state.services[str(input.Id) ?? ""];
      return [{ action, resource: s?.arn ?? `${prefix}:service/${str(input.Id) ?? ""}`, context: { ...tagContext("aws:ResourceTag", s?.tags), "servicediscovery:ServiceCreatedByAccount": world.account } }];
    }
    case "CreatePrivateDnsNamespace":
      return [{ action, resource: "*", context: requestTags(tags) }, ...(tags && tags.length > 0 ? [{ action: "servicediscovery:TagResource", resource: "*", context: requestTags(tags) }] : [])];
    case "TagResource":
      return [{ action, resource: "*", context: requestTags(tags) }];
    default:
      // ListNamespaces, ListServices, ListTagsForResource: no resource type.
      return [{ action, resource: "*", context: {} }];
  }
}

function s3Requests(world: World, operation: string, call: S3Call): AuthorizationRequest[] {
  const bucket = `arn:aws:s3:::${call.bucket}`;
  const object = `${bucket}/${call.key}`;
  const conditional = (name: string, key: string) => {
    const value = header(call, name);
    return value !== undefined ? { [key]: value } : {};
  };
  const missing = () => !world.s3.state.buckets[call.bucket]?.objects[call.key];
  // Whether a missing key answers 404 or 403 is decided by s3:ListBucket on the bucket.
  const listToLearnMissing = (): AuthorizationRequest[] => (missing() ? [{ action: "s3:ListBucket", resource: bucket, context: {} }] : []);
  switch (operation) {
    case "GetObject":
    case "HeadObject":
      return [{ action: "s3:GetObject", resource: object, context: {} }, ...listToLearnMissing()];
    case "PutObject":
      return [{ action: "s3:PutObject", resource: object, context: { ...conditional("if-none-match", "s3:if-none-match"), ...conditional("if-match", "s3:if-match") } }];
    case "DeleteObject":
      return [{ action: "s3:DeleteObject", resource: object, context: conditional("if-match", "s3:if-match") }];
    case "ListObjects":
    case "ListObjectsV2":
    case "HeadBucket": {
      const listing: ConditionContext = {};
      for (const [param, key] of [["prefix", "s3:prefix"], ["delimiter", "s3:delimiter"], ["max-keys", "s3:max-keys"]] as const) {
        const value = call.query.get(param);
        if (value !== null) listing[key] = value;
      }
      return [{ action: "s3:ListBucket", resource: bucket, context: listing }];
    }
    default:
      return [{ action: `s3:${operation}`, resource: bucket, context: {} }];
  }
}

/** The authorization requests one call makes, from the state before it runs. */
export function authorizationRequests(world: World, service: ServiceName, operation: string, input: Input | S3Call): AuthorizationRequest[] {
  switch (service) {
    case "ecs":
      return ecsRequests(world, operation, input as Input);
    case "ssm":
      return ssmRequests(world, operation, input as Input);
    case "servicediscovery":
      return discoveryRequests(world, operation, input as Input);
    case "s3":
      return s3Requests(world, operation, input as S3Call);
  }
}
