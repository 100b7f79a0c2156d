// One ECS CreateService input per unit (pure).
import type { CreateServiceCommandInput, DeploymentConfiguration } from "@aws-sdk/client-ecs";
import { COMPONENTS } from "./components.ts";
import type { ResolvedStack } from "./resolve.ts";
import { ownershipTags } from "./tags.ts";
import { withSpecHash } from "./task-definition.ts";
import type { Unit } from "./units.ts";

/**
 * Singletons and ingester ordinals stop before they start (0/100), so ECS can
 * never run two of them at once, even mid-deployment. Stateless components
 * overlap (100/200) and roll back on a failed deployment.
 */
export function deploymentConfigurationFor(unit: Pick<Unit, "component">): DeploymentConfiguration {
  if (COMPONENTS[unit.component].role === "stateless") {
    return { minimumHealthyPercent: 100, maximumPercent: 200, deploymentCircuitBreaker: { enable: true, rollback: true } };
  }
  return { minimumHealthyPercent: 0, maximumPercent: 100, deploymentCircuitBreaker: { enable: false, rollback: false } };
}

export function buildService(stack: ResolvedStack, unit: Unit): CreateServiceCommandInput {
  const { network } = stack.spec;
  const stateless = COMPONENTS[unit.component].role === "stateless";
  const body: CreateServiceCommandInput = {
    cluster: stack.spec.cluster,
    serviceName: unit.name,
    // The family; the reconciler pins the revision it registered.
    taskDefinition: unit.name,
    desiredCount: unit.desiredCount,
    launchType: "FARGATE",
    platformVersion: "LATEST",
    schedulingStrategy: "REPLICA",
    deploymentController: { type: "ECS" },
    deploymentConfiguration: deploymentConfigurationFor(unit),
    networkConfiguration: {
      awsvpcConfiguration: {
        subnets: [...network.subnets].sort(),
        securityGroups: [...network.securityGroups].sort(),
        assignPublicIp: network.assignPublicIp ? "ENABLED" : "DISABLED",
      },
    },
    // Rebalancing stops tasks to move them between zones: never for a singleton or an ordinal.
    availabilityZoneRebalancing: stateless ? "ENABLED" : "DISABLED",
    propagateTags: "SERVICE",
    enableECSManagedTags: true,
    enableExecuteCommand: false,
    tags: ownershipTags(stack.name, unit),
  };
  return withSpecHash(body);
}
