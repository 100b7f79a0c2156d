// The embedded control plane: one HTTP server on loopback that speaks ECS and
// SSM (awsJson1_1) and an S3 REST subset, so the real SDK clients, and any AWS
// client pointed at AWS_ENDPOINT_URL, work against it unchanged. An admin API
// under /_local/ exposes call accounting, fault injection and chaos.
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { EcsService } from "./ecs/ecs.ts";
import { emptyEcsState, type EcsState, type TaskState } from "./ecs/model.ts";
import { DEFAULT_TIMING, Scheduler, SimulatedLifecycle, type SchedulerTiming } from "./ecs/scheduler.ts";
import { authorizationRequests, type AuthorizationRequest, type AuthorizedCall } from "./authorization.ts";
import { AwsError } from "./errors.ts";
import { accessDenied, Faults, type FaultSettings, type ServiceName } from "./faults.ts";
import { LokiSim } from "./loki.ts";
import { seededRandom } from "./random.ts";
import { s3Action, s3ErrorXml, S3Service, type S3State } from "./s3.ts";
import { DiscoveryService, type DiscoveryState } from "./servicediscovery.ts";
import { SsmService, type SsmState } from "./ssm.ts";
import type { DnsAnswer } from "./tasks/dns.ts";
import { RealTaskRunner, type RealTasksOptions } from "./tasks/runner.ts";

export interface LocalControlPlaneOptions {
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  region?: string;
  account?: string;
  /** Milliseconds between scheduler ticks (a few in tests, about a second in the demo). */
  tickMs?: number;
  timing?: Partial<SchedulerTiming>;
  /** Start with the scheduler paused; tests then drive it with step(). */
  paused?: boolean;
  /** Seed for ids and fault decisions, so a run can be replayed. */
  seed?: number;
  /** Load state from this JSON file if it exists, and save it there on stop and on POST /_local/save. */
  statePath?: string;
  /** Record what IAM would be asked for each call (authorizations()); off by default, as the log grows with every call. */
  recordAuthorizations?: boolean;
  /**
   * How tasks run: `simulated` (the default) walks them through their lifecycle by ticks;
   * `real` runs each one as processes with Fargate's semantics (src/local/tasks), and
   * start() fails with RealTasksUnavailable when the machine cannot.
   */
  tasks?: "simulated" | "real";
  realTasks?: RealTasksOptions;
  /**
   * The control plane's clock, epoch seconds (default: the wall clock). Tests move it
   * forward to pass ECS's long timers, such as a health check's 300 s start period.
   */
  now?: () => number;
}

export interface PersistedState {
  ecs: EcsState;
  ssm: SsmState;
  s3: S3State;
  discovery?: DiscoveryState;
}

/** A call that changed (or tried to change) something, in order: what tests check invariants against. */
export interface WriteRecord {
  service: ServiceName;
  action: string;
  /** The resource named in the request: service, task, resource ARN, family or parameter name. */
  target: string;
  cluster?: string;
  ok: boolean;
}

const WRITE_ACTIONS = new Set([
  "CreateCluster",
  "RegisterTaskDefinition",
  "DeregisterTaskDefinition",
  "CreateService",
  "UpdateService",
  "DeleteService",
  "RunTask",
  "StopTask",
  "TagResource",
  "UntagResource",
  "PutParameter",
  "DeleteParameter",
  "DeleteParameters",
  "LabelParameterVersion",
  "CreatePrivateDnsNamespace",
  "CreateService",
]);

export interface CallCounts {
  /** Every request by `service.Action`, faulted and throttled ones included (SDK retries are calls). */
  calls: Record<string, number>;
  /** Requests answered with an error, by `service.Action` and error code. */
  errors: Record<string, number>;
  total: number;
}

