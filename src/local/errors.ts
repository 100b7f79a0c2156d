// An error the control plane answers with, in the shape the real service uses,
// so the SDK raises the same named exception it would against AWS.

export class AwsError extends Error {
  constructor(
    /** The error code: `__type` for the JSON protocols, `<Code>` for S3. */
    readonly code: string,
    message: string,
    readonly status = 400,
    /** Extra fields some errors carry (S3's <Key>, <BucketName>). */
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
    this.name = code;
  }
}

export const invalidParameter = (message: string) => new AwsError("InvalidParameterException", message);
export const clientException = (message: string) => new AwsError("ClientException", message);
