// Starts the embedded control plane for a test and builds real SDK clients for it.
import { ECSClient } from "@aws-sdk/client-ecs";
import { S3Client } from "@aws-sdk/client-s3";
import { ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { SSMClient } from "@aws-sdk/client-ssm";
import { Agent } from "node:http";
import { ConfiguredRetryStrategy } from "@smithy/core/retry";
import { afterEach } from "vitest";
import { startLocalControlPlane, type LocalControlPlane, type LocalControlPlaneOptions } from "../../src/local/control-plane.ts";

export interface Harness {
  cp: LocalControlPlane;
  ecs: ECSClient;
  ssm: SSMClient;
  s3: S3Client;
  discovery: ServiceDiscoveryClient;
}

const running: LocalControlPlane[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((cp) => cp.stop()));
});

/** A control plane on a free loopback port, stopped after the test; clients do not retry unless asked. */
export async function harness(options: LocalControlPlaneOptions & { attempts?: number } = {}): Promise<Harness> {
  const cp = await startLocalControlPlane({ tickMs: 5, seed: 42, ...options });
  running.push(cp);
  // One attempt by default, so tests count calls exactly; then a kept-alive socket the server
  // closes when idle (keepAliveTimeout) could fail a request sent at that moment ("socket
  // hang up"), which the SDK would retry. A connection per request cannot race that.
  const retry = {
    retryStrategy: new ConfiguredRetryStrategy(options.attempts ?? 1, (attempt) => 5 * attempt),
    requestHandler: { httpAgent: new Agent({ keepAlive: false }) },
  };
  return {
    cp,
    ecs: new ECSClient({ ...cp.clientConfig, ...retry }),
    ssm: new SSMClient({ ...cp.clientConfig, ...retry }),
    s3: new S3Client({ ...cp.clientConfig, ...retry, forcePathStyle: true }),
    discovery: new ServiceDiscoveryClient({ ...cp.clientConfig, ...retry }),
  };
}

/** The error a call fails with (the test fails if it succeeds). */
export async function rejection(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the call to fail");
}

/** Polls `probe` until it returns a value; fails after `attempts` polls (a count, not a clock). */
export async function eventually<T>(probe: () => Promise<T | undefined | false>, attempts = 400, delayMs = 10): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, delayMs));
  }
  throw new Error(`condition not met after ${attempts} polls`);
}

/** A Fargate task definition input small enough for tests. */
export function taskDefinitionInput(family: string, opts: { image?: string; healthCheck?: boolean } = {}) {
  return {
    family,
    networkMode: "awsvpc" as const,
    requiresCompatibilities: ["FARGATE" as const],
    cpu: "256",
    memory: "512",
    executionRoleArn: "arn:aws:iam::123456789012:role/exec",
    containerDefinitions: [
      {
        name: "app",
        image: opts.image ?? "grafana/loki:3.5.0",
        portMappings: [{ containerPort: 3100 }],
        ...(opts.healthCheck ? { healthCheck: { command: ["CMD", "/usr/bin/loki", "-health"] } } : {}),
      },
    ],
  };
}

export const network = { awsvpcConfiguration: { subnets: ["subnet-0123456789abcdef0"], securityGroups: ["sg-0123456789abcdef0"] } };
