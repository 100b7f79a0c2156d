// An S3 REST subset with path-style addressing and conditional writes, enough
// for the operator's lease and for the object store clients Loki uses: listings
// with a delimiter (CommonPrefixes), both list versions, URL-encoded listings,
// ranged reads and aws-chunked uploads, each answered as the S3 API reference
// describes them.
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
export const header = (req: Pick<S3Request, "headers">, name: string): string | undefined => {
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
    if (req.method === "GET" && req.query.has("location")) return "GetBucketLocation";
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
      case "GetBucketLocation":
        // us-east-1 answers an empty LocationConstraint (S3 API reference, GetBucketLocation).
        return { status: 200, headers: { "content-type": "application/xml" }, body: `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/"/>` };
      case "DeleteBucket":
        if (Object.keys(bucket.objects).length > 0) {
          throw new AwsError("BucketNotEmpty", "The bucket you tried to delete is not empty", 409, { BucketName: req.bucket });
        }
        delete this.state.buckets[req.bucket];
        return { status: 204, headers: {} };
      case "ListObjectsV2":
      case "ListObjects":
        return this.list(req, bucket.objects, action === "ListObjectsV2");
      case "PutObject":
        return this.put(req, bucket.objects);
      case "GetObject":
      case "HeadObject": {
        const obj = bucket.objects[req.key];
        if (!obj) throw new AwsError("NoSuchKey", "The specified key does not exist.", 404, { Key: req.key });
        const whole = Buffer.from(obj.body, "base64");
        const range = byteRange(header(req, "range"), whole.length);
        const body = range ? whole.subarray(range.start, range.end + 1) : whole;
        return {
          status: range ? 206 : 200,
          headers: {
            etag: obj.etag,
            "last-modified": httpDate(obj.lastModified),
            "content-type": obj.contentType,
            "content-length": String(body.length),
            "accept-ranges": "bytes",
            ...(range ? { "content-range": `bytes ${range.start}-${range.end}/${whole.length}` } : {}),
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
    const body = decodeAwsChunked(req);
    const etag = `"${createHash("md5").update(body).digest("hex")}"`;
    objects[req.key] = {
      body: body.toString("base64"),
      etag,
      lastModified: this.now(),
      contentType: header(req, "content-type") ?? "application/octet-stream",
    };
    return { status: 200, headers: { etag } };
  }

  /**
   * ListObjectsV2 (`list-type=2`: continuation-token, start-after, KeyCount) and ListObjects
   * (marker, NextMarker). With a delimiter, keys that share the text between the prefix and the
   * delimiter's first occurrence after it roll up into one CommonPrefixes entry, which counts once
   * against max-keys. With `encoding-type=url`, keys, prefixes, the delimiter and StartAfter come
   * back URL-encoded (S3 API reference, ListObjectsV2 and ListObjects).
   */
  private list(req: S3Request, objects: Record<string, S3Object>, v2: boolean): S3Response {
    const q = req.query;
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") || undefined;
    const max = Math.max(0, Math.min(Number(q.get("max-keys") ?? 1000), 1000));
    const url = q.get("encoding-type") === "url";
    if (q.has("encoding-type") && !url) throw new AwsError("InvalidArgument", "Invalid Encoding Method specified in Request", 400, { ArgumentName: "encoding-type" });
    const token = q.get("continuation-token");
    const after = v2 ? (token ? Buffer.from(token, "base64url").toString("utf8") : (q.get("start-after") ?? "")) : (q.get("marker") ?? "");
    const enc = (v: string) => xmlEscape(url ? encodeURIComponent(v) : v);

    const contents: string[] = [];
    const prefixes: string[] = [];
    let last: string | undefined;
    let truncated = false;
    for (const key of Object.keys(objects).filter((k) => k.startsWith(prefix) && k > after).sort()) {
      const cut = delimiter ? key.indexOf(delimiter, prefix.length) : -1;
      const rolled = cut >= 0 ? key.slice(0, cut + delimiter!.length) : undefined;
      // Keys under a common prefix already returned (or the one a page ended on) are not returned again.
      if (rolled !== undefined && (rolled === prefixes.at(-1) || rolled === after)) continue;
      if (contents.length + prefixes.length >= max) {
        truncated = true;
        break;
      }
      if (rolled !== undefined) prefixes.push(rolled);
      else {
        const o = objects[key]!;
        contents.push(`<Contents><Key>${enc(key)}</Key><LastModified>${isoDate(o.lastModified)}</LastModified><ETag>${xmlEscape(o.etag)}</ETag><Size>${Buffer.from(o.body, "base64").length}</Size><StorageClass>STANDARD</StorageClass></Contents>`);
      }
      last = rolled ?? key;
    }
    const element = (name: string, value: string | undefined, encode = false) => (value === undefined ? "" : `<${name}>${encode ? enc(value) : xmlEscape(value)}</${name}>`);
    const common = prefixes.map((p) => `<CommonPrefixes><Prefix>${enc(p)}</Prefix></CommonPrefixes>`).join("");
    const paging = v2
      ? `${element("KeyCount", String(contents.length + prefixes.length))}${element("ContinuationToken", token ?? undefined)}${truncated ? element("NextContinuationToken", Buffer.from(last!).toString("base64url")) : ""}${element("StartAfter", q.get("start-after") ?? undefined, true)}`
      : // NextMarker only with a delimiter; without one the client continues from the last key.
        `${element("Marker", q.get("marker") ?? "", true)}${truncated && delimiter ? element("NextMarker", last, true) : ""}`;
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(req.bucket)}</Name>${element("Prefix", prefix, true)}` +
      `${element("Delimiter", delimiter, true)}<MaxKeys>${max}</MaxKeys>${url ? "<EncodingType>url</EncodingType>" : ""}<IsTruncated>${truncated}</IsTruncated>${paging}${contents.join("")}${common}</ListBucketResult>`;
    return { status: 200, headers: { "content-type": "application/xml" }, body };
  }
}

/**
 * `Range: bytes=first-last`, `bytes=first-` or `bytes=-suffix`, clamped to the object; undefined for
 * no (or an unparsable) Range, which S3 answers with the whole object. A first byte past the end is
 * 416 InvalidRange.
 */
function byteRange(value: string | undefined, size: number): { start: number; end: number } | undefined {
  const m = value === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(value.trim());
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  const [start, end] = m[1] === "" ? [Math.max(0, size - Number(m[2])), size - 1] : [Number(m[1]), m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1)];
  if (start >= size || start > end) throw new AwsError("InvalidRange", "The requested range is not satisfiable", 416, { RangeRequested: value!, ActualObjectSize: String(size) });
  return { start, end };
}

/**
 * The payload of an upload sent with `aws-chunked` content encoding (x-amz-content-sha256
 * STREAMING-…, as SDKs send streams with a chunk signature or a checksum trailer): chunks of
 * `<hex size>[;chunk-signature=…]\r\n<data>\r\n`, a last chunk of size 0, then optional trailers
 * (S3 API reference, "Signature Calculations for the Authorization Header: Transferring Payload in
 * Multiple Chunks"). Any other body is the payload itself.
 */
function decodeAwsChunked(req: S3Request): Buffer {
  const mode = header(req, "x-amz-content-sha256") ?? "";
  const encoding = header(req, "content-encoding") ?? "";
  if (!mode.startsWith("STREAMING-") && !encoding.split(",").some((e) => e.trim() === "aws-chunked")) return req.body;
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = req.body.indexOf("\r\n", at);
    if (eol < 0) throw new AwsError("IncompleteBody", "The request body terminated unexpectedly", 400);
    const size = parseInt(req.body.subarray(at, eol).toString("latin1").split(";")[0]!, 16);
    if (!Number.isFinite(size)) throw new AwsError("IncompleteBody", "The request body terminated unexpectedly", 400);
    if (size === 0) break;
    parts.push(req.body.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  const body = Buffer.concat(parts);
  const declared = header(req, "x-amz-decoded-content-length");
  if (declared !== undefined && Number(declared) !== body.length) throw new AwsError("IncompleteBody", "The request body terminated unexpectedly", 400);
  return body;
}
