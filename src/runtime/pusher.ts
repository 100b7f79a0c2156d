// A Loki client that keeps count: it pushes numbered log lines at a steady
// rate through the distributor (one line per push, retrying a line until it
// is acknowledged, as Promtail or the Grafana Agent do), records every
// acknowledged line and the longest stretch without an acknowledgement, and
// afterwards reads every line back through the query frontend. What it
// acknowledged and cannot find is what Loki lost.

export interface PusherOptions {
  /** Base URLs of the distributors right now (tasks come and go, as behind a load balancer). */
  distributors: () => string[];
  /** Pushes per second. */
  rate: number;
  labels?: Record<string, string>;
  /** Milliseconds one push may take. */
  timeoutMs?: number;
  /**
   * Spread lines over this many streams (a `shard` label, line number modulo), so
   * that every ingester holds some: one stream lives on replicationFactor ingesters only.
   */
  streams?: number;
}

export interface PushReport {
  acknowledged: number;
  attempts: number;
  failures: number;
  /** The longest time between two acknowledgements while pushing, in milliseconds. */
  longestOutageMs: number;
}

export interface VerifyReport {
  acknowledged: number;
  found: number;
  /** Acknowledged line numbers the query frontend does not return. */
  lost: number[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const linePattern = /^line (\d+)$/;

export class LinePusher {
  /** Acknowledged line number → its timestamp in nanoseconds. */
  readonly acknowledged = new Map<number, bigint>();
  private attempts = 0;
  private failures = 0;
  private next = 1;
  private lastAck?: number;
  private longestOutageMs = 0;
  private running = false;
  private loop?: Promise<void>;
  readonly labels: Record<string, string>;

  constructor(private readonly options: PusherOptions) {
    this.labels = options.labels ?? { job: "lokistack-pusher" };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastAck = Date.now();
    this.loop = this.run();
  }

  async stop(): Promise<PushReport> {
    this.running = false;
    await this.loop;
    return this.report();
  }

  report(): PushReport {
    const current = this.running && this.lastAck !== undefined ? Date.now() - this.lastAck : 0;
    return { acknowledged: this.acknowledged.size, attempts: this.attempts, failures: this.failures, longestOutageMs: Math.max(this.longestOutageMs, current) };
  }

  /** The report so far, and the longest outage counted afresh from now: the figures of one phase. */
  phase(): PushReport {
    const report = this.report();
    this.longestOutageMs = 0;
    return report;
  }

  private async run(): Promise<void> {
    const every = 1000 / this.options.rate;
    let last = 0;
    while (this.running) {
      await sleep(Math.max(0, last + every - Date.now()));
      last = Date.now();
      if (await this.push(this.next)) this.next += 1;
    }
  }

  private async push(line: number): Promise<boolean> {
    const targets = this.options.distributors();
    this.attempts += 1;
    // Timestamps increase with the line number (pushes are at least a millisecond apart).
    const ts = BigInt(Date.now()) * 1_000_000n + BigInt(line % 1_000_000);
    // A retry goes to the next distributor, as a load balancer would spread it.
    const target = targets[this.attempts % Math.max(targets.length, 1)];
    try {
      if (!target) throw new Error("no distributor");
      const res = await fetch(`${target}/loki/api/v1/push`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ streams: [{ stream: this.streamOf(line), values: [[String(ts), `line ${line}`]] }] }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
      });
      await res.arrayBuffer();
      if (res.status !== 204 && res.status !== 200) throw new Error(`HTTP ${res.status}`);
    } catch {
      this.failures += 1;
      return false;
    }
    const now = Date.now();
    if (this.lastAck !== undefined) this.longestOutageMs = Math.max(this.longestOutageMs, now - this.lastAck);
    this.lastAck = now;
    this.acknowledged.set(line, ts);
    return true;
  }

  private streamOf(line: number): Record<string, string> {
    return this.options.streams ? { ...this.labels, shard: String(line % this.options.streams) } : this.labels;
  }

  /** Reads every line of this pusher's stream back through `queryFrontend` and compares with what was acknowledged. */
  async verify(queryFrontend: string): Promise<VerifyReport> {
    const found = await this.find(queryFrontend, [...this.acknowledged.values()]);
    const lost = [...this.acknowledged.keys()].filter((n) => !found.has(n)).sort((a, b) => a - b);
    return { acknowledged: this.acknowledged.size, found: found.size, lost };
  }

  /** The numbers of this pusher's lines that `queryFrontend` returns between the first and last of `stamps` (ns). */
  async find(queryFrontend: string, stamps: readonly bigint[]): Promise<Set<number>> {
    const found = new Set<number>();
    if (stamps.length === 0) return found;
    let start = stamps.reduce((a, b) => (a < b ? a : b)) - 1_000_000_000n;
    const end = stamps.reduce((a, b) => (a > b ? a : b)) + 1_000_000_000n;
    const selector = `{${Object.entries(this.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(",")}}`;
    for (;;) {
      const url = new URL(`${queryFrontend}/loki/api/v1/query_range`);
      url.search = new URLSearchParams({ query: selector, start: String(start), end: String(end), limit: "5000", direction: "forward" }).toString();
      const res = await fetch(url, { signal: AbortSignal.timeout(60_000) });
      if (!res.ok) throw new Error(`query_range: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as { data: { result: { values: [string, string][] }[] } };
      let newest = start;
      let count = 0;
      for (const stream of body.data.result) {
        for (const [ts, text] of stream.values) {
          count += 1;
          const n = linePattern.exec(text)?.[1];
          if (n) found.add(Number(n));
          if (BigInt(ts) > newest) newest = BigInt(ts);
        }
      }
      if (count < 5000 || newest <= start) break;
      start = newest; // query_range's start is inclusive: the newest line comes again, which the set absorbs
    }
    return found;
  }
}
