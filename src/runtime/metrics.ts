// Prometheus metrics, named after controller-runtime's where they mean the same.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ReconcileMetrics } from "../controllers/reconciler.ts";
import type { Outcome } from "../controllers/types.ts";

export class OperatorMetrics implements ReconcileMetrics {
  readonly registry = new Registry();
  private readonly reconcileTotal = new Counter({ name: "lokistack_reconcile_total", help: "Stack reconciles by outcome (done, requeue, degraded, error).", labelNames: ["result"], registers: [this.registry] });
  private readonly reconcileErrors = new Counter({ name: "lokistack_reconcile_errors_total", help: "Stack reconciles that ended degraded or in an error.", registers: [this.registry] });
  private readonly duration = new Histogram({
    name: "lokistack_reconcile_time_seconds",
    help: "Time to reconcile one stack.",
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  private readonly drifts = new Counter({ name: "lokistack_drifts_total", help: "Drifts found, by kind.", labelNames: ["kind"], registers: [this.registry] });
  private readonly actions = new Counter({ name: "lokistack_actions_total", help: "Actions taken, by kind and result.", labelNames: ["kind", "result"], registers: [this.registry] });
  readonly leader = new Gauge({ name: "lokistack_leader", help: "1 while this replica holds the lease.", registers: [this.registry] });
  readonly leaseOk = new Gauge({ name: "lokistack_lease_ok", help: "0 while this replica cannot read or write its lease (see the lease log line for the missing permission).", registers: [this.registry] });
  readonly passes = new Counter({ name: "lokistack_passes_total", help: "Resyncs run (a fresh observation of every stack, then each stack reconciled).", registers: [this.registry] });
  readonly queueDepth = new Gauge({ name: "lokistack_workqueue_depth", help: "Stacks waiting in the work queue.", registers: [this.registry] });
  readonly guardStops = new Counter({ name: "lokistack_guard_stops_total", help: "Extra singleton or ordinal tasks stopped by the safety guard.", registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "lokistack_" });
  }

  reconciled(_stack: string, outcome: Outcome["kind"], seconds: number): void {
    this.reconcileTotal.inc({ result: outcome });
    if (outcome === "error" || outcome === "degraded") this.reconcileErrors.inc();
    this.duration.observe(seconds);
  }

  drift(kind: string): void {
    this.drifts.inc({ kind });
  }

  action(kind: string, result: "ok" | "failed"): void {
    this.actions.inc({ kind, result });
  }
}
