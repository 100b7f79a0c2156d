// RegisterTaskDefinition as ECS does it: validate the request with ECS's own
// rules and messages, then store the definition with the defaults ECS fills in
// (which is what makes naive drift detection flap).
import { clientException } from "../errors.ts";
import type { Tag, TaskDefinitionState } from "./model.ts";
import { checkTags } from "./tags.ts";

type Input = Record<string, unknown>;
type Container = Record<string, unknown> & { name?: string; image?: string };

const FAMILY = /^[a-zA-Z0-9_-]{1,255}$/;

const steps = (from: number, to: number, step: number) => Array.from({ length: (to - from) / step + 1 }, (_, i) => from + i * step);

/** Fargate task sizes, cpu units → memory MiB, from the ECS model's RegisterTaskDefinitionRequest.memory documentation. */
const FARGATE_SIZES = new Map<number, number[]>([
  [256, [512, 1024, 2048]],
  [512, [1024, 2048, 3072, 4096]],
  [1024, steps(2048, 8192, 1024)],
  [2048, steps(4096, 16384, 1024)],
  [4096, steps(8192, 30720, 1024)],
  [8192, steps(16384, 61440, 4096)],
  [16384, steps(32768, 122880, 8192)],
]);

/**
 * cpu ("1024", "1 vCPU") and memory ("2048", "2GB", "2 GB") as ECS accepts them: "String values are
 * converted to an integer indicating the CPU units [MiB] when the task definition is registered" (ECS model).
 */
function units(value: unknown, suffix: RegExp, big: RegExp): number | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value === "number") return value;
  const m = /^\s*([\d.]+)\s*([a-z]*)\s*$/i.exec(String(value));
  if (!m || (m[2] && !suffix.test(m[2]))) return undefined;
  return m[2] && big.test(m[2]) ? Math.round(Number(m[1]) * 1024) : Number(m[1]);
}

function list<T = Record<string, unknown>>(v: unknown): T[] {
  return Array.isArray(v) ? (v as T[]) : [];
}

/** The rule ECS documents for container and volume names. */
const NAME = /^[A-Za-z0-9_-]{1,255}$/;

function checkHealthCheck(name: string, hc: Record<string, unknown>): void {
  const bounds: [string, number, number][] = [
    ["interval", 5, 300],
    ["timeout", 2, 60],
    ["retries", 1, 10],
    ["startPeriod", 0, 300],
  ];
  if (!Array.isArray(hc.command) || hc.command.length === 0) throw clientException(`Container ${name}: healthCheck.command should not be empty.`);
  for (const [field, min, max] of bounds) {
    const v = hc[field];
    if (v !== undefined && (typeof v !== "number" || v < min || v > max)) {
      throw clientException(`Container ${name}: healthCheck.${field} must be between ${min} and ${max}.`);
    }
  }
}

/** The task-level requiresAttributes ECS derives from a definition (informational, never compared). */
function requiredAttributes(containers: Container[], volumes: Record<string, unknown>[], networkMode: string): { name: string }[] {
  const attrs = new Set<string>(["com.amazonaws.ecs.capability.docker-remote-api.1.18"]);
  if (networkMode === "awsvpc") attrs.add("ecs.capability.task-eni");
  for (const c of containers) {
    const log = c.logConfiguration as { logDriver?: string } | undefined;
    if (log?.logDriver === "awslogs") {
      attrs.add("com.amazonaws.ecs.capability.logging-driver.awslogs");
      attrs.add("ecs.capability.execution-role-awslogs");
    }
    if (list(c.secrets).length > 0) attrs.add("ecs.capability.secrets.ssm.environment-variables");
    if (c.healthCheck) attrs.add("ecs.capability.container-health-check");
    if (list(c.dependsOn).length > 0) attrs.add("ecs.capability.container-ordering");
  }
  if (volumes.some((v) => v.efsVolumeConfiguration)) attrs.add("ecs.capability.efsAuth");
  return [...attrs].sort().map((name) => ({ name }));
}

