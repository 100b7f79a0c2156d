// Turns what ECS returns (DescribeTaskDefinition, DescribeServices) and what the
// builders produce into one canonical form, so an unchanged stack compares
// equal, every time. Perpetual diffs from ECS-filled defaults are the most
// common complaint about ECS drift tools, so the rules are explicit:
//
// - read-only fields are dropped: only fields a caller can set are kept
//   (ARNs, revision, status, counts, deployments, events, timestamps,
//   requiresAttributes, compatibilities, registeredBy are never compared);
// - empty values (null, [], {}) equal absent ones;
// - keyed arrays are sorted (containers, environment, secrets, mountPoints,
//   portMappings, volumes, dependsOn, ulimits, tags, subnets, security groups);
// - ECS defaults are filled on both sides: essential true, protocol tcp,
//   hostPort = containerPort under awsvpc, readOnly false, health check
//   interval 30 / timeout 5 / retries 3 / startPeriod 0, EFS rootDirectory "/",
//   transitEncryption DISABLED, iam DISABLED, container cpu 0, Fargate
//   ephemeral storage 20 GiB, runtimePlatform LINUX/X86_64, platformVersion
//   LATEST, assignPublicIp DISABLED, 100/200 with the circuit breaker off,
//   deployment controller ECS, scheduling REPLICA, propagateTags NONE,
//   availabilityZoneRebalancing DISABLED when a described service has none;
// - "1 vCPU" / "2GB" become 1024 / 2048;
// - only the operator's own tags (lokistack.io/*) are compared: aws:* and
//   other tools' tags are ignored;
// - load balancers and service registries are the user's to attach (the spec
//   has no say over them), so they are not compared either.
import type {
  ContainerDefinition,
  CreateServiceCommandInput,
  RegisterTaskDefinitionCommandInput,
  Service,
  Tag,
  TaskDefinition,
  Volume,
} from "@aws-sdk/client-ecs";
import { isOwnedTagKey } from "./tags.ts";

export type Canonical = Record<string, unknown>;

type AnyRecord = Record<string, unknown>;

/** Removes undefined, null, empty arrays and empty objects, recursively. */
export function prune(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(prune).filter((v) => v !== undefined);
    return items.length > 0 ? items : undefined;
  }
  if (value !== null && typeof value === "object" && !(value instanceof Date)) {
    const out: AnyRecord = {};
    for (const [k, v] of Object.entries(value)) {
      const p = prune(v);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  return value === null ? undefined : value;
}

function sortBy<T>(items: readonly T[] | undefined, key: (t: T) => string | number): T[] | undefined {
  if (!items) return undefined;
  return [...items].sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    return ka < kb ? -1 : ka > kb ? 1 : 0;
  });
}

/** "1 vCPU" → 1024, "0.25 vcpu" → 256, "512" → 512. */
export function parseCpu(value: string | number | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value === "number") return value;
  const m = /^\s*([\d.]+)\s*(vcpu)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] ? Math.round(n * 1024) : n;
}

/** "2GB" / "2 GiB" → 2048, "512" / "512MiB" → 512. */
export function parseMemory(value: string | number | undefined): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (typeof value === "number") return value;
  const m = /^\s*([\d.]+)\s*(gb|gib|mb|mib)?\s*$/i.exec(value);
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] && m[2].toLowerCase().startsWith("g") ? Math.round(n * 1024) : n;
}

/** The last path element of an ARN, or the value itself (`arn:...:cluster/logging` → `logging`). */
export function nameFromArn(value: string | undefined): string | undefined {
  if (value === undefined || !value.startsWith("arn:")) return value;
  return value.slice(value.lastIndexOf("/") + 1);
}

/** `arn:aws:ecs:…:task-definition/demo-compactor:7` or `demo-compactor:7` → { family, revision }. */
export function parseTaskDefinitionRef(ref: string): { family: string; revision?: number } {
  const tail = nameFromArn(ref) ?? ref;
  const m = /^(.*):(\d+)$/.exec(tail);
  return m ? { family: m[1]!, revision: Number(m[2]) } : { family: tail };
}

export function canonicalTags(tags: readonly Tag[] | undefined): Tag[] | undefined {
  return sortBy(
    (tags ?? []).filter((t) => isOwnedTagKey(t.key)).map((t) => ({ key: t.key, value: t.value ?? "" })),
    (t) => t.key ?? "",
  );
}

