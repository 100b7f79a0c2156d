// The S3 calls leader election needs: conditional writes with typed outcomes.
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { awsCall, AwsCallError } from "./errors.ts";

export type ConditionalPut = { ok: true; etag: string } | { ok: false; reason: "exists" | "changed" | "missing" };

export class S3Gateway {
  constructor(private readonly client: S3Client) {}

  async get(bucket: string, key: string): Promise<{ body: string; etag: string } | undefined> {
    try {
      const r = await awsCall("s3", "GetObject", () => this.client.send(new GetObjectCommand({ Bucket: bucket, Key: key })));
      return { body: (await r.Body?.transformToString()) ?? "", etag: r.ETag ?? "" };
    } catch (e) {
      if (e instanceof AwsCallError && e.code === "NoSuchKey") return undefined;
      throw e;
    }
  }

  /** Creates the object only if it does not exist (`If-None-Match: *`). */
  async create(bucket: string, key: string, body: string): Promise<ConditionalPut> {
    return this.conditionalPut(bucket, key, body, { IfNoneMatch: "*" });
  }

  /** Replaces the object only if it still has `etag` (`If-Match`). */
  async replace(bucket: string, key: string, body: string, etag: string): Promise<ConditionalPut> {
    return this.conditionalPut(bucket, key, body, { IfMatch: etag });
  }

  async deleteIfMatch(bucket: string, key: string, etag: string): Promise<boolean> {
    try {
      await awsCall("s3", "DeleteObject", () => this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag })));
      return true;
    } catch (e) {
      if (e instanceof AwsCallError && (e.status === 412 || e.code === "NoSuchKey")) return false;
      throw e;
    }
  }

  private async conditionalPut(bucket: string, key: string, body: string, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<ConditionalPut> {
    // 409 ConditionalRequestConflict means a concurrent write: try again, a few times.
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await awsCall("s3", "PutObject", () =>
          this.client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: "application/json", ...condition })),
        );
        return { ok: true, etag: r.ETag ?? "" };
      } catch (e) {
        if (!(e instanceof AwsCallError)) throw e;
        if (e.status === 412) return { ok: false, reason: condition.IfNoneMatch ? "exists" : "changed" };
        if (e.code === "NoSuchKey" || e.status === 404) return { ok: false, reason: "missing" };
        if (e.status === 409 && attempt < 3) continue;
        throw e;
      }
    }
  }
}
