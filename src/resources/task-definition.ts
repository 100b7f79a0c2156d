// One ECS RegisterTaskDefinition input per unit (pure).
import type { ContainerDefinition, KeyValuePair, RegisterTaskDefinitionCommandInput, Volume } from "@aws-sdk/client-ecs";
import { COMPONENTS, LOKI_PORTS } from "./components.ts";
import { contentHash } from "./hash.ts";
import { healthCheckFor, LOKI_USER } from "./image.ts";
import { PATHS } from "./loki-config.ts";
import type { ResolvedStack } from "./resolve.ts";
import { ownershipTags, TAGS } from "./tags.ts";
import type { Unit } from "./units.ts";

export const CONTAINERS = { loki: "loki", config: "config" } as const;
export const CONFIG_HASH_LABEL = "lokistack.io/config-hash";

/** Where the operator stores a unit's rendered Loki config, read by the task at start through `secrets`. */
export function configParameterName(prefix: string, stack: string, unit: string): string {
  return `${prefix}/${stack}/config/${unit}`;
}

export interface TaskDefinitionOptions {
  stack: ResolvedStack;
  unit: Unit;
  /** SSM prefix of the stack's parameters (default /lokistack). */
  parameterPrefix: string;
  /** Content hash of the unit's rendered Loki config: a config change must roll the tasks. */
  configHash: string;
}

function volumesFor(stack: ResolvedStack, unit: Unit): { volumes: Volume[]; mounts: { sourceVolume: string; containerPath: string }[] } {
  // Fargate bind-mount volumes without a host path are task-local ephemeral storage.
  const volumes: Volume[] = [{ name: "config" }, { name: "data" }];
  const mounts: { sourceVolume: string; containerPath: string }[] = [{ sourceVolume: "data", containerPath: PATHS.data }];
  const { wal } = stack.spec.ingester;
  const hasWal = unit.component === "ingester" || unit.component === "monolithic";
  if (hasWal && wal.volume === "efs") {
    const accessPointId = wal.accessPointIds?.[unit.ordinal ?? 0];
    volumes.push({
      name: "wal",
      efsVolumeConfiguration: accessPointId
        ? { fileSystemId: wal.fileSystemId, transitEncryption: "ENABLED", authorizationConfig: { accessPointId, iam: "ENABLED" } }
        : {
            fileSystemId: wal.fileSystemId,
            // Each ordinal's own directory: two tasks never share one WAL.
            rootDirectory: `${wal.accessPointRoot.replace(/\/$/, "")}/${unit.name}`,
            transitEncryption: "ENABLED",
          },
    });
    mounts.push({ sourceVolume: "wal", containerPath: PATHS.wal });
  }
  const workdir = stack.spec.compactor.workingDirectory;
  const hasCompactor = unit.component === "compactor" || unit.component === "monolithic";
  if (hasCompactor && workdir.volume === "efs") {
    volumes.push({
      name: "compactor",
      efsVolumeConfiguration: { fileSystemId: workdir.fileSystemId, rootDirectory: workdir.rootDirectory, transitEncryption: "ENABLED" },
    });
    mounts.push({ sourceVolume: "compactor", containerPath: PATHS.compactor });
  }
  return { volumes, mounts };
}

