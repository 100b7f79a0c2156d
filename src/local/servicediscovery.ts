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
type Filter = { Name?: unknown; Values?: unknown; Condition?: unknown };

const invalid = (message: string) => new AwsError("InvalidInput", message);

/**
 * The filter names and conditions AWS documents (Cloud Map API reference, API_ServiceFilter.html and
 * API_NamespaceFilter.html; botocore servicediscovery/2017-03-14 service-2.json): ListServices takes
 * NAMESPACE_ID (one namespace ID or ARN) and RESOURCE_OWNER (SELF | OTHER_ACCOUNTS), EQ only, one value.
 * IN ("a list of the IDs for the namespaces") was documented until the 2021 model and is gone since
 * the 2022-10 model, so it is refused here like any other unsupported condition. ListNamespaces takes
 * TYPE, NAME, HTTP_NAME with EQ or BEGINS_WITH and RESOURCE_OWNER with EQ, one value each. The wording
 * of the InvalidInput answers is not documented.
 */
const SERVICE_FILTERS: Record<string, string[]> = { NAMESPACE_ID: ["EQ"], RESOURCE_OWNER: ["EQ"] };
const NAMESPACE_FILTERS: Record<string, string[]> = { TYPE: ["EQ", "BEGINS_WITH"], NAME: ["EQ", "BEGINS_WITH"], HTTP_NAME: ["EQ", "BEGINS_WITH"], RESOURCE_OWNER: ["EQ"] };

function checkFilters(filters: unknown, allowed: Record<string, string[]>): { name: string; condition: string; value: string }[] {
  if (filters === undefined || filters === null) return [];
  if (!Array.isArray(filters)) throw invalid("Filters must be a list.");
  return (filters as Filter[]).map((f) => {
    const name = String(f.Name ?? "");
    const conditions = allowed[name];
    if (!conditions) throw invalid(`The filter name ${name} is not valid. Valid names: ${Object.keys(allowed).join(", ")}.`);
    const condition = String(f.Condition ?? "EQ");
    if (!conditions.includes(condition)) throw invalid(`The condition ${condition} is not supported for the filter ${name}. Supported: ${conditions.join(", ")}.`);
    const values = f.Values;
    if (!Array.isArray(values) || values.length !== 1) throw invalid(`The filter ${name} with condition ${condition} takes exactly one value.`);
    const value = values[0] as unknown;
    if (typeof value !== "string" || value.length < 1 || value.length > 255) throw invalid("A filter value must be 1-255 characters long.");
    return { name, condition, value };
  });
}

/** Whether an item passes every filter; `fields` gives each filter name's candidate values. */
function passes(filters: ReturnType<typeof checkFilters>, fields: Record<string, string[]>): boolean {
  return filters.every((f) => (fields[f.name] ?? []).some((v) => (f.condition === "BEGINS_WITH" ? v.startsWith(f.value) : v === f.value)));
}

/**
 * MaxResults 1-100, default 100. "Cloud Map gets MaxResults services and then filters them based on
 * the specified criteria" (ListServicesRequest.NextToken; the same for ListNamespaces): a page is a
 * window of all items, filtered, so it can be short or empty and still carry a NextToken.
 */
function page<T>(all: T[], input: Input, keep: (t: T) => boolean): { items: T[]; NextToken?: string } {
  const { items, next } = pageOf(all, input.MaxResults, input.NextToken, 100, invalid);
  return { items: items.filter(keep), ...(next ? { NextToken: next } : {}) };
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
        const filters = checkFilters(input.Filters, NAMESPACE_FILTERS);
        const { items, NextToken } = page(Object.values(this.state.namespaces), input, (n) =>
          passes(filters, { NAME: [n.name], TYPE: [n.type], HTTP_NAME: [n.name], RESOURCE_OWNER: ["SELF"] }),
        );
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
        const filters = checkFilters(input.Filters, SERVICE_FILTERS);
        // An unknown namespace is not an error: it matches nothing (localstack/localstack#10030, answers from AWS).
        const { items, NextToken } = page(Object.values(this.state.services), input, (s) =>
          passes(filters, { NAMESPACE_ID: [s.namespaceId, this.state.namespaces[s.namespaceId]?.arn ?? ""], RESOURCE_OWNER: ["SELF"] }),
        );
        return { Services: items.map((s) => this.summarizeService(s)), ...(NextToken ? { NextToken } : {}) };
      }
      case "DeleteService": {
        const s = this.state.services[String(input.Id ?? "")];
        if (!s) throw new AwsError("ServiceNotFound", `Service not found: ${String(input.Id)}`);
        // hashicorp/terraform#18264, hashicorp/terraform-provider-aws#4853 (answers from AWS).
        if (this.instanceCount(s.arn) > 0) throw new AwsError("ResourceInUse", "Service contains registered instances; delete the instances before deleting the service");
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
    // HttpName, which the HTTP_NAME filter reads, is the namespace's name for DNS namespaces too.
    return {
      Id: n.id,
      Arn: n.arn,
      ResourceOwner: this.account,
      Name: n.name,
      Type: n.type,
      CreateDate: n.createdAt,
      Properties: {
        ...(n.type === "HTTP" ? {} : { DnsProperties: { HostedZoneId: `Z${n.id.slice(3, 17).toUpperCase()}` } }),
        HttpProperties: { HttpName: n.name },
      },
    };
  }

  /** ListServices' ServiceSummary: a Service without NamespaceId. */
  private summarizeService(s: DiscoveryServiceState) {
    const { NamespaceId: _, ...summary } = this.describeService(s);
    return summary;
  }

  private describeService(s: DiscoveryServiceState) {
    return {
      Id: s.id,
      Arn: s.arn,
      ResourceOwner: this.account,
      CreatedByAccount: this.account,
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