function canonicalContainer(c: ContainerDefinition, networkMode: string | undefined): Canonical {
  const awsvpc = networkMode === "awsvpc";
  return {
    ...c,
    essential: c.essential ?? true,
    cpu: c.cpu === 0 ? undefined : c.cpu,
    portMappings: sortBy(
      c.portMappings?.map((p) => ({
        ...p,
        protocol: p.protocol ?? "tcp",
        hostPort: p.hostPort ?? (awsvpc ? p.containerPort : undefined),
      })),
      (p) => `${String(p.containerPort).padStart(6, "0")}/${p.protocol}`,
    ),
    environment: sortBy(c.environment, (e) => e.name ?? ""),
    environmentFiles: sortBy(c.environmentFiles, (e) => e.value ?? ""),
    secrets: sortBy(c.secrets, (s) => s.name ?? ""),
    mountPoints: sortBy(
      c.mountPoints?.map((m) => ({ ...m, readOnly: m.readOnly ?? false })),
      (m) => m.containerPath ?? "",
    ),
    volumesFrom: sortBy(c.volumesFrom, (v) => v.sourceContainer ?? ""),
    dependsOn: sortBy(c.dependsOn, (d) => d.containerName ?? ""),
    ulimits: sortBy(c.ulimits, (u) => u.name ?? ""),
    systemControls: sortBy(c.systemControls, (s) => s.namespace ?? ""),
    healthCheck: c.healthCheck && {
      command: c.healthCheck.command,
      interval: c.healthCheck.interval ?? 30,
      timeout: c.healthCheck.timeout ?? 5,
      retries: c.healthCheck.retries ?? 3,
      startPeriod: c.healthCheck.startPeriod ?? 0,
    },
  };
}

function canonicalVolume(v: Volume): Canonical {
  const efs = v.efsVolumeConfiguration;
  return {
    ...v,
    configuredAtLaunch: v.configuredAtLaunch === false ? undefined : v.configuredAtLaunch,
    efsVolumeConfiguration: efs && {
      ...efs,
      rootDirectory: efs.rootDirectory ?? "/",
      transitEncryption: efs.transitEncryption ?? "DISABLED",
      authorizationConfig: efs.authorizationConfig && {
        ...efs.authorizationConfig,
        iam: efs.authorizationConfig.iam ?? "DISABLED",
      },
    },
  };
}

/**
 * The comparable part of a task definition, from a RegisterTaskDefinition input
 * or from DescribeTaskDefinition's `taskDefinition` (pass its `tags` too).
 */
export function canonicalTaskDefinition(
  td: RegisterTaskDefinitionCommandInput | TaskDefinition,
  tags: readonly Tag[] | undefined = (td as RegisterTaskDefinitionCommandInput).tags,
): Canonical {
  const fargate = td.requiresCompatibilities?.includes("FARGATE") ?? false;
  const platform = td.runtimePlatform;
  const defaultPlatform =
    platform !== undefined &&
    (platform.operatingSystemFamily ?? "LINUX") === "LINUX" &&
    (platform.cpuArchitecture ?? "X86_64") === "X86_64";
  const canonical = {
    family: td.family,
    taskRoleArn: td.taskRoleArn,
    executionRoleArn: td.executionRoleArn,
    networkMode: td.networkMode ?? "bridge",
    requiresCompatibilities: sortBy(td.requiresCompatibilities, (c) => c),
    cpu: parseCpu(td.cpu),
    memory: parseMemory(td.memory),
    pidMode: td.pidMode,
    ipcMode: td.ipcMode,
    runtimePlatform: defaultPlatform ? undefined : platform,
    ephemeralStorage: fargate && td.ephemeralStorage?.sizeInGiB === 20 ? undefined : td.ephemeralStorage,
    proxyConfiguration: td.proxyConfiguration,
    placementConstraints: td.placementConstraints,
    enableFaultInjection: td.enableFaultInjection ? true : undefined,
    volumes: sortBy(td.volumes?.map(canonicalVolume), (v) => String(v.name)),
    containerDefinitions: sortBy(
      td.containerDefinitions?.map((c) => canonicalContainer(c, td.networkMode)),
      (c) => String(c.name),
    ),
    tags: canonicalTags(tags),
  };
  return (prune(canonical) ?? {}) as Canonical;
}

