// Leader election against the control plane's S3, on a clock the test controls.
import { CreateBucketCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { S3Gateway } from "../../src/aws/s3-gateway.ts";
import { LeaderLease, parseLeaseUrl } from "../../src/runtime/lease.ts";
import { harness } from "../helpers/local.ts";

async function pair() {
  const h = await harness();
  await h.s3.send(new CreateBucketCommand({ Bucket: "ops" }));
  let now = 0;
  const s3 = new S3Gateway(h.s3);
  const make = (holder: string) => new LeaderLease({ s3, bucket: "ops", key: "lease", holder, leaseMs: 15_000, now: () => now });
  return { h, a: make("a"), b: make("b"), advance: (ms: number) => (now += ms) };
}

describe("S3 lease permissions", () => {
  it("without s3:ListBucket a missing lease reads as 403: no replica leads, and the missing permission is named", async () => {
    const { h, a, b } = await pair();
    h.cp.faults.update({ deny: ["s3:ListBucket"] });
    expect(await a.tick()).toBe(false);
    expect(await b.tick()).toBe(false);
    expect(a.problem).toContain("needs s3:ListBucket on arn:aws:s3:::ops");
    h.cp.faults.update({ deny: [] });
    expect(await a.tick()).toBe(true);
    expect(a.problem).toBeUndefined();
    expect(await b.tick()).toBe(false);
  });

  it("a denied write names s3:PutObject", async () => {
    const { h, a } = await pair();
    h.cp.faults.update({ deny: ["s3:PutObject"] });
    expect(await a.tick()).toBe(false);
    expect(a.problem).toContain("needs s3:PutObject on arn:aws:s3:::ops/lease");
  });
});

describe("S3 lease", () => {
  it("only one replica leads; the other takes over after a full lease period of silence", async () => {
    const { a, b, advance } = await pair();
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    for (let i = 0; i < 5; i++) {
      advance(5_000);
      expect(await a.tick()).toBe(true);
      expect(await b.tick()).toBe(false);
    }
    // a dies: b watches the same ETag for longer than the lease, then takes over.
    advance(5_000);
    expect(await b.tick()).toBe(false);
    advance(10_000);
    expect(await b.tick()).toBe(false);
    advance(5_001);
    expect(await b.tick()).toBe(true);
    // a comes back from a pause: its renewal fails on the stale ETag and it stops acting.
    expect(await a.tick()).toBe(false);
    expect(a.isLeader()).toBe(false);
  });

  it("a leader that cannot renew stops acting before a follower could take over", async () => {
    const { a, advance } = await pair();
    expect(await a.tick()).toBe(true);
    advance(11_999);
    expect(a.isLeader()).toBe(true);
    advance(1);
    // leaseMs 15 s minus a 3 s margin: after 12 s without a renewal it must not write.
    expect(a.isLeader()).toBe(false);
  });

  it("a released lease is taken at once", async () => {
    const { a, b } = await pair();
    await a.tick();
    await a.release();
    expect(a.isLeader()).toBe(false);
    expect(await b.tick()).toBe(true);
  });

  it("a lease replaced by someone else is lost at the next renewal", async () => {
    const { h, a, advance } = await pair();
    await a.tick();
    await h.s3.send(new PutObjectCommand({ Bucket: "ops", Key: "lease", Body: '{"holder":"intruder","leaseMs":15000}' }));
    advance(5_000);
    expect(await a.tick()).toBe(false);
  });

  it("parses s3:// URLs and refuses others", () => {
    expect(parseLeaseUrl("s3://ops/lokistack/lease")).toEqual({ bucket: "ops", key: "lokistack/lease" });
    expect(() => parseLeaseUrl("ops/lease")).toThrow(/s3:\/\/BUCKET\/KEY/);
  });
});
