// The VPC resolver for real tasks: answers A queries for the Cloud Map
// private DNS namespaces from the tasks registered in them, as Cloud Map's
// Route 53 records do (one A record per registered task, MULTIVALUE). Names
// in a namespace that do not exist get NXDOMAIN, other record types there an
// empty answer, and names outside every namespace REFUSED: this resolver has
// no upstream.
import { createSocket, type Socket } from "node:dgram";

export type DnsAnswer =
  /** The name is in one of our zones; `addresses` may be empty (a service without running tasks). */
  | { inZone: true; exists: boolean; addresses: string[]; ttl: number }
  | { inZone: false };

export type DnsLookup = (name: string) => DnsAnswer;

const TYPE_A = 1;
const CLASS_IN = 1;
const RCODE = { noError: 0, formErr: 1, nxDomain: 3, notImp: 4, refused: 5 } as const;

interface Question {
  name: string;
  type: number;
  cls: number;
  /** Offset just after the question, where answers start. */
  end: number;
}

function readQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = msg[at];
    if (len === undefined || len > 63) return undefined; // no compression in a question
    at += 1;
    if (len === 0) break;
    labels.push(msg.toString("latin1", at, at + len));
    at += len;
  }
  if (at + 4 > msg.length) return undefined;
  return { name: labels.join(".").toLowerCase(), type: msg.readUInt16BE(at), cls: msg.readUInt16BE(at + 2), end: at + 4 };
}

/** The answer to one query, or undefined for a message that is not one. */
export function answer(query: Buffer, lookup: DnsLookup): Buffer | undefined {
  if (query.length < 12 || (query[2]! & 0x80) !== 0) return undefined; // a response, not a query
  const question = readQuestion(query);
  const opcode = (query[2]! >> 3) & 0x0f;
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2); // id
  const reply = (rcode: number, authoritative: boolean, answers: Buffer[] = []) => {
    // QR, opcode, AA, RD copied; RA 0: we do not recurse.
    header[2] = 0x80 | (opcode << 3) | (authoritative ? 0x04 : 0) | (query[2]! & 0x01);
    header[3] = rcode;
    header.writeUInt16BE(question ? 1 : 0, 4);
    header.writeUInt16BE(answers.length, 6);
    return Buffer.concat([header, question ? query.subarray(12, question.end) : Buffer.alloc(0), ...answers]);
  };
  if (!question) return reply(RCODE.formErr, false);
  if (opcode !== 0) return reply(RCODE.notImp, false);
  const found = lookup(question.name.replace(/\.$/, ""));
  if (!found.inZone) return reply(RCODE.refused, false);
  if (!found.exists) return reply(RCODE.nxDomain, true);
  if (question.type !== TYPE_A || question.cls !== CLASS_IN) return reply(RCODE.noError, true);
  const records = found.addresses.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(CLASS_IN, 4);
    rr.writeUInt32BE(found.ttl, 6);
    rr.writeUInt16BE(4, 10);
    ip.split(".").forEach((octet, i) => (rr[12 + i] = Number(octet)));
    return rr;
  });
  return reply(RCODE.noError, true, records);
}

export class DnsServer {
  private socket?: Socket;

  constructor(private readonly lookup: DnsLookup) {}

  async listen(address: string, port = 53): Promise<void> {
    const socket = createSocket("udp4");
    // A reply that cannot be sent is a lost datagram, as DNS over UDP allows; never a crash.
    socket.on("error", () => undefined);
    socket.on("message", (msg, from) => {
      const out = answer(msg, this.lookup);
      if (out) socket.send(out, from.port, from.address);
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind(port, address, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    this.socket = socket;
  }

  close(): void {
    this.socket?.close();
    this.socket = undefined;
  }
}
