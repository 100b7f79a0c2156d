// The SDK clients, configured once. Nothing but the endpoint differs
// between AWS and the local control plane.
import { ECSClient } from "@aws-sdk/client-ecs";
import { S3Client } from "@aws-sdk/client-s3";
import { ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { SSMClient } from "@aws-sdk/client-ssm";

export interface AwsConfig {
  region?: string;
  /** An AWS-compatible endpoint (the local control plane); unset means AWS itself. */
  endpoint?: string;
  /** Total attempts per call, the first included (the SDK's default of 3 is too few under throttling). */
  maxAttempts?: number;
}

export interface AwsClients {
  ecs: ECSClient;
  ssm: SSMClient;
  s3: S3Client;
  discovery: ServiceDiscoveryClient;
}

export function makeClients(config: AwsConfig = {}): AwsClients {
  const region = config.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const endpoint = config.endpoint ?? process.env.AWS_ENDPOINT_URL;
  const common = {
    region,
    // Standard retries, bounded: a throttled read gives up after a few tries and
    // the next reconcile (or the guard's short path) tries again, instead of one
    // call holding everything behind it. Adaptive mode was measured slower: its
    // client-side rate limiter delays every later call after a throttle.
    maxAttempts: config.maxAttempts ?? 4,
    retryMode: "standard" as const,
    // No call waits for ever: a hung connection is abandoned and retried.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
    ...(endpoint
      ? {
          endpoint,
          // A local endpoint takes any key; real AWS uses the default credential chain.
          credentials: {
            accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? "local",
            secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? "local",
          },
        }
      : {}),
  };
  return {
    ecs: new ECSClient(common),
    ssm: new SSMClient(common),
    s3: new S3Client({ ...common, forcePathStyle: endpoint !== undefined }),
    discovery: new ServiceDiscoveryClient(common),
  };
}