export function registerTaskDefinition(
  input: Input,
  revision: number,
  arn: string,
  registeredBy: string,
  now: number,
): TaskDefinitionState {
  const family = input.family;
  if (typeof family !== "string" || !FAMILY.test(family)) {
    throw clientException("Family contains invalid characters or is longer than 255 characters.");
  }
  const containers = list<Container>(input.containerDefinitions);
  if (containers.length === 0) throw clientException("Container list cannot be empty.");
  const volumes = list(input.volumes);
  const volumeNames = new Set(volumes.map((v) => v.name));
  for (const v of volumes) {
    if (typeof v.name !== "string" || !NAME.test(v.name)) throw clientException(`Volume name '${String(v.name)}' is invalid: up to 255 letters, numbers, underscores and hyphens are allowed.`);
    const efs = v.efsVolumeConfiguration as { fileSystemId?: unknown } | undefined;
    if (efs && (typeof efs.fileSystemId !== "string" || !/^fs-[0-9a-f]{8,40}$/.test(efs.fileSystemId))) throw clientException(`Volume ${v.name}: efsVolumeConfiguration.fileSystemId '${String(efs.fileSystemId)}' is not a file system id.`);
  }
  const compat = list<string>(input.requiresCompatibilities);
  const fargate = compat.includes("FARGATE");
  const networkMode = typeof input.networkMode === "string" ? input.networkMode : fargate ? "awsvpc" : "bridge";
  const cpu = units(input.cpu, /^vcpu$/i, /^vcpu$/i);
  const memory = units(input.memory, /^(gb|gib|mb|mib)$/i, /^gi?b$/i);

  if (fargate) {
    if (input.networkMode !== "awsvpc") throw clientException("Fargate only supports network mode ‘awsvpc’.");
    if (cpu === undefined || memory === undefined) throw clientException("Fargate requires that 'cpu' be defined at the task level.");
    if (!FARGATE_SIZES.get(cpu)?.includes(memory)) {
      throw clientException(`No Fargate configuration exists for given values: ${cpu} CPU, ${memory} memory. See the Amazon ECS documentation for the valid values.`);
    }
  }
  const names = new Set<string>();
  for (const [i, c] of containers.entries()) {
    if (typeof c.name !== "string" || c.name === "") throw clientException(`Container.name should not be null or empty.`);
    if (typeof c.image !== "string" || c.image === "") throw clientException(`Container.image should not be null or empty.`);
    // "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed" (ContainerDefinition.name).
    if (!NAME.test(c.name)) throw clientException(`Container name '${c.name}' is invalid: up to 255 letters, numbers, underscores and hyphens are allowed.`);
    if (names.has(c.name)) throw clientException(`Duplicate container name ${c.name}.`);
    names.add(c.name);
    const log = c.logConfiguration as { logDriver?: string } | undefined;
    if (fargate && log?.logDriver === "awslogs" && !input.executionRoleArn) {
      throw clientException("Fargate requires task definition to have execution role ARN to support log driver awslogs.");
    }
    if (list(c.secrets).length > 0 && !input.executionRoleArn) {
      throw clientException("When you are specifying container secrets, you must also specify a value for 'executionRoleArn'.");
    }
    for (const [j, m] of list(c.mountPoints).entries()) {
      if (!volumeNames.has(m.sourceVolume)) {
        throw clientException(`Invalid 'containerDefinitions.${i}.mountPoints.${j}.sourceVolume': volume '${String(m.sourceVolume)}' is not defined.`);
      }
    }
    if (c.healthCheck) checkHealthCheck(c.name, c.healthCheck as Record<string, unknown>);
  }
  for (const c of containers) {
    for (const d of list(c.dependsOn)) {
      if (!names.has(d.containerName as string)) throw clientException(`Container ${c.name} depends on unknown container ${String(d.containerName)}.`);
    }
  }
  const tags = list<Tag>(input.tags);
  checkTags(tags);

  const filledContainers = containers.map((c) => ({
    cpu: 0,
    environment: [],
    volumesFrom: [],
    systemControls: [],
    ...c,
    essential: c.essential ?? true,
    portMappings: list(c.portMappings).map((p) => ({
      ...p,
      protocol: p.protocol ?? "tcp",
      ...(networkMode === "awsvpc" || networkMode === "host" ? { hostPort: p.hostPort ?? p.containerPort } : {}),
    })),
    mountPoints: list(c.mountPoints).map((m) => ({ ...m, readOnly: m.readOnly ?? false })),
  }));
  const filledVolumes = volumes.map((v) => (v.efsVolumeConfiguration || v.host || v.dockerVolumeConfiguration ? v : { ...v, host: {} }));

  const body: Record<string, unknown> = {
    taskDefinitionArn: arn,
    containerDefinitions: filledContainers,
    family,
    ...(input.taskRoleArn ? { taskRoleArn: input.taskRoleArn } : {}),
    ...(input.executionRoleArn ? { executionRoleArn: input.executionRoleArn } : {}),
    networkMode,
    revision,
    volumes: filledVolumes,
    status: "ACTIVE",
    requiresAttributes: requiredAttributes(containers, volumes, networkMode),
    placementConstraints: list(input.placementConstraints),
    compatibilities: fargate || networkMode === "awsvpc" ? ["EC2", "FARGATE"] : ["EC2"],
    ...(input.runtimePlatform ? { runtimePlatform: input.runtimePlatform } : {}),
    requiresCompatibilities: compat,
    ...(cpu !== undefined ? { cpu: String(cpu) } : {}),
    ...(memory !== undefined ? { memory: String(memory) } : {}),
    ...(input.ephemeralStorage ? { ephemeralStorage: input.ephemeralStorage } : {}),
    ...(input.pidMode ? { pidMode: input.pidMode } : {}),
    ...(input.ipcMode ? { ipcMode: input.ipcMode } : {}),
    registeredAt: now,
    registeredBy,
  };
  return {
    arn,
    family,
    revision,
    status: "ACTIVE",
    registeredAt: now,
    body,
    tags,
    hasHealthCheck: containers.some((c) => (c.essential ?? true) && c.healthCheck),
    networkMode,
    fargateCompatible: fargate || networkMode === "awsvpc",
  };
}
