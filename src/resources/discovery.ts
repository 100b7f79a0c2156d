// The Cloud Map service of a unit (pure): the DNS name `<unit>.<namespace>`
// the other components' Loki configs use, with one A record per task
// (multivalue) and health as ECS reports it. The gateway creates exactly this.
import { TAGS } from "./tags.ts";
import type { DesiredUnit } from "./render.ts";

export const DISCOVERY_DNS_CONFIG = { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] } as const;
export const DISCOVERY_HEALTH_CHECK = { FailureThreshold: 1 } as const;

export interface DesiredDiscoveryService {
  Name: string;
  /** The private DNS namespace it is created in (by name; its id is looked up). */
  Namespace: string;
  DnsConfig: typeof DISCOVERY_DNS_CONFIG;
  HealthCheckCustomConfig: typeof DISCOVERY_HEALTH_CHECK;
  Tags: { Key: string; Value: string }[];
}

export function buildDiscoveryService(u: DesiredUnit, namespace: string): DesiredDiscoveryService {
  return {
    Name: u.unit.name,
    Namespace: namespace,
    DnsConfig: DISCOVERY_DNS_CONFIG,
    HealthCheckCustomConfig: DISCOVERY_HEALTH_CHECK,
    // The spec hash follows ECS objects only: a Cloud Map service never changes in place.
    Tags: (u.service.tags ?? []).filter((t) => t.key !== TAGS.specHash).map((t) => ({ Key: t.key ?? "", Value: t.value ?? "" })),
  };
}
