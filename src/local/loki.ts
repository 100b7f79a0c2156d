// Loki's HTTP API for simulated tasks: what an operator asks a Loki task
// (GET /ready, the ring, POST /ingester/shutdown, the build info), answered
// from the task's state the way Loki 3.x answers, and the Loki side of the
// container health check (what `loki -health -health.url=…` or a wget in the
// container would get). Real tasks run the real binary and need none of this.
//
// The control plane serves it as an HTTP proxy: a request for
// http://<task private IP>:3100/... reaches the task with that address.
//
// What it knows about Loki (grafana/loki pkg/ingester, pkg/loki, dskit ring):
// - A task's config is the YAML its containers receive (the control plane's
//   secrets and environment values that parse as a Loki config).
// - The ring member of an ingester is `common.ring.instance_id`, else
//   `ingester.lifecycler.id`, else the host name (here the task id). Members
//   gossip with those that join the same `memberlist.join_members`; with the
//   `inmemory` kvstore each process has a ring of its own.
// - `-target=ingester`, `all` and `write` run an ingester.
// - GET /ready: 200 "ready" when every module runs, else 503 with the reason.
// - POST /ingester/shutdown: 204 after flush and leaving the ring (with
//   terminate=false the process stays up and /ready turns 503); a second call
//   503 "Ingester is stopping or already stopped.". A shutdown that fails
//   (the WAL or the ring's KV store) answers 500 with the error: the ingester
//   module has failed, so the whole process exits (any failed module stops
//   Loki), and a member that could not unregister stays behind, LEAVING.
// - GET /ring on a process whose ingester module stopped answers
//   {"shards": null} (Loki 3.4.6); GET /services lists each module as
//   `name => State`: the ingester reads Terminated after a clean shutdown,
//   Failed after one that failed.
// - A process stopped with SIGTERM unregisters from the ring
//   (unregister_on_shutdown defaults to true); one that crashed leaves its
//   member behind, which reads UNHEALTHY once its heartbeat is older than
//   `common.ring.heartbeat_timeout` (default 1m).
// - GET /ring with Accept: application/json → {shards: [...], now};
//   POST /ring forget=<id> removes the member and answers 302.
import type { IncomingMessage, ServerResponse } from "node:http";
import { parse } from "yaml";
import type { TaskDefinitionState, TaskState } from "./ecs/model.ts";

export const LOKI_HTTP_PORT = 3100;
const INGESTER_TARGETS = new Set(["ingester", "all", "write"]);
const DEFAULT_READY_URL = `http://localhost:${LOKI_HTTP_PORT}/ready`;

/** What a test can make a simulated Loki do. */
export interface LokiFault {
  /** The ingester is replaying its WAL (or otherwise not ready): /ready answers 503, the member is JOINING. */
  notReady?: boolean;
  /** /ingester/shutdown fails with this status and message: the process exits at the next tick, its member left behind. */
  shutdownError?: { status: number; message: string };
  /** The flush does not end while this is set: the call gets no answer (as a client's timeout), the member stays LEAVING. */
  flushHangs?: boolean;
  /** Nothing answers: connections are dropped. */
  unreachable?: boolean;
}

/** A flush the API did, for tests to compare with when the task was asked to stop. */
export interface FlushRecord {
  taskArn: string;
  instanceId: string;
  /** Epoch seconds on the control plane's clock. */
  at: number;
  /** The task's desired status then: RUNNING when the flush came before ECS was asked to stop it. */
  desiredStatus: string;
}

interface RingEntry {
  id: string;
  address: string;
  state: "ACTIVE" | "JOINING" | "LEAVING";
  /** Epoch seconds of the last heartbeat. */
  heartbeat: number;
  registered: number;
  /** The task whose process keeps this member alive. */
  taskArn: string;
}

interface LokiProcess {
  taskArn: string;
  instanceId: string;
  target: string;
  ring: string;
  heartbeatTimeout: number;
  /**
   * The ingester module, in dskit's states: Running until shut down through the API; Stopping
   * while a shutdown flushes (its call got no answer, until the fault is lifted); Terminated after
   * a clean one; Failed after one that failed, when the whole process exits.
   */
  ingester: "Running" | "Stopping" | "Terminated" | "Failed";
  /** The task stopped and the ring was told (or not, when it crashed). */
  gone: boolean;
  /** A failed process whose exit the control plane has been told of (it stops the task). */
  exited?: boolean;
}