/**
 * The credential scope a request was signed with, `<access key>/<region>/<service>`
 * (the date dropped): from the SigV4 `Authorization` header,
 * `AWS4-HMAC-SHA256 Credential=<key>/<yyyymmdd>/<region>/<service>/aws4_request, …`,
 * or a presigned URL's `X-Amz-Credential`. "unsigned" when neither is there.
 */
function signingScope(req: IncomingMessage, url: URL): string {
  const header = req.headers.authorization;
  const credential = (typeof header === "string" ? /Credential=([^,\s]+)/.exec(header)?.[1] : undefined) ?? url.searchParams.get("X-Amz-Credential") ?? undefined;
  const parts = credential?.split("/");
  if (!parts || parts.length !== 5 || parts[4] !== "aws4_request") return "unsigned";
  return `${parts[0]}/${parts[2]}/${parts[3]}`;
}

const STOP_REASONS: Record<string, string> = {
  SpotInterruption: "Your Spot Task was interrupted.",
  EssentialContainerExited: "Essential container in task exited",
  TerminationNotice: "Task stopped due to a termination notice.",
  InfrastructureHealth: "Task stopped because the underlying infrastructure was unhealthy.",
  TaskFailedToStart: "CannotPullContainerError: pull image manifest has been retried 5 time(s)",
  UserInitiated: "Task stopped by user",
};

const TARGETS: Record<string, ServiceName> = {
  AmazonEC2ContainerServiceV20141113: "ecs",
  AmazonSSM: "ssm",
  Route53AutoNaming_v20170314: "servicediscovery",
};

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** epoch seconds, as the AWS JSON protocols send timestamps. */
const wallClockSeconds = () => Date.now() / 1000;

export class LocalControlPlane {
  readonly region: string;
  readonly account: string;
  readonly ecs: EcsService;
  readonly ssm: SsmService;
  readonly s3: S3Service;
  readonly discovery: DiscoveryService;
  readonly faults: Faults;
  readonly scheduler: Scheduler;
  /** Loki's HTTP API of simulated tasks, reached through this endpoint as an HTTP proxy. */
  readonly loki: LokiSim;
  private server?: Server;
  /** The same endpoint on the task network's gateway, for real tasks. */
  private taskServer?: Server;
  /** Set when tasks are real processes. */
  runner?: RealTaskRunner;
  /** Present when tasks are to be real processes. */
  private readonly realTasks?: RealTasksOptions;
  private timer?: NodeJS.Timeout;
  private paused: boolean;
  private counts: CallCounts = { calls: {}, errors: {}, total: 0 };
  private writeLog: WriteRecord[] = [];
  private scopeCounts: Record<string, number> = {};
  private authorizationLog?: AuthorizedCall[];
  private readonly tickMs: number;
  private readonly statePath?: string;

  constructor(options: LocalControlPlaneOptions = {}) {
    this.region = options.region ?? "us-east-1";
    this.account = options.account ?? "123456789012";
    this.tickMs = options.tickMs ?? 1000;
    this.paused = options.paused ?? false;
    this.statePath = options.statePath;
    if (options.tasks === "real") this.realTasks = options.realTasks ?? {};
    if (options.recordAuthorizations) this.authorizationLog = [];
    const random = seededRandom(options.seed ?? Date.now());
    const nowSeconds = options.now ?? wallClockSeconds;
    const loaded = this.statePath && existsSync(this.statePath) ? (JSON.parse(readFileSync(this.statePath, "utf8")) as PersistedState) : undefined;
    const discoveryState = loaded?.discovery ?? { namespaces: {}, services: {} };
    this.ecs = new EcsService(loaded?.ecs ?? emptyEcsState(), {
      region: this.region,
      account: this.account,
      random,
      now: nowSeconds,
      registryExists: (arn) => Object.values(discoveryState.services).some((s) => s.arn === arn),
    });
    this.discovery = new DiscoveryService(discoveryState, this.region, this.account, random, nowSeconds, (arn) => this.ecs.instancesOf(arn).length);
    this.ssm = new SsmService(loaded?.ssm ?? { parameters: {} }, this.region, this.account, nowSeconds);
    this.s3 = new S3Service(loaded?.s3 ?? { buckets: {} }, nowSeconds);
    this.faults = new Faults(random);
    const timing = { ...DEFAULT_TIMING, ...options.timing };
    this.scheduler = new Scheduler(this.ecs, timing, nowSeconds);
    this.loki = new LokiSim({
      now: nowSeconds,
      tasks: () => Object.values(this.ecs.state.tasks),
      taskDefinition: (arn) => this.ecs.taskDefinition(arn),
      secret: (valueFrom) => this.secretValue(valueFrom),
    });
    this.scheduler.lifecycle = new SimulatedLifecycle(timing, (task, command) => this.loki.healthCheck(task, command));
  }

