// spec → desired state: every object the operator converges a stack to.
import type { CreateServiceCommandInput, RegisterTaskDefinitionCommandInput } from "@aws-sdk/client-ecs";
import { buildDiscoveryService, type DesiredDiscoveryService } from "./discovery.ts";
import { contentHash } from "./hash.ts";
import { renderLokiConfigYaml } from "./loki-config.ts";
import type { ResolvedStack } from "./resolve.ts";
import { buildService } from "./service.ts";
import { buildTaskDefinition } from "./task-definition.ts";
import { unitsOf, type Unit } from "./units.ts";

export const DEFAULT_PREFIX = "/lokistack";

/** Where a person writes a stack's spec, and where the operator reports its status. */
export const specParameterName = (prefix: string, stack: string) => `${prefix}/${stack}/spec`;
export const statusParameterName = (prefix: string, stack: string) => `${prefix}/${stack}/status`;

export interface RenderOptions {
  /** SSM prefix of the stack's parameters. */
  parameterPrefix?: string;
}

export interface DesiredUnit {
  unit: Unit;
  lokiConfig: string;
  taskDefinition: RegisterTaskDefinitionCommandInput;
  service: CreateServiceCommandInput;
}

export interface Rendered {
  taskDefinitions: RegisterTaskDefinitionCommandInput[];
  services: CreateServiceCommandInput[];
  /** The Cloud Map services the units register their tasks in. */
  discoveryServices: DesiredDiscoveryService[];
  /** Loki config YAML by unit name (component, or `<stack>-ingester-<i>`). */
  lokiConfig: Record<string, string>;
}

export function desiredUnits(stack: ResolvedStack, options: RenderOptions = {}): DesiredUnit[] {
  const parameterPrefix = options.parameterPrefix ?? DEFAULT_PREFIX;
  return unitsOf(stack).map((unit) => {
    const lokiConfig = renderLokiConfigYaml(stack, unit);
    return {
      unit,
      lokiConfig,
      taskDefinition: buildTaskDefinition({ stack, unit, parameterPrefix, configHash: contentHash(lokiConfig) }),
      service: buildService(stack, unit),
    };
  });
}

export function render(stack: ResolvedStack, options: RenderOptions = {}): Rendered {
  const units = desiredUnits(stack, options);
  return {
    taskDefinitions: units.map((u) => u.taskDefinition),
    services: units.map((u) => u.service),
    discoveryServices: units.map((u) => buildDiscoveryService(u, stack.spec.discovery.namespace)),
    lokiConfig: Object.fromEntries(units.map((u) => [u.unit.name, u.lokiConfig])),
  };
}
