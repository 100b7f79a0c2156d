// Cloud Map (AWS Cloud Map / servicediscovery): the namespaces and services
// that give every ECS service of a stack a DNS name (`<service>.<namespace>`)
// through which Loki's components find each other. ECS registers task IPs in
// the services it is given as serviceRegistries.
import { AwsError } from "./errors.ts";
import { pageOf } from "./paging.ts";
import { hexId, type Random } from "./random.ts";

export interface NamespaceState {
  id: string;
  arn: string;
  name: string;
  type: "DNS_PRIVATE" | "DNS_PUBLIC" | "HTTP";
  createdAt: number;
  tags: { Key: string; Value: string }[];
}

export interface DiscoveryServiceState {
  id: string;
  arn: string;
  name: string;
  namespaceId: string;
  dnsConfig?: unknown;
  healthCheckCustomConfig?: unknown;
  createdAt: number;
  tags: { Key: string; Value: string }[];
}

export interface DiscoveryState {
  namespaces: Record<string, NamespaceState>;
  services: Record<string, DiscoveryServiceState>;
}

type Input = Record<string, unknown>;
type Filter = { Name?: string; Values?: string[]; Condition?: string };

const invalid = (message: string) => new AwsError("InvalidInput", message);

function page<T>(items: T[], input: Input): { items: T[]; NextToken?: string } {
  const { items: slice, next } = pageOf(items, input.MaxResults, input.NextToken, 100, invalid);
  return { items: slice, ...(next ? { NextToken: next } : {}) };
}

function matches(filters: Filter[] | undefined, values: Record<string, string>): boolean {
  return (filters ?? []).every((f) => {
    const v = values[f.Name ?? ""];
    if (v === undefined) return true;
    const wanted = f.Values ?? [];
    if (f.Condition === "BEGINS_WITH") return wanted.some((w) => v.startsWith(w));
    return wanted.includes(v);
  });
}

export class DiscoveryService {
  constructor(
    readonly state: DiscoveryState,
    private readonly region: string,
    private readonly account: string,
    private readonly random: Random,
    private readonly now: () => number,
    /** Running task count per registry ARN, from the ECS side. */
    private readonly instanceCount: (registryArn: string) => number = () => 0,
  ) {}

  handle(action: string, input: Input): unknown {
    switch (action) {
      case "CreatePrivateDnsNamespace":
      case "CreatePublicDnsNamespace":
      case "CreateHttpNamespace":
        return this.createNamespace(action, input);
      case "ListNamespaces": {
        const all = Object.values(this.state.namespaces).filter((n) => matches(input.Filters as Filter[] | undefined, { NAME: n.name, TYPE: n.type }));
        const { items, NextToken } = page(all, input);
        return { Namespaces: items.map((n) => this.describeNamespace(n)), ...(NextToken ? { NextToken } : {}) };
      }
      case "GetNamespace":
        return { Namespace: this.describeNamespace(this.namespace(String(input.Id ?? ""))) };
      case "CreateService":
        return { Service: this.describeService(this.createService(input)) };
      case "GetService": {
        const s = this.state.services[String(input.Id ?? "")];
        if (!s) throw new AwsError("ServiceNotFound", `Service not found: ${String(input.Id)}`);
        return { Service: this.describeService(s) };
      }
      case "ListServices": {
        const all = Object.values(this.state.services).filter((s) => matches(input.Filters as Filter[] | undefined, { NAMESPACE_ID: s.namespaceId }));
        const { items, NextToken } = page(all, input);
        return { Services: items.map((s) => this.describeService(s)), ...(NextToken ? { NextToken } : {}) };
      }
      case "DeleteService": {
        const s = this.state.services[String(input.Id ?? "")];
        if (!s) throw new AwsError("ServiceNotFound", `Service not found: ${String(input.Id)}`);
        if (this.instanceCount(s.arn) > 0) throw new AwsError("ResourceInUse", "The service has registered instances; deregister them first.");
        delete this.state.services[s.id];
        return {};
      }
      case "ListTagsForResource": {
        const arn = String(input.ResourceARN ?? "");
        const found = [...Object.values(this.state.services), ...Object.values(this.state.namespaces)].find((r) => r.arn === arn);
        if (!found) throw new AwsError("ResourceNotFoundException", `Resource not found: ${arn}`);
        return { Tags: found.tags };
      }
      default:
        throw new AwsError("UnknownOperationException", `Unknown operation ${action}.`);
    }
  }