export interface LokiSimDeps {
  now: () => number;
  tasks: () => Iterable<TaskState>;
  taskDefinition: (arn: string) => TaskDefinitionState | undefined;
  /** A container secret's value, as the ECS agent would inject it. */
  secret: (valueFrom: string) => string | undefined;
}

interface ContainerDef {
  name?: string;
  image?: string;
  command?: string[];
  entryPoint?: string[];
  essential?: boolean;
  environment?: { name?: string; value?: string }[];
  secrets?: { name?: string; valueFrom?: string }[];
  healthCheck?: { command?: string[] };
}

const isLokiImage = (image: string | undefined) => image !== undefined && /(^|\/)grafana\/loki(:|@|$)/.test(image);

function durationSeconds(v: unknown, fallback: number): number {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return fallback;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(v.trim());
  if (!m) return fallback;
  return Number(m[1]) * { ms: 0.001, s: 1, m: 60, h: 3600 }[m[2] as "ms" | "s" | "m" | "h"];
}

type Yaml = Record<string, unknown>;
const obj = (v: unknown): Yaml => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Yaml) : {});

export class LokiSim {
  private readonly processes = new Map<string, LokiProcess>();
  private readonly rings = new Map<string, Map<string, RingEntry>>();
  private readonly crashed = new Set<string>();
  /** Faults by ring instance id (they follow the member across replacements) or task ARN. */
  readonly faults = new Map<string, LokiFault>();
  readonly flushes: FlushRecord[] = [];

  constructor(private readonly deps: LokiSimDeps) {}

  /** A shutdown's flush has ended: the member has left the ring. */
  private flushed(task: TaskState, proc: LokiProcess): void {
    proc.ingester = "Terminated";
    this.rings.get(proc.ring)?.delete(proc.instanceId);
    this.flushes.push({ taskArn: task.arn, instanceId: proc.instanceId, at: this.deps.now(), desiredStatus: task.desiredStatus });
  }

  /** Tasks whose Loki process exits now (a failed module): each is named once. */
  exits(): string[] {
    const out: string[] = [];
    for (const proc of this.processes.values()) {
      if (proc.ingester !== "Failed" || proc.exited) continue;
      proc.exited = true;
      out.push(proc.taskArn);
    }
    return out;
  }

  /** Marks a task's Loki as crashed: when the task stops, its ring member stays behind (SIGKILL, OOM). */
  crash(taskArn: string): void {
    this.crashed.add(taskArn);
  }

