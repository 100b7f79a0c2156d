// The Loki half of a stack's observation: what its ingesters say about
// themselves. ECS reports a task RUNNING long before its ingester can take
// writes (WAL replay, joining the ring), and cannot see the ring at all, so
// ordered ingester changes wait for each ordinal's own GET /ready, and the
// ring is read once per reconcile through a live member.
import { LokiCallError, type LokiGateway, type Readiness, type RingMember } from "../loki/gateway.ts";
import type { TaskSnapshot } from "./observe.ts";

export interface LokiView {
  /** By task ARN: the answer of GET /ready, or the error when it could not be asked. */
  readiness: Map<string, Readiness | LokiCallError>;
  /** The ingester ring, when a live component answered. */
  ring?: RingMember[];
  /** The address of the component that answered for the ring. */
  ringVia?: string;
  /** Why the ring could not be read (no live component, or the call failed). */
  ringError?: string;
}

/** A task whose Loki can be asked: running, meant to run, with an address. */
export function answers(t: TaskSnapshot): t is TaskSnapshot & { privateIp: string } {
  return t.lastStatus === "RUNNING" && t.desiredStatus === "RUNNING" && t.privateIp !== undefined;
}

/**
 * Asks the running tasks of the stack's ingester ordinals whether they are
 * ready (concurrently), and the first of them that answers for the ring. The
 * distributors are asked for the ring when no ingester runs.
 */
export async function observeLoki(loki: LokiGateway, ordinalTasks: readonly TaskSnapshot[], distributorTasks: readonly TaskSnapshot[]): Promise<LokiView> {
  const live = (ts: readonly TaskSnapshot[]) => ts.filter(answers);
  const ordinals = live(ordinalTasks);
  const readiness = new Map<string, Readiness | LokiCallError>();
  await Promise.all(
    ordinals.map(async (t) => {
      readiness.set(t.arn, await loki.ready(t.privateIp).catch((e: unknown) => asLokiError(e, t.privateIp)));
    }),
  );
  // The ring through a component that answered, ready ones first.
  const candidates = [
    ...ordinals.filter((t) => isReady(readiness.get(t.arn))),
    ...ordinals.filter((t) => !(readiness.get(t.arn) instanceof LokiCallError) && !isReady(readiness.get(t.arn))),
    ...live(distributorTasks),
  ];
  let ringError = candidates.length === 0 ? "no running ingester or distributor to ask" : undefined;
  for (const t of candidates.slice(0, 3)) {
    try {
      return { readiness, ring: await loki.ring(t.privateIp), ringVia: t.privateIp };
    } catch (e) {
      ringError = asLokiError(e, t.privateIp).message;
    }
  }
  return { readiness, ...(ringError ? { ringError } : {}) };
}

export function isReady(r: Readiness | LokiCallError | undefined): boolean {
  return r !== undefined && !(r instanceof LokiCallError) && r.ready;
}

function asLokiError(e: unknown, address: string): LokiCallError {
  return e instanceof LokiCallError ? e : new LokiCallError(address, undefined, e instanceof Error ? e.message : String(e));
}
