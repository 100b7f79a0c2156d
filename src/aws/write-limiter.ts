// One budget for every write the operator makes, shared by all stacks, kept
// under ECS's per-account refill rates (service modify 5/s, task definition
// register 1/s) so the operator never burns the account's budget that
// deploy tools and people share with it.

export type WriteKind = "service" | "taskDefinition" | "task" | "tag" | "parameter" | "discovery";

interface Bucket {
  tokens: number;
  last: number;
  rate: number;
  burst: number;
}

export const DEFAULT_WRITE_RATES: Record<WriteKind, { rate: number; burst: number }> = {
  service: { rate: 5, burst: 10 },
  taskDefinition: { rate: 1, burst: 5 },
  task: { rate: 10, burst: 20 },
  tag: { rate: 5, burst: 10 },
  parameter: { rate: 3, burst: 5 },
  discovery: { rate: 5, burst: 10 },
};

export class WriteLimiter {
  private readonly buckets = new Map<WriteKind, Bucket>();

  constructor(
    rates: Partial<Record<WriteKind, { rate: number; burst: number }>> = {},
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {
    for (const [kind, r] of Object.entries({ ...DEFAULT_WRITE_RATES, ...rates }) as [WriteKind, { rate: number; burst: number }][]) {
      this.buckets.set(kind, { tokens: r.burst, last: now(), rate: r.rate, burst: r.burst });
    }
  }

  /** Waits until a write of this kind fits the budget, then spends it. */
  async acquire(kind: WriteKind): Promise<void> {
    const b = this.buckets.get(kind)!;
    for (;;) {
      const t = this.now();
      b.tokens = Math.min(b.burst, b.tokens + ((t - b.last) / 1000) * b.rate);
      b.last = t;
      if (b.tokens >= 1) {
        b.tokens -= 1;
        return;
      }
      await this.sleep(((1 - b.tokens) / b.rate) * 1000);
    }
  }
}