  private namespace(id: string): NamespaceState {
    const n = this.state.namespaces[id];
    if (!n) throw new AwsError("NamespaceNotFound", `Namespace not found: ${id}`);
    return n;
  }

  private createNamespace(action: string, input: Input) {
    const name = String(input.Name ?? "");
    if (!/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/.test(name)) throw invalid("Name must be a valid DNS name.");
    if (action === "CreatePrivateDnsNamespace" && typeof input.Vpc !== "string") throw invalid("Vpc is required for a private DNS namespace.");
    if (Object.values(this.state.namespaces).some((n) => n.name === name)) throw new AwsError("NamespaceAlreadyExists", `Namespace ${name} already exists.`);
    const id = `ns-${hexId(this.random, 16)}`;
    const type = action === "CreatePrivateDnsNamespace" ? "DNS_PRIVATE" : action === "CreatePublicDnsNamespace" ? "DNS_PUBLIC" : "HTTP";
    this.state.namespaces[id] = {
      id,
      arn: `arn:aws:servicediscovery:${this.region}:${this.account}:namespace/${id}`,
      name,
      type,
      createdAt: this.now(),
      tags: (input.Tags as NamespaceState["tags"] | undefined) ?? [],
    };
    // Namespace creation is asynchronous in AWS; here the operation is done at once.
    return { OperationId: hexId(this.random, 32) };
  }

  private createService(input: Input): DiscoveryServiceState {
    const name = String(input.Name ?? "");
    if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,126}$/.test(name)) throw invalid("Name must be 1-127 letters, digits, '_', '.' or '-'.");
    const namespaceId = String(input.NamespaceId ?? (input.DnsConfig as { NamespaceId?: string } | undefined)?.NamespaceId ?? "");
    const ns = this.namespace(namespaceId);
    const existing = Object.values(this.state.services).find((s) => s.namespaceId === ns.id && s.name === name);
    if (existing) throw new AwsError("ServiceAlreadyExists", `Service ${name} already exists in ${ns.name}.`);
    const tags = (input.Tags as DiscoveryServiceState["tags"] | undefined) ?? [];
    if (tags.length > 50) throw new AwsError("TooManyTagsException", "A resource can have at most 50 tags.");
    const id = `srv-${hexId(this.random, 16)}`;
    const s: DiscoveryServiceState = {
      id,
      arn: `arn:aws:servicediscovery:${this.region}:${this.account}:service/${id}`,
      name,
      namespaceId: ns.id,
      ...(input.DnsConfig ? { dnsConfig: input.DnsConfig } : {}),
      ...(input.HealthCheckCustomConfig ? { healthCheckCustomConfig: input.HealthCheckCustomConfig } : {}),
      createdAt: this.now(),
      tags,
    };
    this.state.services[id] = s;
    return s;
  }

  private describeNamespace(n: NamespaceState) {
    return { Id: n.id, Arn: n.arn, Name: n.name, Type: n.type, CreateDate: n.createdAt, Properties: { DnsProperties: { HostedZoneId: `Z${n.id.slice(3, 17).toUpperCase()}` } } };
  }

  private describeService(s: DiscoveryServiceState) {
    return {
      Id: s.id,
      Arn: s.arn,
      Name: s.name,
      NamespaceId: s.namespaceId,
      Type: "DNS_HTTP",
      ...(s.dnsConfig ? { DnsConfig: s.dnsConfig } : {}),
      ...(s.healthCheckCustomConfig ? { HealthCheckCustomConfig: s.healthCheckCustomConfig } : {}),
      InstanceCount: this.instanceCount(s.arn),
      CreateDate: s.createdAt,
    };
  }

  /** Whether a registry ARN names an existing Cloud Map service (ECS checks this on CreateService). */
  exists(arn: string): boolean {
    return Object.values(this.state.services).some((s) => s.arn === arn);
  }
}