  private createServer(): Server {
    const server = createServer((req, res) => {
      this.route(req, res).catch((e: unknown) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e));
      });
    });
    server.keepAliveTimeout = 5000;
    return server;
  }

  /** Starts listening on 127.0.0.1 (and, with real tasks, on the task network) and ticking; resolves to the endpoint URL. */
  async start(port = 0): Promise<string> {
    this.server = this.createServer();
    await listen(this.server, port, "127.0.0.1");
    if (this.realTasks) {
      try {
        this.runner = await RealTaskRunner.create(
          {
            region: this.region,
            secret: (valueFrom) => this.secretValue(valueFrom),
            dns: (name) => this.dnsAnswer(name),
            listenOn: async (address) => {
              this.taskServer = this.createServer();
              // The same port as on loopback when it is free there, so one URL shape serves both.
              await listen(this.taskServer, this.port, address).catch(() => listen(this.taskServer!, 0, address));
              return `http://${address}:${(this.taskServer.address() as AddressInfo).port}`;
            },
            stopTask: (task, stopCode, reason) => this.ecs.stopTask(task, stopCode, reason),
          },
          this.realTasks,
        );
      } catch (e) {
        await this.stop();
        throw e;
      }
      const runner = this.runner;
      this.scheduler.lifecycle = runner;
      this.ecs.allocateAddress = () => runner.allocateAddress();
    }
    this.timer = setInterval(() => {
      if (!this.paused) this.tick();
    }, this.tickMs);
    return this.endpoint;
  }

  get port(): number {
    return (this.server?.address() as AddressInfo | null)?.port ?? 0;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Region, endpoint and dummy credentials for SDK clients (S3 also needs forcePathStyle). */
  get clientConfig() {
    return {
      region: this.region,
      endpoint: this.endpoint,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    };
  }

  /** The endpoint as real tasks reach it (S3 for Loki), on the task network's gateway. */
  get taskEndpoint(): string {
    if (!this.runner) throw new Error("the task endpoint exists only with real tasks (tasks: 'real')");
    return this.runner.taskEndpoint;
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.save();
    try {
      await this.runner?.close();
    } finally {
      this.runner = undefined;
      await this.closeServers();
    }
  }

  private async closeServers(): Promise<void> {
    for (const server of [this.taskServer, this.server]) {
      if (!server) continue;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    }
    this.server = undefined;
    this.taskServer = undefined;
  }

  /** What the ECS agent reads for a container's `secrets`: the parameter's value, by name or ARN. */
  private secretValue(valueFrom: string): string | undefined {
    // An ARN names `/a/b` as `…:parameter/a/b` and `name` as `…:parameter/name`: try both readings.
    const path = valueFrom.replace(/^arn:[^:]+:ssm:[^:]*:[^:]*:parameter/, "");
    for (const name of path === valueFrom ? [path] : [path, path.slice(1)]) {
      const out = this.ssm.handle("GetParameters", { Names: [name], WithDecryption: true }) as { Parameters: { Value: string }[] };
      if (out.Parameters[0]) return out.Parameters[0].Value;
    }
    return undefined;
  }

  /** The VPC resolver's view of Cloud Map: `<service>.<namespace>` → the IPs of the tasks registered in it. */
  private dnsAnswer(name: string): DnsAnswer {
    const namespace = Object.values(this.discovery.state.namespaces).find((n) => n.type !== "HTTP" && (name === n.name || name.endsWith(`.${n.name}`)));
    if (!namespace) return { inZone: false };
    const service = Object.values(this.discovery.state.services).find((s) => s.namespaceId === namespace.id && `${s.name}.${namespace.name}` === name);
    if (!service) return { inZone: true, exists: name === namespace.name, addresses: [], ttl: 60 };
    const ttl = (service.dnsConfig as { DnsRecords?: { TTL?: number }[] } | undefined)?.DnsRecords?.[0]?.TTL ?? 60;
    return { inZone: true, exists: true, addresses: this.ecs.instancesOf(service.arn).map((t) => t.privateIp), ttl };
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** Runs the scheduler `ticks` times now, paused or not. */
  step(ticks = 1): void {
    for (let i = 0; i < ticks; i++) this.tick();
  }

  /** One scheduler tick, after the simulated Loki processes that exit have ended their tasks. */
  private tick(): void {
    for (const arn of this.loki.exits()) this.kill(arn, "EssentialContainerExited");
    this.scheduler.tick();
  }

  /** Stops a task the way the infrastructure would, with a realistic stopCode. */
  kill(taskArn: string, stopCode = "SpotInterruption", reason?: string): TaskState {
    const task = this.ecs.state.tasks[taskArn];
    if (!task) throw new Error(`no task ${taskArn}`);
    this.ecs.stopTask(task, stopCode, reason ?? STOP_REASONS[stopCode] ?? `Task stopped (${stopCode})`);
    return task;
  }

  calls(): CallCounts {
    return structuredClone(this.counts);
  }

  resetCalls(): void {
    this.counts = { calls: {}, errors: {}, total: 0 };
    this.writeLog = [];
    this.scopeCounts = {};
    if (this.authorizationLog) this.authorizationLog = [];
  }

  /** Every call since the last reset with what IAM would be asked for it (only with `recordAuthorizations`). */
  authorizations(): AuthorizedCall[] {
    if (!this.authorizationLog) throw new Error("start the control plane with recordAuthorizations to record authorizations");
    return [...this.authorizationLog];
  }

  /** What IAM would be asked for a call, from the state before it runs; undefined when not recording. */
  private authorizing(service: ServiceName, operation: string, input: Parameters<typeof authorizationRequests>[3]): AuthorizationRequest[] | undefined {
    if (!this.authorizationLog) return undefined;
    const world = { region: this.region, account: this.account, ecs: this.ecs, ssm: this.ssm, discovery: this.discovery, s3: this.s3 };
    return authorizationRequests(world, service, operation, input);
  }

  private recordAuthorization(principal: string, service: ServiceName, operation: string, requests: AuthorizationRequest[] | undefined, ok: boolean): void {
    if (requests) this.authorizationLog?.push({ principal, service, operation, requests, ok });
  }

  /**
   * Requests (admin routes aside) since the last reset by the credential scope they were
   * signed with, `<access key>/<region>/<service>`: which region and identity a client really used.
   */
  signingScopes(): Record<string, number> {
    return { ...this.scopeCounts };
  }

  /** Every ECS and SSM write request since the last reset, in order. */
  writes(): WriteRecord[] {
    return [...this.writeLog];
  }

  private recordWrite(service: ServiceName, action: string, input: Record<string, unknown>, ok: boolean): void {
    if (!WRITE_ACTIONS.has(action)) return;
    const target = [input.service, input.serviceName, input.task, input.resourceArn, input.family, input.taskDefinition, input.Name, input.Id, input.clusterName].find((v) => typeof v === "string") as string | undefined;
    this.writeLog.push({ service, action, target: target ?? "", ...(typeof input.cluster === "string" ? { cluster: input.cluster } : {}), ok });
  }

  snapshot(): PersistedState {
    return { ecs: this.ecs.state, ssm: this.ssm.state, s3: this.s3.state, discovery: this.discovery.state };
  }

  save(): void {
    if (!this.statePath) return;
    const tmp = `${this.statePath}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.snapshot()));
    renameSync(tmp, this.statePath);
  }

  // ---- HTTP ----

  private count(service: ServiceName, action: string, error?: string): void {
    const key = `${service}.${action}`;
    this.counts.calls[key] = (this.counts.calls[key] ?? 0) + 1;
    this.counts.total += 1;
    if (error) this.counts.errors[`${key}:${error}`] = (this.counts.errors[`${key}:${error}`] ?? 0) + 1;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    // An absolute URL is a proxy request for a task's own address: Loki's API of a simulated task.
    // Real tasks are reached directly; with nothing listening the connection drops, as on a network.
    if (req.url?.startsWith("http://")) {
      if (this.runner || !(await this.loki.handle(req, res, new URL(req.url), body))) req.socket.destroy();
      return;
    }
    const url = new URL(req.url ?? "/", "http://local");
    if (url.pathname.startsWith("/_local/")) return this.admin(req.method ?? "GET", url, body, res);
    const scope = signingScope(req, url);
    this.scopeCounts[scope] = (this.scopeCounts[scope] ?? 0) + 1;
    const principal = scope.split("/")[0]!;
    const target = req.headers["x-amz-target"];
    if (req.method === "POST" && url.pathname === "/" && typeof target === "string") return this.json(target, body, res, principal);
    return this.s3Request(req, url, body, res, principal);
  }

  private async json(target: string, body: Buffer, res: ServerResponse, principal: string): Promise<void> {
    const requestId = randomUUID();
    const [prefix, action = ""] = target.split(".");
    const service = TARGETS[prefix ?? ""];
    const send = (status: number, payload: unknown, errorType?: string) => {
      res.writeHead(status, {
        "content-type": "application/x-amz-json-1.1",
        "x-amzn-requestid": requestId,
        ...(errorType ? { "x-amzn-errortype": errorType } : {}),
      });
      res.end(JSON.stringify(payload));
    };
    if (!service) return send(400, { __type: "UnknownOperationException", message: `Unknown target ${target}` }, "UnknownOperationException");
    if (this.faults.settings.latencyMs > 0) await sleep(this.faults.settings.latencyMs);
    let input: Record<string, unknown> = {};
    let requests: AuthorizationRequest[] | undefined;
    try {
      try {
        input = body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as Record<string, unknown>);
      } catch {
        throw new AwsError("SerializationException", "Request body is not valid JSON.");
      }
      const fault = this.faults.check(service, action);
      if (fault) throw fault;
      requests = this.authorizing(service, action, input);
      const result = service === "ecs" ? this.ecs.handle(action, input) : service === "ssm" ? this.ssm.handle(action, input) : this.discovery.handle(action, input);
      if (action === "ListTasks") {
        const r = result as { taskArns: string[] };
        r.taskArns = this.faults.thin(service, action, r.taskArns);
      }
      this.count(service, action);
      this.recordWrite(service, action, input, true);
      this.recordAuthorization(principal, service, action, requests, true);
      send(200, result);
    } catch (e) {
      const err = e instanceof AwsError ? e : new AwsError(service === "ecs" ? "ServerException" : service === "ssm" ? "InternalServerError" : "InternalFailure", String(e), 500);
      this.count(service, action, err.code);
      this.recordWrite(service, action, input, false);
      this.recordAuthorization(principal, service, action, requests, false);
      send(err.status, { __type: err.code, message: err.message }, err.code);
    }
  }

  private async s3Request(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse, principal: string): Promise<void> {
    const requestId = randomUUID().replace(/-/g, "").slice(0, 16).toUpperCase();
    const [bucket = "", ...rest] = url.pathname.slice(1).split("/");
    const request = {
      method: req.method ?? "GET",
      bucket: decodeURIComponent(bucket),
      key: rest.map(decodeURIComponent).join("/"),
      query: url.searchParams,
      headers: req.headers,
      body,
    };
    const action = s3Action(request);
    if (this.faults.settings.latencyMs > 0) await sleep(this.faults.settings.latencyMs);
    let requests: AuthorizationRequest[] | undefined;
    try {
      const fault = this.faults.check("s3", action);
      if (fault) throw fault;
      requests = this.authorizing("s3", action, request);
      let out: ReturnType<typeof this.s3.handle>;
      try {
        out = this.s3.handle(request);
      } catch (e) {
        // Without s3:ListBucket, S3 does not say whether a key exists: 403, not 404.
        if (e instanceof AwsError && e.code === "NoSuchKey" && this.faults.settings.deny.includes("s3:ListBucket")) throw accessDenied("s3", action);
        throw e;
      }
      this.count("s3", action);
      this.recordAuthorization(principal, "s3", action, requests, true);
      res.writeHead(out.status, { "x-amz-request-id": requestId, ...out.headers });
      res.end(request.method === "HEAD" ? undefined : out.body);
    } catch (e) {
      const err = e instanceof AwsError ? e : new AwsError("InternalError", String(e), 500);
      this.count("s3", action, err.code);
      this.recordAuthorization(principal, "s3", action, requests, false);
      res.writeHead(err.status, { "content-type": "application/xml", "x-amz-request-id": requestId });
      // HEAD answers carry no body; the SDK names the error from the status.
      res.end(request.method === "HEAD" ? undefined : s3ErrorXml(err, requestId));
    }
  }

  private admin(method: string, url: URL, body: Buffer, res: ServerResponse): void {
    const reply = (status: number, payload: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(payload, null, 2));
    };
    let input: Record<string, unknown> = {};
    try {
      if (body.length > 0) input = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
    } catch {
      return reply(400, { error: "body must be JSON" });
    }
    const route = `${method} ${url.pathname}`;
    try {
      switch (route) {
        case "GET /_local/health":
          return reply(200, { ok: true, endpoint: this.endpoint, region: this.region, paused: this.paused });
        case "GET /_local/calls":
          return reply(200, this.calls());
        case "GET /_local/signing-scopes":
          return reply(200, this.signingScopes());
        case "POST /_local/calls/reset":
          this.resetCalls();
          return reply(200, this.calls());
        case "GET /_local/faults":
          return reply(200, this.faults.settings);
        case "POST /_local/faults":
          this.faults.update(input as Partial<FaultSettings>);
          return reply(200, this.faults.settings);
        case "DELETE /_local/faults":
          this.faults.reset();
          return reply(200, this.faults.settings);
        case "POST /_local/kill": {
          const arn = String(input.taskArn ?? "");
          const task = this.kill(arn, typeof input.stopCode === "string" ? input.stopCode : undefined, typeof input.reason === "string" ? input.reason : undefined);
          return reply(200, { taskArn: task.arn, stopCode: task.stopCode, stoppedReason: task.stoppedReason });
        }
        case "POST /_local/scheduler":
          if (input.paused === true) this.pause();
          if (input.paused === false) this.resume();
          if (typeof input.ticks === "number") this.step(input.ticks);
          return reply(200, { paused: this.paused });
        case "GET /_local/state":
          return reply(200, this.snapshot());
        case "POST /_local/save":
          this.save();
          return reply(200, { saved: this.statePath ?? null });
        default:
          return reply(404, { error: `no admin route ${route}` });
      }
    } catch (e) {
      return reply(400, { error: String(e instanceof Error ? e.message : e) });
    }
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

export async function startLocalControlPlane(options: LocalControlPlaneOptions = {}): Promise<LocalControlPlane> {
  const cp = new LocalControlPlane(options);
  await cp.start(options.port ?? 0);
  return cp;
}
