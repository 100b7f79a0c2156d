// A failed AWS call, typed: which service and action, the error code AWS
// answered with, and whether trying again later may help.

export type AwsServiceName = "ecs" | "ssm" | "s3" | "servicediscovery";

const RETRYABLE = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
  "SlowDown",
  "TooManyUpdates",
  "ServerException",
  "InternalServerError",
  "InternalError",
  "ServiceUnavailable",
  "ConditionalRequestConflict",
  "TimeoutError",
  "ECONNRESET",
  "ECONNREFUSED",
]);

export class AwsCallError extends Error {
  constructor(
    readonly service: AwsServiceName,
    readonly action: string,
    readonly code: string,
    /** What AWS (or the SDK) said. */
    readonly detail: string,
    readonly status?: number,
  ) {
    super(`${service}.${action}: ${code}: ${detail}`);
    this.name = "AwsCallError";
  }

  /** Throttling, 5xx and conflicts pass; a later pass may succeed where this one failed. */
  get retryable(): boolean {
    return RETRYABLE.has(this.code) || (this.status !== undefined && this.status >= 500);
  }
}

/** The code and HTTP status of anything the SDK throws. */
export function describeSdkError(e: unknown): { code: string; message: string; status?: number } {
  const err = e as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  return {
    code: err.name && err.name !== "Error" ? err.name : (err.code ?? "Unknown"),
    message: err.message ?? String(e),
    ...(err.$metadata?.httpStatusCode !== undefined ? { status: err.$metadata.httpStatusCode } : {}),
  };
}

/** Runs one SDK call and turns whatever it throws into an AwsCallError. */
export async function awsCall<T>(service: AwsServiceName, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const { code, message, status } = describeSdkError(e);
    throw new AwsCallError(service, action, code, message, status);
  }
}
