// An S3 REST subset with path-style addressing and conditional writes, enough
// for the operator's lease and for any S3 client pointed at the control plane.
import { createHash } from "node:crypto";
import { AwsError } from "./errors.ts";

export interface S3Object {
  body: string; // base64
  etag: string; // with quotes, as S3 returns it
  lastModified: number;
  contentType: string;
}

export interface S3State {
  buckets: Record<string, { createdAt: number; objects: Record<string, S3Object> }>;
}

export interface S3Request {
  method: string;
  bucket: string;
  key: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export interface S3Response {
  status: number;
  headers: Record<string, string>;
  body?: Buffer | string;
}

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]!);
const header = (req: S3Request, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};
const httpDate = (epochSeconds: number) => new Date(epochSeconds * 1000).toUTCString();
const isoDate = (epochSeconds: number) => new Date(epochSeconds * 1000).toISOString();

export function s3ErrorXml(e: AwsError, requestId: string): string {
  const extra = Object.entries(e.fields)
    .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
    .join("");
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message>${extra}<RequestId>${requestId}</RequestId></Error>`;
}

/** The action name a request maps to, for accounting and fault injection. */
export function s3Action(req: Pick<S3Request, "method" | "bucket" | "key" | "query">): string {
  if (!req.key) {
    if (req.method === "PUT") return "CreateBucket";
    if (req.method === "HEAD") return "HeadBucket";
    if (req.method === "DELETE") return "DeleteBucket";
    if (req.method === "GET") return req.query.get("list-type") === "2" ? "ListObjectsV2" : "ListObjects";
  }
  return { PUT: "PutObject", GET: "GetObject", HEAD: "HeadObject", DELETE: "DeleteObject" }[req.method] ?? `${req.method}Object`;
}

export class S3Service {
  constructor(
    readonly state: S3State,
    private readonly now: () => number,
  ) {}

  handle(req: S3Request): S3Response {
    const action = s3Action(req);
    if (action === "CreateBucket") return this.createBucket(req.bucket);
    const bucket = this.state.buckets[req.bucket];
    if (!bucket) {
      throw new AwsError("NoSuchBucket", "The specified bucket does not exist", 404, { BucketName: req.bucket });
    }
    switch (action) {
      case "HeadBucket":
        return { status: 200, headers: { "x-amz-bucket-region": "us-east-1" } };
      case "DeleteBucket":
        if (Object.keys(bucket.objects).length > 0) {
          throw new AwsError("BucketNotEmpty", "The bucket you tried to delete is not empty", 409, { BucketName: req.bucket });
        }
        delete this.state.buckets[req.bucket];
        return { status: 204, headers: {} };
      case "ListObjectsV2":
        return this.list(req, bucket.objects);
      case "PutObject":
        return this.put(req, bucket.objects);
      case "GetObject":
      case "HeadObject": {
        const obj = bucket.objects[req.key];
        if (!obj) throw new AwsError("NoSuchKey", "The specified key does not exist.", 404, { Key: req.key });
        const body = Buffer.from(obj.body, "base64");
        return {
          status: 200,
          headers: {
            etag: obj.etag,
            "last-modified": httpDate(obj.lastModified),
            "content-type": obj.contentType,
            "content-length": String(body.length),
          },
          ...(action === "GetObject" ? { body } : {}),
        };
      }
      case "DeleteObject": {
        const ifMatch = header(req, "if-match");
        const obj = bucket.objects[req.key];
        if (ifMatch !== undefined) {
          if (!obj) throw new AwsError("NoSuchKey", "The specified key does not exist.", 404, { Key: req.key });
          if (ifMatch !== "*" && ifMatch !== obj.etag) {
            throw new AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412, { Condition: "If-Match" });
          }
        }
        delete bucket.objects[req.key];
        return { status: 204, headers: {} };
      }
      default:
        throw new AwsError("NotImplemented", `A header or query you provided implies functionality that is not implemented (${action}).`, 501);
    }
  }

  private createBucket(name: string): S3Response {
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(name)) {
      throw new AwsError("InvalidBucketName", "The specified bucket is not valid.", 400, { BucketName: name });
    }
    if (this.state.buckets[name]) {
      throw new AwsError("BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.", 409, { BucketName: name });
    }
    this.state.buckets[name] = { createdAt: this.now(), objects: {} };
    return { status: 200, headers: { location: `/${name}` } };
  }

  private put(req: S3Request, objects: Record<string, S3Object>): S3Response {
    const existing = objects[req.key];
    const ifNoneMatch = header(req, "if-none-match");
    const ifMatch = header(req, "if-match");
    if (ifNoneMatch !== undefined) {
      if (ifNoneMatch !== "*") throw new AwsError("NotImplemented", "A header you provided implies functionality that is not implemented", 501, { Header: "If-None-Match" });
      if (existing) throw new AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412, { Condition: "If-None-Match" });
    }
    if (ifMatch !== undefined) {
      // S3 answers a compare-and-swap on a missing key with 404, not 412.
      if (!existing) throw new AwsError("NoSuchKey", "The specified key does not exist.", 404, { Key: req.key });
      if (ifMatch !== existing.etag) throw new AwsError("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412, { Condition: "If-Match" });
    }
    const etag = `"${createHash("md5").update(req.body).digest("hex")}"`;
    objects[req.key] = {
      body: req.body.toString("base64"),
      etag,
      lastModified: this.now(),
      contentType: header(req, "content-type") ?? "application/octet-stream",
    };
    return { status: 200, headers: { etag } };
  }

  private list(req: S3Request, objects: Record<string, S3Object>): S3Response {
    const prefix = req.query.get("prefix") ?? "";
    const max = Math.min(Number(req.query.get("max-keys") ?? 1000), 1000);
    const after = req.query.get("continuation-token")
      ? Buffer.from(req.query.get("continuation-token")!, "base64url").toString("utf8")
      : (req.query.get("start-after") ?? "");
    const keys = Object.keys(objects)
      .filter((k) => k.startsWith(prefix) && k > after)
      .sort();
    const page = keys.slice(0, max);
    const truncated = keys.length > page.length;
    const contents = page
      .map((k) => {
        const o = objects[k]!;
        return `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${isoDate(o.lastModified)}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${Buffer.from(o.body, "base64").length}</Size><StorageClass>STANDARD</StorageClass></Contents>`;
      })
      .join("");
    const next = truncated ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString("base64url")}</NextContinuationToken>` : "";
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(req.bucket)}</Name><Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${max}</MaxKeys><IsTruncated>${truncated}</IsTruncated>${contents}${next}</ListBucketResult>`;
    return { status: 200, headers: { "content-type": "application/xml" }, body };
  }
}
