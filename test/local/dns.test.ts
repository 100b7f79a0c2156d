// The VPC resolver's wire format, without sockets: queries built byte by byte
// as RFC 1035 lays them out, answers read back the same way.
import { describe, expect, it } from "vitest";
import { answer, type DnsLookup } from "../../src/local/tasks/dns.ts";

function query(name: string, type = 1, id = 0x1234): Buffer {
  const labels = name.split(".").flatMap((l) => [Buffer.from([l.length]), Buffer.from(l, "latin1")]);
  const header = Buffer.from([id >> 8, id & 255, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD, one question
  return Buffer.concat([header, ...labels, Buffer.from([0, 0, type, 0, 1])]);
}

function parse(msg: Buffer) {
  const rcode = msg[3]! & 0x0f;
  const answers = msg.readUInt16BE(6);
  let at = 12;
  if (msg.readUInt16BE(4) === 1) {
    while (msg[at] !== 0) at += msg[at]! + 1;
    at += 5;
  }
  const addresses: string[] = [];
  const ttls: number[] = [];
  for (let i = 0; i < answers; i++) {
    expect(msg.readUInt16BE(at)).toBe(0xc00c);
    ttls.push(msg.readUInt32BE(at + 6));
    addresses.push([...msg.subarray(at + 12, at + 16)].join("."));
    at += 16;
  }
  return { id: msg.readUInt16BE(0), response: (msg[2]! & 0x80) !== 0, authoritative: (msg[2]! & 0x04) !== 0, rcode, addresses, ttls };
}

const lookup: DnsLookup = (name) => {
  if (name === "demo-ingester-0.loki.internal") return { inZone: true, exists: true, addresses: ["10.200.0.7"], ttl: 10 };
  if (name === "demo-querier.loki.internal") return { inZone: true, exists: true, addresses: ["10.200.0.3", "10.200.0.9"], ttl: 60 };
  if (name.endsWith(".loki.internal") || name === "loki.internal") return { inZone: true, exists: name === "loki.internal", addresses: [], ttl: 60 };
  return { inZone: false };
};

describe("the task network's DNS", () => {
  it("answers A queries for registered tasks, one record each, with the service's TTL", () => {
    const r = parse(answer(query("demo-querier.loki.internal"), lookup)!);
    expect(r).toMatchObject({ id: 0x1234, response: true, authoritative: true, rcode: 0, addresses: ["10.200.0.3", "10.200.0.9"], ttls: [60, 60] });
  });

  it("matches names case-insensitively, as DNS does", () => {
    expect(parse(answer(query("Demo-Ingester-0.LOKI.internal"), lookup)!).addresses).toEqual(["10.200.0.7"]);
  });

  it("answers other record types for an existing name with no records (NODATA), not an error", () => {
    const r = parse(answer(query("demo-querier.loki.internal", 28), lookup)!);
    expect(r).toMatchObject({ rcode: 0, addresses: [] });
  });

  it("says NXDOMAIN for an unknown name in a namespace and REFUSED outside every namespace", () => {
    expect(parse(answer(query("nothing.loki.internal"), lookup)!)).toMatchObject({ rcode: 3, authoritative: true });
    expect(parse(answer(query("s3.amazonaws.com"), lookup)!)).toMatchObject({ rcode: 5, authoritative: false });
  });

  it("ignores responses and answers malformed queries with FORMERR", () => {
    const response = query("demo-querier.loki.internal");
    response[2]! |= 0x80;
    expect(answer(response, lookup)).toBeUndefined();
    const truncated = query("demo-querier.loki.internal").subarray(0, 20);
    expect(parse(answer(truncated, lookup)!).rcode).toBe(1);
  });
});