  /** Answers one proxied request for `http://<ip>:<port><path>`; false when no simulated Loki listens there. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<boolean> {
    this.sync();
    const task = [...this.deps.tasks()].find((t) => t.privateIp === url.hostname && t.lastStatus === "RUNNING");
    const proc = task && Number(url.port || 80) === LOKI_HTTP_PORT ? this.processOf(task) : undefined;
    if (!task || !proc) return false;
    if (this.faultOf(proc).unreachable) {
      req.socket.destroy();
      return true;
    }
    const send = (status: number, text: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "text/plain; charset=utf-8", ...headers });
      res.end(text);
    };
    const method = req.method ?? "GET";
    switch (url.pathname) {
      case "/ready": {
        const why = this.notReady(task, proc);
        return send(why ? 503 : 200, why ?? "ready\n"), true;
      }
      case "/services": {
        // The module's wrapper reads Running until the ingester itself has stopped.
        const ingester = proc.ingester === "Stopping" ? "Running" : proc.ingester;
        const modules = INGESTER_TARGETS.has(proc.target) ? { server: "Running", "memberlist-kv": "Running", ring: "Running", ingester } : { server: "Running", [proc.target]: "Running" };
        return send(200, Object.entries(modules).map(([m, s]) => `${m} => ${s}\n`).join("")), true;
      }
      case "/loki/api/v1/status/buildinfo":
        return send(200, JSON.stringify({ version: "simulated", revision: "", branch: "", goVersion: "" }), { "content-type": "application/json" }), true;
      case "/ring": {
        if (!INGESTER_TARGETS.has(proc.target) && !["distributor", "querier", "ruler"].includes(proc.target)) return send(404, "404 page not found\n"), true;
        if (method === "POST") {
          const id = new URLSearchParams(body.toString("utf8")).get("forget") ?? "";
          this.rings.get(proc.ring)?.delete(id);
          return send(302, "", { location: "#" }), true;
        }
        if (!String(req.headers.accept ?? "").includes("application/json")) return send(200, "<html>ring</html>", { "content-type": "text/html" }), true;
        return send(200, JSON.stringify(this.ringView(proc)), { "content-type": "application/json" }), true;
      }
      case "/ingester/shutdown": {
        if (!INGESTER_TARGETS.has(proc.target)) return send(404, "404 page not found\n"), true;
        if (method !== "POST" && method !== "GET") return send(405, "method not allowed\n"), true;
        if (proc.ingester !== "Running") return send(503, "Ingester is stopping or already stopped."), true;
        const { shutdownError, flushHangs } = this.faultOf(proc);
        if (shutdownError || flushHangs) {
          const member = this.rings.get(proc.ring)?.get(proc.instanceId);
          if (member) member.state = "LEAVING";
        }
        if (shutdownError) {
          proc.ingester = "Failed";
          this.crashed.add(task.arn);
          return send(shutdownError.status, shutdownError.message), true;
        }
        if (flushHangs) {
          proc.ingester = "Stopping";
          req.socket.destroy();
          return true;
        }
        this.flushed(task, proc);
        return send(204, ""), true;
      }
      default:
        return send(404, "404 page not found\n"), true;
    }
  }

  /**
   * What the container health check of a Loki container gets: pass or fail,
   * or undefined when the command does not ask Loki over HTTP (the simulator
   * then treats it as passing).
   */
  healthCheck(task: TaskState, command: readonly string[]): boolean | undefined {
    // Runs for every running task at every scheduler tick: it reads the task's own state only,
    // never the rings (brought up to date when the API is asked).
    const proc = this.processOf(task);
    if (!proc) return undefined;
    const url = healthUrl(command);
    if (!url) return undefined;
    if (this.faultOf(proc).unreachable) return false;
    if (url.pathname === "/ready") return this.notReady(task, proc) === undefined;
    return true;
  }

  private faultOf(proc: LokiProcess): LokiFault {
    return { ...this.faults.get(proc.instanceId), ...this.faults.get(proc.taskArn) };
  }

  private notReady(task: TaskState, proc: LokiProcess): string | undefined {
    if (task.lastStatus !== "RUNNING" || task.desiredStatus !== "RUNNING") return "Some services are not Running:\nStopping: 1\n";
    if (!INGESTER_TARGETS.has(proc.target)) return undefined;
    if (proc.ingester !== "Running") return "Ingester not ready: ingester not running\n";
    if (this.faultOf(proc).notReady) return "Ingester not ready: waiting for 15s after being ready\n";
    return undefined;
  }

  private ringView(proc: LokiProcess): { shards: unknown[] | null; now: string } {
    const now = this.deps.now();
    if (INGESTER_TARGETS.has(proc.target) && proc.ingester !== "Running") return { shards: null, now: new Date(now * 1000).toISOString() };
    const entries = [...(this.rings.get(proc.ring)?.values() ?? [])].sort((a, b) => a.id.localeCompare(b.id));
    return {
      shards: entries.map((e) => ({
        id: e.id,
        state: now - e.heartbeat > proc.heartbeatTimeout ? "UNHEALTHY" : e.state,
        address: e.address,
        timestamp: new Date(Math.floor(e.heartbeat) * 1000).toISOString(),
        registered_timestamp: new Date(Math.floor(e.registered) * 1000).toISOString(),
        read_only: false,
        zone: "",
        tokens: [],
      })),
      now: new Date(now * 1000).toISOString(),
    };
  }

  private lokiContainer(task: TaskState): ContainerDef | undefined {
    const body = this.deps.taskDefinition(task.taskDefinitionArn)?.body as { containerDefinitions?: ContainerDef[] } | undefined;
    return body?.containerDefinitions?.find((c) => isLokiImage(c.image) && c.essential !== false);
  }

