// The SDK clients, configured once. Region and credentials come from the SDK's
// own default chain; only an explicit region (--region) and an endpoint (the
// local control plane) are ever set here.
import { ECSClient } from "@aws-sdk/client-ecs";
import { S3Client } from "@aws-sdk/client-s3";
import { ServiceDiscoveryClient } from "@aws-sdk/client-servicediscovery";
import { SSMClient } from "@aws-sdk/client-ssm";
import { loadConfig, NODE_REGION_CONFIG_FILE_OPTIONS, NODE_REGION_CONFIG_OPTIONS } from "@smithy/core/config";

export interface AwsConfig {
  /** Only when the user gave one (--region); otherwise the SDK's default chain decides. */
  region?: string;
  /** An AWS-compatible endpoint (the local control plane); unset means $AWS_ENDPOINT_URL, else AWS itself. */
  endpoint?: string;
  /** Total attempts per call, the first included (the SDK's default of 3 is too few under throttling). */
  maxAttempts?: number;
  /** Told once when a local endpoint falls back to LOCAL_DEFAULT_REGION because nothing names a region. */
  warn?: (message: string) => void;
}

export interface AwsClients {
  ecs: ECSClient;
  ssm: SSMClient;
  s3: S3Client;
  discovery: ServiceDiscoveryClient;
}

/** The region a local endpoint signs for when nothing else names one (the embedded control plane's default). */
export const LOCAL_DEFAULT_REGION = "us-east-1";

/** No region anywhere: the message says how to set one. */
export class RegionError extends Error {
  override readonly name = "RegionError";
}

export interface ResolvedRegion {
  region: string;
  /** option: --region; sdk: the SDK's default chain; local-default: a local endpoint with nothing configured. */
  source: "option" | "sdk" | "local-default";
}

function regionMissing(): RegionError {
  const hint =
    process.env.AWS_DEFAULT_REGION && !process.env.AWS_REGION
      ? ` (AWS_DEFAULT_REGION=${process.env.AWS_DEFAULT_REGION} is set, but the AWS SDK for JavaScript reads AWS_REGION, not AWS_DEFAULT_REGION)`
      : "";
  return new RegionError(
    `no AWS region found${hint}: pass --region <region>, set AWS_REGION, or use a profile that has a region ` +
      "(AWS_PROFILE, with `region = …` in ~/.aws/config or the file AWS_CONFIG_FILE names). " +
      "On ECS the task's AWS_REGION is set for you; on EC2 the instance metadata gives it.",
  );
}

export function localEndpointMessage(region: string): string {
  return `no AWS region configured (--region, AWS_REGION, profile): signing for ${region}, the local control plane's default; pass --region or set AWS_REGION to choose another`;
}

/**
 * The region exactly as the SDK's clients resolve it when none is given:
 * AWS_REGION, then the profile's `region` (AWS_PROFILE, else default; the
 * shared credentials and config files, AWS_SHARED_CREDENTIALS_FILE /
 * AWS_CONFIG_FILE), then EC2 instance metadata. The same loader and options as
 * the clients' runtime config (`loadConfig(NODE_REGION_CONFIG_OPTIONS,
 * NODE_REGION_CONFIG_FILE_OPTIONS)`), so it can never disagree with them.
 */
export async function sdkRegion(): Promise<string | undefined> {
  try {
    const region = await loadConfig(NODE_REGION_CONFIG_OPTIONS, { ...NODE_REGION_CONFIG_FILE_OPTIONS })();
    return region || undefined;
  } catch {
    return undefined;
  }
}

function endpointOf(config: AwsConfig): string | undefined {
  return config.endpoint ?? (process.env.AWS_ENDPOINT_URL || undefined);
}

/** The region calls will sign for; throws RegionError (saying how to set one) when there is none. */
export async function resolveRegion(config: AwsConfig = {}): Promise<ResolvedRegion> {
  if (config.region) return { region: config.region, source: "option" };
  const found = await sdkRegion();
  if (found) return { region: found, source: "sdk" };
  if (endpointOf(config)) return { region: LOCAL_DEFAULT_REGION, source: "local-default" };
  throw regionMissing();
}

/** Whether the environment names any credential source of the SDK's default chain besides the shared files' default profile. */
function credentialSourceConfigured(): boolean {
  return [
    "AWS_ACCESS_KEY_ID",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
  ].some((name) => Boolean(process.env[name]));
}

export function makeClients(config: AwsConfig = {}): AwsClients {
  const endpoint = endpointOf(config);
  // Resolved once for all four clients, on the first call, with the SDK's own loader.
  let resolving: Promise<string> | undefined;
  const region = async (): Promise<string> => {
    resolving ??= resolveRegion(config).then(
      (r) => {
        if (r.source === "local-default") config.warn?.(localEndpointMessage(r.region));
        return r.region;
      },
      (e: unknown) => {
        resolving = undefined;
        throw e;
      },
    );
    return resolving;
  };
  const common = {
    region: config.region ?? region,
    // Standard retries, bounded: a throttled read gives up after a few tries and
    // the next reconcile (or the guard's short path) tries again, instead of one
    // call holding everything behind it. Adaptive mode was measured slower: its
    // client-side rate limiter delays every later call after a throttle.
    maxAttempts: config.maxAttempts ?? 4,
    retryMode: "standard" as const,
    // No call waits for ever: a hung connection is abandoned and retried.
    requestHandler: { connectionTimeout: 3_000, requestTimeout: 10_000 },
    ...(endpoint ? { endpoint } : {}),
    // A local endpoint takes any key: without any credential source configured,
    // sign with a dummy one. Otherwise (and always on AWS) the SDK's default chain.
    ...(endpoint && !credentialSourceConfigured() ? { credentials: { accessKeyId: "local", secretAccessKey: "local" } } : {}),
  };
  return {
    ecs: new ECSClient(common),
    ssm: new SSMClient(common),
    s3: new S3Client({ ...common, forcePathStyle: endpoint !== undefined }),
    discovery: new ServiceDiscoveryClient(common),
  };
}