/** The comparable part of a service, from a CreateService input or a DescribeServices entry. */
export function canonicalService(svc: CreateServiceCommandInput | Service): Canonical {
  const described = "serviceArn" in svc || "clusterArn" in svc;
  const cluster = "cluster" in svc ? svc.cluster : (svc as Service).clusterArn;
  const dc = svc.deploymentConfiguration;
  const vpc = svc.networkConfiguration?.awsvpcConfiguration;
  const fargate = svc.launchType === "FARGATE";
  const canonical = {
    cluster: nameFromArn(cluster),
    serviceName: svc.serviceName,
    taskDefinition: svc.taskDefinition && parseTaskDefinitionRef(svc.taskDefinition).family,
    desiredCount: svc.desiredCount,
    launchType: svc.launchType,
    capacityProviderStrategy: sortBy(svc.capacityProviderStrategy, (c) => c.capacityProvider ?? ""),
    platformVersion: svc.platformVersion ?? (fargate ? "LATEST" : undefined),
    schedulingStrategy: svc.schedulingStrategy ?? "REPLICA",
    deploymentController: { type: svc.deploymentController?.type ?? "ECS" },
    deploymentConfiguration: {
      minimumHealthyPercent: dc?.minimumHealthyPercent ?? 100,
      maximumPercent: dc?.maximumPercent ?? 200,
      deploymentCircuitBreaker: {
        enable: dc?.deploymentCircuitBreaker?.enable ?? false,
        rollback: dc?.deploymentCircuitBreaker?.rollback ?? false,
      },
      alarms: dc?.alarms?.enable ? dc.alarms : undefined,
      strategy: dc?.strategy === "ROLLING" ? undefined : dc?.strategy,
      bakeTimeInMinutes: dc?.bakeTimeInMinutes ? dc.bakeTimeInMinutes : undefined,
    },
    networkConfiguration: vpc && {
      awsvpcConfiguration: {
        subnets: sortBy(vpc.subnets, (s) => s),
        securityGroups: sortBy(vpc.securityGroups, (s) => s),
        assignPublicIp: vpc.assignPublicIp ?? "DISABLED",
      },
    },
    placementConstraints: svc.placementConstraints,
    placementStrategy: svc.placementStrategy,
    healthCheckGracePeriodSeconds: svc.healthCheckGracePeriodSeconds ? svc.healthCheckGracePeriodSeconds : undefined,
    // CreateService defaults this to ENABLED, but a described service without it was never rebalanced.
    availabilityZoneRebalancing: svc.availabilityZoneRebalancing ?? (described ? "DISABLED" : "ENABLED"),
    propagateTags: svc.propagateTags ?? "NONE",
    enableECSManagedTags: svc.enableECSManagedTags ?? false,
    enableExecuteCommand: svc.enableExecuteCommand ?? false,
    tags: canonicalTags(svc.tags),
  };
  return (prune(canonical) ?? {}) as Canonical;
}

export interface FieldDiff {
  /** Where the values differ, such as `deploymentConfiguration.maximumPercent` or `containerDefinitions[loki].image`. */
  path: string;
  expected: unknown;
  observed: unknown;
}

function itemKey(item: unknown): string | undefined {
  if (item === null || typeof item !== "object") return undefined;
  const r = item as AnyRecord;
  for (const k of ["name", "key", "containerName", "sourceVolume"]) if (typeof r[k] === "string") return `${k === "name" ? "" : `${k}=`}${r[k]}`;
  return undefined;
}

/** Field-level differences between two canonical objects; empty when they are equal. */
export function diffCanonical(expected: unknown, observed: unknown, path = ""): FieldDiff[] {
  if (Object.is(expected, observed)) return [];
  const bothArrays = Array.isArray(expected) && Array.isArray(observed);
  const bothObjects =
    !bothArrays &&
    expected !== null && observed !== null &&
    typeof expected === "object" && typeof observed === "object" &&
    !Array.isArray(expected) && !Array.isArray(observed);
  if (bothObjects) {
    const e = expected as AnyRecord;
    const o = observed as AnyRecord;
    const keys = [...new Set([...Object.keys(e), ...Object.keys(o)])].sort();
    return keys.flatMap((k) => diffCanonical(e[k], o[k], path ? `${path}.${k}` : k));
  }
  if (bothArrays) {
    const e = expected as unknown[];
    const o = observed as unknown[];
    const keyed = e.every((x) => itemKey(x) !== undefined) && o.every((x) => itemKey(x) !== undefined);
    if (keyed) {
      const keys = [...new Set([...e.map(itemKey), ...o.map(itemKey)])] as string[];
      return keys.flatMap((k) =>
        diffCanonical(e.find((x) => itemKey(x) === k), o.find((x) => itemKey(x) === k), `${path}[${k}]`),
      );
    }
    if (e.length === o.length) return e.flatMap((x, i) => diffCanonical(x, o[i], `${path}[${i}]`));
  }
  return [{ path: path || "(root)", expected, observed }];
}
