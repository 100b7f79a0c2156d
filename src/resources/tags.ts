// Ownership tags. The operator changes or deletes nothing that lacks MANAGED_BY.
import type { Tag } from "@aws-sdk/client-ecs";
import type { Unit } from "./units.ts";

export const TAG_PREFIX = "lokistack.io/";
export const TAGS = {
  managedBy: "lokistack.io/managed-by",
  stack: "lokistack.io/stack",
  component: "lokistack.io/component",
  ordinal: "lokistack.io/ordinal",
  specHash: "lokistack.io/spec-hash",
} as const;
export const MANAGED_BY_VALUE = "ecs-lokistack-operator";

/** The ownership tags of a unit's objects, without the spec hash (added once the object is complete). */
export function ownershipTags(stack: string, unit: Unit): Tag[] {
  const tags: Tag[] = [
    { key: TAGS.managedBy, value: MANAGED_BY_VALUE },
    { key: TAGS.stack, value: stack },
    { key: TAGS.component, value: unit.component },
  ];
  if (unit.ordinal !== undefined) tags.push({ key: TAGS.ordinal, value: String(unit.ordinal) });
  return tags;
}

export function isOwnedTagKey(key: string | undefined): boolean {
  return key !== undefined && key.startsWith(TAG_PREFIX);
}

export function isManaged(tags: readonly Tag[] | undefined): boolean {
  return (tags ?? []).some((t) => t.key === TAGS.managedBy && t.value === MANAGED_BY_VALUE);
}
