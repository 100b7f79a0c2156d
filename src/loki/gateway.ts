// Loki's own HTTP API on one task, at the task's private IP: the operator runs
// in the tasks' VPC and asks an ingester whether it is ready, what its ring
// looks like, and to flush and leave before its ordinal goes away. ECS sees
// tasks; only Loki knows whether the data in them is safe.
//
// Facts (Loki 3.x, grafana/loki pkg/ingester and dskit ring):
// - GET /ready answers 200 "ready" once every module is running, 503 otherwise.
// - GET /ring with `Accept: application/json` answers {shards: [{id, state,
//   address, timestamp, ...}], now}; a member whose heartbeat is older than the
//   ring's heartbeat timeout reads "UNHEALTHY". POST /ring with the form field
//   `forget=<id>` removes a member and answers 302.
// - POST /ingester/shutdown?flush=true&delete_ring_tokens=true&terminate=false
//   is synchronous: it answers 204 once the ingester has left the ring and
//   flushed, with the process still up; a second call answers 503 ("Ingester is
//   stopping or already stopped"), and any failure 500 with the error (the
//   ingester module then has failed, and with it the whole process exits).
// - GET /services lists each module as `name => State` (dskit: New, Starting,
//   Running, Stopping, Terminated, Failed): after a clean shutdown the
//   ingester reads Terminated. The task's own /ring answers shards null by then.
// An optional HTTP proxy carries the requests when the operator cannot reach
// the tasks directly (the local control plane answers for simulated tasks).
import { request, type IncomingMessage } from "node:http";

export const LOKI_HTTP_PORT = 3100;

/** A call to Loki that did not get the answer it needed; `status` is undefined when nothing answered. */
export class LokiCallError extends Error {
  constructor(
    readonly url: string,
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = "LokiCallError";
  }

  /** Nothing answered: refused, timed out, no route (a security group, a task gone). */
  get unreachable(): boolean {
    return this.status === undefined;
  }
}

export interface RingMember {
  id: string;
  /** ACTIVE, JOINING, LEAVING, PENDING, LEFT, or UNHEALTHY (a stale heartbeat). */
  state: string;
  address: string;
  /** The last heartbeat, epoch ms. */
  heartbeatAt: number;
}

export interface Readiness {
  ready: boolean;
  /** Loki's answer when not ready, cut short. */
  message: string;
}

export interface LokiGatewayOptions {
  /** `http://host:port` of an HTTP proxy to send every request through. */
  proxy?: string;
  /** For reads and the forget. */
  timeoutMs?: number;
  /** For the flush, which lasts as long as the ingester needs to write its chunks. */
  flushTimeoutMs?: number;
}

interface Answer {
  status: number;
  body: string;
}

const MAX_BODY = 4 * 1024 * 1024;

export class LokiGateway {
  private readonly proxy?: URL;
  private readonly timeoutMs: number;
  private readonly flushTimeoutMs: number;

  constructor(options: LokiGatewayOptions = {}) {
    if (options.proxy) this.proxy = new URL(options.proxy);
    this.timeoutMs = options.timeoutMs ?? 3000;
    this.flushTimeoutMs = options.flushTimeoutMs ?? 15 * 60_000;
  }

  async ready(address: string): Promise<Readiness> {
    const a = await this.call("GET", address, "/ready");
    return { ready: a.status === 200, message: a.status === 200 ? "ready" : a.body.trim().slice(0, 200) || `HTTP ${a.status}` };
  }

  async ring(address: string): Promise<RingMember[]> {
    const url = this.url(address, "/ring");
    const a = await this.call("GET", address, "/ring", { accept: "application/json" });
    if (a.status !== 200) throw new LokiCallError(url, a.status, `GET ${url}: HTTP ${a.status}: ${a.body.trim().slice(0, 200)}`);
    try {
      const parsed = JSON.parse(a.body) as { shards?: { id?: string; state?: string; address?: string; timestamp?: string }[] | null };
      return (parsed.shards ?? []).map((s) => ({ id: s.id ?? "", state: s.state ?? "UNKNOWN", address: s.address ?? "", heartbeatAt: s.timestamp ? Date.parse(s.timestamp) : 0 }));
    } catch {
      throw new LokiCallError(url, a.status, `GET ${url}: not the ring's JSON (is this a Loki component with a ring?)`);
    }
  }

  async forget(address: string, id: string): Promise<void> {
    const url = this.url(address, "/ring");
    const a = await this.call("POST", address, "/ring", { "content-type": "application/x-www-form-urlencoded" }, new URLSearchParams({ forget: id }).toString());
    if (a.status !== 302 && a.status !== 200) throw new LokiCallError(url, a.status, `forget ${id} at ${url}: HTTP ${a.status}: ${a.body.trim().slice(0, 200)}`);
  }

  /**
   * Flush and leave the ring, keeping the process up. "flushed" when this call
   * did it; "stopping" when the ingester was already stopping or stopped (a call
   * before this one, or a shutdown in progress): the caller then asks its state.
   */
  async shutdown(address: string): Promise<"flushed" | "stopping"> {
    const path = "/ingester/shutdown?flush=true&delete_ring_tokens=true&terminate=false";
    const url = this.url(address, path);
    const a = await this.call("POST", address, path, {}, "", this.flushTimeoutMs);
    if (a.status === 204 || a.status === 200) return "flushed";
    if (a.status === 503) return "stopping";
    throw new LokiCallError(url, a.status, `flush at ${url}: HTTP ${a.status}: ${a.body.trim().slice(0, 300) || "no message"}`);
  }

  /** The state of a module of the task's Loki (`GET /services`), or undefined when it runs no such module. */
  async moduleState(address: string, module: string): Promise<string | undefined> {
    const url = this.url(address, "/services");
    const a = await this.call("GET", address, "/services");
    if (a.status !== 200) throw new LokiCallError(url, a.status, `GET ${url}: HTTP ${a.status}: ${a.body.trim().slice(0, 200)}`);
    for (const line of a.body.split("\n")) {
      const [name, state] = line.split(" => ").map((x) => x.trim());
      if (name === module) return state;
    }
    return undefined;
  }

  private url(address: string, path: string): string {
    return `http://${address}:${LOKI_HTTP_PORT}${path}`;
  }

  private call(method: string, address: string, path: string, headers: Record<string, string> = {}, body = "", timeoutMs = this.timeoutMs): Promise<Answer> {
    const url = this.url(address, path);
    const target = this.proxy
      ? { host: this.proxy.hostname, port: Number(this.proxy.port || 80), path: url }
      : { host: address, port: LOKI_HTTP_PORT, path };
    return new Promise((resolve, reject) => {
      const req = request(
        { ...target, method, headers: { ...headers, host: `${address}:${LOKI_HTTP_PORT}`, "content-length": Buffer.byteLength(body) }, timeout: timeoutMs, agent: false },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size <= MAX_BODY) chunks.push(c);
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", (e) => reject(new LokiCallError(url, undefined, `${method} ${url}: ${e.message}`)));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on("error", (e) => reject(new LokiCallError(url, undefined, `${method} ${url}: ${e.message}`)));
      req.end(body);
    });
  }
}