  /** The Loki process of a task, known from the first time it is seen running. */
  private processOf(task: TaskState): LokiProcess | undefined {
    const known = this.processes.get(task.arn);
    if (known) return known;
    if (task.lastStatus !== "RUNNING") return undefined;
    const def = this.lokiContainer(task);
    if (!def) return undefined;
    const body = this.deps.taskDefinition(task.taskDefinitionArn)?.body as { containerDefinitions?: ContainerDef[] } | undefined;
    const config = this.configOf(body?.containerDefinitions ?? []);
    const args = [...(def.entryPoint ?? []), ...(def.command ?? [])];
    const target = args.find((a) => a.startsWith("-target="))?.slice("-target=".length) ?? "all";
    const common = obj(config.common);
    const ring = obj(common.ring);
    const instanceId = String(ring.instance_id ?? obj(obj(config.ingester).lifecycler).id ?? task.id);
    const store = String(obj(ring.kvstore).store ?? "memberlist");
    const joins = (obj(config.memberlist).join_members as unknown[] | undefined)?.map(String).sort().join(",");
    const proc: LokiProcess = {
      taskArn: task.arn,
      instanceId,
      target,
      ring: store === "inmemory" || !joins ? `process:${task.arn}` : `${task.cluster}|${joins}`,
      heartbeatTimeout: durationSeconds(ring.heartbeat_timeout, 60),
      ingester: "Running",
      gone: false,
    };
    this.processes.set(task.arn, proc);
    return proc;
  }

  /** The task's Loki config: a secret or environment value of its containers that reads as one. */
  private configOf(containers: ContainerDef[]): Yaml {
    const values = containers.flatMap((c) => [...(c.secrets ?? []).map((s) => (s.valueFrom ? this.deps.secret(s.valueFrom) : undefined)), ...(c.environment ?? []).map((e) => e.value)]);
    for (const v of values) {
      if (!v || !/^\s*(#|[a-z_]+:)/m.test(v)) continue;
      try {
        const parsed = obj(parse(v));
        if ("server" in parsed || "common" in parsed || "ingester" in parsed) return parsed;
      } catch {
        // Not YAML: not the config.
      }
    }
    return {};
  }

  /** Brings the rings up to date with the tasks: heartbeats of live ingesters, members of stopped ones. */
  private sync(): void {
    const now = this.deps.now();
    const present = new Set<string>();
    for (const task of this.deps.tasks()) {
      present.add(task.arn);
      const proc = this.processOf(task);
      if (!proc || proc.gone || !INGESTER_TARGETS.has(proc.target)) continue;
      const ring = this.rings.get(proc.ring) ?? new Map<string, RingEntry>();
      this.rings.set(proc.ring, ring);
      const alive = task.lastStatus === "RUNNING" && task.desiredStatus === "RUNNING";
      if (!alive) {
        proc.gone = true;
        // SIGTERM: the lifecycler leaves the ring; a crash leaves its member behind.
        if (!this.crashed.has(task.arn) && ring.get(proc.instanceId)?.taskArn === task.arn) ring.delete(proc.instanceId);
        continue;
      }
      if (proc.ingester === "Stopping" && !this.faultOf(proc).flushHangs) this.flushed(task, proc);
      if (proc.ingester !== "Running") continue;
      const entry = ring.get(proc.instanceId);
      const state = this.faultOf(proc).notReady ? "JOINING" : "ACTIVE";
      if (!entry || entry.taskArn !== task.arn) {
        ring.set(proc.instanceId, { id: proc.instanceId, address: `${task.privateIp}:9095`, state, heartbeat: now, registered: now, taskArn: task.arn });
      } else {
        entry.state = state;
        entry.heartbeat = now;
      }
    }
    // ECS forgets stopped tasks after a while; so does the simulator (their ring members stay).
    for (const arn of [...this.processes.keys(), ...this.crashed]) {
      if (present.has(arn)) continue;
      this.processes.delete(arn);
      this.crashed.delete(arn);
    }
  }
}

/** The URL a health check command fetches: `loki -health` (default /ready, or -health.url), or a URL in a shell command. */
export function healthUrl(command: readonly string[]): URL | undefined {
  const [kind, ...rest] = command;
  const args = kind === "CMD" || kind === "CMD-SHELL" ? rest : [...command];
  if (kind === "CMD" && args.includes("-health")) {
    const i = args.findIndex((a) => a === "-health.url" || a.startsWith("-health.url="));
    const raw = i < 0 ? DEFAULT_READY_URL : args[i]!.includes("=") ? args[i]!.slice("-health.url=".length) : args[i + 1];
    return raw ? new URL(raw) : undefined;
  }
  const found = /https?:\/\/[^\s'"]+/.exec(args.join(" "))?.[0];
  return found ? new URL(found) : undefined;
}
