// The compactor guard and the ordinal guard, as one pure decision: of the
// live tasks of a unit that may run only one task (compactor, monolithic, an
// ingester ordinal), which one stays and which must stop. Used by the full
// reconcile and by the safety path that runs before anything else.
import type { TaskSnapshot } from "./observe.ts";

const UNIT_SUFFIX = /^(distributor|ingester-\d+|querier|query-frontend|compactor|index-gateway|ruler|monolithic)$/;
const SINGLE_TASK_SUFFIX = /^(compactor|monolithic|ingester-\d+)$/;

/** Whether an ECS service name is one of `stack`'s units (`<stack>-compactor`, `<stack>-ingester-3`, …). */
export function isUnitOf(stack: string, name: string): boolean {
  return name.startsWith(`${stack}-`) && UNIT_SUFFIX.test(name.slice(stack.length + 1));
}

/** Whether a unit of `stack` may run one task only, whatever the spec says. */
export function isSingleTaskUnit(stack: string, name: string): boolean {
  return name.startsWith(`${stack}-`) && SINGLE_TASK_SUFFIX.test(name.slice(stack.length + 1));
}

export function componentOfUnit(stack: string, name: string): { component: string; ordinal?: number } {
  const suffix = name.slice(stack.length + 1);
  const m = /^ingester-(\d+)$/.exec(suffix);
  return m ? { component: "ingester", ordinal: Number(m[1]) } : { component: suffix };
}

/** The service that started a task, if one did. */
export function serviceOfTask(t: Pick<TaskSnapshot, "group">): string | undefined {
  return t.group.startsWith("service:") ? t.group.slice("service:".length) : undefined;
}

/** The unit a task belongs to: its service, or for a task started outside any service, its family. */
export function unitOfTask(t: Pick<TaskSnapshot, "group" | "family">): string {
  return serviceOfTask(t) ?? t.family;
}

/** Whether the task is one of `unit`'s: started by its service, or of its task definition family. */
export function isTaskOf(unit: string, t: Pick<TaskSnapshot, "group" | "family">): boolean {
  return t.group === `service:${unit}` || t.family === unit;
}

export interface Extras {
  keep: TaskSnapshot;
  extras: TaskSnapshot[];
}

/**
 * Of a single-task unit's live tasks, the one to keep: the service's own task
 * of its primary deployment, running, oldest; the others are extra.
 */
export function extraTasks(unit: string, tasks: readonly TaskSnapshot[], primaryDeploymentId?: string): Extras | undefined {
  if (tasks.length < 2) return undefined;
  const rank = (t: TaskSnapshot) =>
    (t.group === `service:${unit}` ? 0 : 4) + (primaryDeploymentId === undefined || t.startedBy === primaryDeploymentId ? 0 : 2) + (t.lastStatus === "RUNNING" ? 0 : 1);
  const [keep, ...extras] = [...tasks].sort((a, b) => rank(a) - rank(b) || a.createdAt - b.createdAt || a.arn.localeCompare(b.arn));
  return { keep: keep!, extras };
}
