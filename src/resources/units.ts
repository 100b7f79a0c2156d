// A "unit" is one ECS service and its task definition family: a component, or
// one ingester ordinal (the ECS stand-in for a StatefulSet pod with a stable
// identity, since ECS has none: aws/containers-roadmap #127).
import type { Component } from "./components.ts";
import type { ResolvedComponent, ResolvedStack } from "./resolve.ts";

export interface Unit {
  /** ECS service name, task definition family and Loki instance id: `<stack>-<component>[-<ordinal>]`. */
  name: string;
  component: Component;
  ordinal?: number;
  /** Tasks this unit's service keeps: 1 for each ingester ordinal. */
  desiredCount: number;
  resources: ResolvedComponent;
}

export function unitName(stack: string, component: Component, ordinal?: number): string {
  return ordinal === undefined ? `${stack}-${component}` : `${stack}-${component}-${ordinal}`;
}

export function unitsOf(stack: ResolvedStack): Unit[] {
  return stack.components.flatMap((resources): Unit[] => {
    const { component } = resources;
    if (component === "ingester") {
      return Array.from({ length: resources.replicas }, (_, ordinal) => ({
        name: unitName(stack.name, component, ordinal),
        component,
        ordinal,
        desiredCount: 1,
        resources,
      }));
    }
    return [{ name: unitName(stack.name, component), component, desiredCount: resources.replicas, resources }];
  });
}
