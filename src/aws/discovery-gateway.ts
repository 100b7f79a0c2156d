// Cloud Map calls: find a namespace by name (once), list its services (once a
// pass), create a service for a unit. ECS then registers each task's IP in it.
import { DISCOVERY_DNS_CONFIG, DISCOVERY_HEALTH_CHECK } from "../resources/discovery.ts";
import {
  CreateServiceCommand,
  DeleteServiceCommand,
  ListTagsForResourceCommand,
  ListNamespacesCommand,
  ListServicesCommand,
  type ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import type { Tag } from "@aws-sdk/client-ecs";
import { awsCall } from "./errors.ts";

export class DiscoveryGateway {
  private readonly namespaceIds = new Map<string, string>();

  constructor(private readonly client: ServiceDiscoveryClient) {}

  /** The id of the namespace named `name`, or undefined when there is none (cached once found). */
  async namespaceId(name: string): Promise<string | undefined> {
    const cached = this.namespaceIds.get(name);
    if (cached) return cached;
    let NextToken: string | undefined;
    do {
      const page = await awsCall("servicediscovery", "ListNamespaces", () =>
        this.client.send(new ListNamespacesCommand({ Filters: [{ Name: "NAME", Values: [name], Condition: "EQ" }], NextToken })),
      );
      const found = page.Namespaces?.find((n) => n.Name === name);
      if (found?.Id) {
        this.namespaceIds.set(name, found.Id);
        return found.Id;
      }
      NextToken = page.NextToken;
    } while (NextToken);
    return undefined;
  }

  /** The namespace's services by name → ARN. */
  async listServices(namespaceId: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    let NextToken: string | undefined;
    do {
      const page = await awsCall("servicediscovery", "ListServices", () =>
        this.client.send(new ListServicesCommand({ Filters: [{ Name: "NAMESPACE_ID", Values: [namespaceId], Condition: "EQ" }], MaxResults: 100, NextToken })),
      );
      for (const s of page.Services ?? []) if (s.Name && s.Arn) out.set(s.Name, s.Arn);
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  async tags(arn: string): Promise<Tag[]> {
    const r = await awsCall("servicediscovery", "ListTagsForResource", () => this.client.send(new ListTagsForResourceCommand({ ResourceARN: arn })));
    return (r.Tags ?? []).map((t) => ({ key: t.Key, value: t.Value }));
  }

  /** Deletes a service by ARN (Cloud Map refuses while ECS still has instances registered). */
  async deleteService(arn: string): Promise<void> {
    const id = arn.slice(arn.lastIndexOf("/") + 1);
    await awsCall("servicediscovery", "DeleteService", () => this.client.send(new DeleteServiceCommand({ Id: id })));
  }

  /** A service with A records (one per task, multivalue) and ECS-reported health; returns its ARN. */
  async createService(name: string, namespaceId: string, tags: Tag[]): Promise<string> {
    const r = await awsCall("servicediscovery", "CreateService", () =>
      this.client.send(
        new CreateServiceCommand({
          Name: name,
          NamespaceId: namespaceId,
          DnsConfig: { ...DISCOVERY_DNS_CONFIG, DnsRecords: DISCOVERY_DNS_CONFIG.DnsRecords.map((r) => ({ ...r })) },
          HealthCheckCustomConfig: DISCOVERY_HEALTH_CHECK,
          Tags: tags.map((t) => ({ Key: t.key!, Value: t.value ?? "" })),
        }),
      ),
    );
    return r.Service!.Arn!;
  }
}
