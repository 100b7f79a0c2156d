// What a failed command tells a person: one line saying what failed and what
// to do, instead of a stack trace (`--debug` prints that). AWS errors are
// recognised by their code, never by their wording.
import { AwsCallError } from "../aws/errors.ts";

/** Errors whose only cause is that nothing answered at the address. */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ECONNRESET", "TimeoutError", "RequestTimeout"]);
const ACCESS_DENIED = new Set(["AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException"]);

export interface ErrorContext {
  /** The endpoint the command talked to (--endpoint or AWS_ENDPOINT_URL), if not AWS's own. */
  endpoint?: string;
  region?: string;
  /** The SSM prefix, for naming what an AccessDenied was about. */
  prefix?: string;
}

/** The first AwsCallError in the cause chain, if any. */
function awsCause(e: unknown): AwsCallError | undefined {
  for (let c: unknown = e, depth = 0; c && depth < 10; c = (c as { cause?: unknown }).cause, depth++) {
    if (c instanceof AwsCallError) return c;
  }
  return undefined;
}

/** IAM's name for an action: `ssm:GetParametersByPath`, `servicediscovery:ListServices`. */
const iamAction = (e: AwsCallError) => `${e.service}:${e.action}`;

export function explainError(e: unknown, ctx: ErrorContext = {}): string {
  const aws = awsCause(e);
  if (aws) {
    if (UNREACHABLE.has(aws.code)) {
      return ctx.endpoint
        ? `cannot reach ${ctx.endpoint} (${aws.code}): is \`lokistack local\` running there? Check --endpoint or AWS_ENDPOINT_URL`
        : `cannot reach AWS ${aws.service} in ${ctx.region ?? "the region"} (${aws.code}): check the network, a proxy, or the VPC endpoints`;
    }
    if (aws.code === "CredentialsProviderError") {
      return "no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in ECS, the task role provides them)";
    }
    if (ACCESS_DENIED.has(aws.code)) {
      const what = aws.service === "ssm" && ctx.prefix ? ` for ${ctx.prefix}` : "";
      const fix =
        aws.code === "AccessDeniedException" || aws.code === "AccessDenied" || aws.code === "UnauthorizedOperation"
          ? `the caller's role needs ${iamAction(aws)} (manifests/operator/cloudformation.yaml grants the operator what it uses)`
          : "the credentials are not valid here: check the access key, the session token's expiry and the region";
      return `${aws.code} on ${iamAction(aws)}${what}: ${fix}`;
    }
    return `${iamAction(aws)} failed: ${aws.code}: ${firstLine(aws.detail)}`;
  }
  const err = e as NodeJS.ErrnoException;
  if (err?.code === "ENOENT" && err.path) return `cannot read ${err.path}: no such file`;
  if (err?.code === "EACCES" && err.path) return `cannot read ${err.path}: permission denied`;
  if (err?.code === "EISDIR") return `cannot read ${err.path ?? "the file"}: it is a directory`;
  return firstLine(e instanceof Error ? e.message : String(e));
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.trim();
}
