// Fault injection and rate limits. Every decision goes through one function, so
// the server applies them the same way to ECS, SSM and S3.
import { AwsError } from "./errors.ts";
import type { Random } from "./random.ts";

export type ServiceName = "ecs" | "ssm" | "s3" | "servicediscovery";

/** A fraction of calls (0..1) per action, `service.Action` or `service.*` or `*`. */
export type Rates = Record<string, number>;

export interface InjectedError {
  /** Which calls: `service.Action`, `service.*` or `*`. */
  match: string;
  rate: number;
  code: string;
  status: number;
  message?: string;
}

export interface FaultSettings {
  /** Answer ThrottlingException (S3: 503 SlowDown) to this fraction of calls. */
  throttle: Rates;
  /** Answer a 5xx to this fraction of calls. */
  serverError: Rates;
  /** Any other error by code, such as SSM TooManyUpdates. */
  errors: InjectedError[];
  /** Delay every answer by this many milliseconds. */
  latencyMs: number;
  /** Enforce ECS's documented per-account token buckets. */
  rateLimits: boolean;
  /**
   * Leave each item out of a list answer (ListTasks taskArns, …) with this
   * probability: "The Amazon ECS API follows an eventual consistency model"
   * (ECS API reference, RunTask), so a listing may miss what exists.
   */
  omit: Rates;
  /**
   * IAM actions the caller is not allowed (`s3:ListBucket`, `ecs:StopTask`, …):
   * their calls answer AccessDenied. Without `s3:ListBucket`, a read of a key
   * that does not exist answers 403 AccessDenied instead of 404 NoSuchKey
   * (S3 API reference, GetObject and HeadObject, "Permissions").
   */
  deny: string[];
}

export function defaultFaults(): FaultSettings {
  return { throttle: {}, serverError: {}, errors: [], latencyMs: 0, rateLimits: false, omit: {}, deny: [] };
}

/**
 * ECS API throttling buckets per account and region (burst, refill per second),
 * from "Request throttling for the Amazon ECS API"; see shared/reference/aws-api-facts.md §1.
 */
const ECS_BUCKETS: { name: string; burst: number; rate: number; actions: string[] }[] = [
  { name: "service-read", burst: 100, rate: 20, actions: ["DescribeServices", "ListServices"] },
  { name: "service-modify", burst: 50, rate: 5, actions: ["CreateService", "DeleteService", "UpdateService"] },
  { name: "cluster-resource-read", burst: 100, rate: 20, actions: ["DescribeTasks", "ListTasks"] },
  { name: "cluster-resource-modify", burst: 100, rate: 40, actions: ["RunTask", "StopTask"] },
  { name: "task-definition-read", burst: 50, rate: 20, actions: ["DescribeTaskDefinition", "ListTaskDefinitions"] },
  { name: "task-definition-modify", burst: 20, rate: 1, actions: ["RegisterTaskDefinition", "DeregisterTaskDefinition"] },
  { name: "tag-modify", burst: 20, rate: 10, actions: ["TagResource", "UntagResource"] },
  { name: "tag-read", burst: 50, rate: 20, actions: ["ListTagsForResource"] },
  { name: "cluster-read", burst: 50, rate: 20, actions: ["DescribeClusters", "ListClusters"] },
  { name: "cluster-modify", burst: 20, rate: 1, actions: ["CreateCluster"] },
];

class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly burst: number,
    private readonly rate: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }
  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

function rateFor(rates: Rates, service: ServiceName, action: string): number {
  return rates[`${service}.${action}`] ?? rates[`${service}.*`] ?? rates["*"] ?? 0;
}

function matches(pattern: string, service: ServiceName, action: string): boolean {
  return pattern === "*" || pattern === `${service}.*` || pattern === `${service}.${action}`;
}

export class Faults {
  settings: FaultSettings = defaultFaults();
  private readonly buckets = new Map<string, TokenBucket>();

  constructor(
    private readonly random: Random,
    private readonly now: () => number = () => performance.now(),
  ) {}

  update(patch: Partial<FaultSettings>): void {
    this.settings = { ...this.settings, ...patch };
  }

  reset(): void {
    this.settings = defaultFaults();
    this.buckets.clear();
  }

  /** A list answer with items left out, as an eventually consistent listing may. */
  thin<T>(service: ServiceName, action: string, items: T[]): T[] {
    const rate = rateFor(this.settings.omit, service, action);
    return rate > 0 ? items.filter(() => this.random() >= rate) : items;
  }

  /** The error to answer this call with, if a fault or a rate limit applies. */
  check(service: ServiceName, action: string): AwsError | undefined {
    const s = this.settings;
    if (s.deny.includes(`${service}:${action}`)) return accessDenied(service, action);
    if (this.random() < rateFor(s.throttle, service, action)) return throttling(service);
    if (this.random() < rateFor(s.serverError, service, action)) return serverError(service);
    for (const e of s.errors) {
      if (matches(e.match, service, action) && this.random() < e.rate) {
        return new AwsError(e.code, e.message ?? `injected ${e.code}`, e.status);
      }
    }
    if (s.rateLimits && service === "ecs") {
      const spec = ECS_BUCKETS.find((b) => b.actions.includes(action));
      if (spec) {
        let bucket = this.buckets.get(spec.name);
        if (!bucket) this.buckets.set(spec.name, (bucket = new TokenBucket(spec.burst, spec.rate, this.now)));
        if (!bucket.take()) return throttling(service);
      }
    }
    return undefined;
  }
}

/** The answer to a call the caller's policy does not allow. */
export function accessDenied(service: ServiceName, action: string): AwsError {
  if (service === "s3") return new AwsError("AccessDenied", "Access Denied", 403);
  return new AwsError("AccessDeniedException", `User: arn:aws:sts::123456789012:assumed-role/local/operator is not authorized to perform: ${service}:${action} because no identity-based policy allows the ${service}:${action} action`, 400);
}

function throttling(service: ServiceName): AwsError {
  if (service === "s3") return new AwsError("SlowDown", "Please reduce your request rate.", 503);
  return new AwsError("ThrottlingException", "Rate exceeded", 400);
}

function serverError(service: ServiceName): AwsError {
  if (service === "s3") return new AwsError("InternalError", "We encountered an internal error. Please try again.", 500);
  if (service === "ssm") return new AwsError("InternalServerError", "An error occurred on the server side.", 500);
  if (service === "servicediscovery") return new AwsError("InternalFailure", "The request processing has failed because of an unknown error.", 500);
  return new AwsError("ServerException", "Service encountered an internal error.", 500);
}