export function buildTaskDefinition(options: TaskDefinitionOptions): RegisterTaskDefinitionCommandInput {
  const { stack, unit } = options;
  const info = COMPONENTS[unit.component];
  const holdsWal = unit.component === "ingester" || unit.component === "monolithic";
  const logConfiguration = (streamPrefix: string) => ({
    logDriver: "awslogs" as const,
    options: {
      "awslogs-group": stack.logGroup,
      "awslogs-region": stack.logRegion,
      "awslogs-stream-prefix": streamPrefix,
      "awslogs-create-group": "true",
    },
  });
  const { volumes, mounts } = volumesFor(stack, unit);
  const health = healthCheckFor(stack.spec.image);
  const environment: KeyValuePair[] = Object.entries(unit.resources.env)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => ({ name, value }));

  // Fargate creates bind-mount volumes owned by root with mode 0755, and an EFS
  // root directory without an access point is root's too, while Loki runs as
  // the image's uid 10001: the init container (root) writes the config and
  // hands Loki the top of every volume it writes to. Not recursively: a WAL
  // on EFS may hold gigabytes, and what Loki wrote is Loki's already.
  const writable = mounts.map((m) => m.containerPath).sort();
  const configInit: ContainerDefinition = {
    name: CONTAINERS.config,
    image: stack.spec.configInitImage,
    essential: false,
    entryPoint: ["sh", "-c"],
    // A chown refused (EFS with root squash, or an access point with another owner) must not keep
    // Loki from starting: the volume may be writable anyway, and if not, Loki's own error says so.
    command: [`printf '%s' "$LOKI_CONFIG" > ${PATHS.configFile} && { chown ${LOKI_USER}:${LOKI_USER} ${writable.join(" ")} || echo 'lokistack: cannot chown ${writable.join(" ")}' >&2; }`],
    secrets: [{ name: "LOKI_CONFIG", valueFrom: configParameterName(options.parameterPrefix, stack.name, unit.name) }],
    mountPoints: [{ sourceVolume: "config", containerPath: PATHS.config }, ...mounts],
    dockerLabels: { [CONFIG_HASH_LABEL]: options.configHash },
    logConfiguration: logConfiguration(`${unit.name}-config`),
  };
  const loki: ContainerDefinition = {
    name: CONTAINERS.loki,
    image: stack.spec.image,
    essential: true,
    command: [`-config.file=${PATHS.configFile}`, `-target=${info.target}`, "-config.expand-env=true"],
    portMappings: [
      { name: "http", containerPort: LOKI_PORTS.http, protocol: "tcp" },
      { name: "grpc", containerPort: LOKI_PORTS.grpc, protocol: "tcp" },
      { name: "gossip", containerPort: LOKI_PORTS.gossip, protocol: "tcp" },
    ],
    mountPoints: [{ sourceVolume: "config", containerPath: PATHS.config, readOnly: true }, ...mounts],
    dependsOn: [{ containerName: CONTAINERS.config, condition: "SUCCESS" }],
    ...(environment.length > 0 ? { environment } : {}),
    ...(health.command
      ? {
          healthCheck: {
            command: health.command,
            interval: 10,
            timeout: 5,
            retries: 3,
            // WAL replay can take minutes; ECS allows at most 300 s of grace.
            startPeriod: holdsWal ? 300 : 60,
          },
        }
      : {}),
    // Ingesters flush or checkpoint on SIGTERM; give them Fargate's maximum before SIGKILL.
    ...(holdsWal ? { stopTimeout: 120 } : {}),
    logConfiguration: logConfiguration(unit.name),
  };

  const body: RegisterTaskDefinitionCommandInput = {
    family: unit.name,
    taskRoleArn: stack.spec.iam.taskRoleArn,
    executionRoleArn: stack.spec.iam.executionRoleArn,
    networkMode: "awsvpc",
    requiresCompatibilities: ["FARGATE"],
    cpu: String(unit.resources.cpu),
    memory: String(unit.resources.memory),
    containerDefinitions: [configInit, loki],
    volumes,
    tags: ownershipTags(stack.name, unit),
  };
  return withSpecHash(body);
}

/** Adds the spec-hash tag: a hash of everything else, so it changes exactly when the object does. */
export function withSpecHash<T extends { tags?: { key?: string; value?: string }[] }>(body: T): T {
  const tags = (body.tags ?? []).filter((t) => t.key !== TAGS.specHash);
  const hash = contentHash({ ...body, tags });
  return { ...body, tags: [...tags, { key: TAGS.specHash, value: hash }] };
}
