// awsvpc for real tasks: the control plane's "VPC" is a Linux bridge with a
// private /16; every task gets its own network namespace, a veth pair into the
// bridge and one address from the /16, so each Loki binds its usual ports on
// its own IP as on Fargate. The bridge's first address is the VPC's gateway,
// where the control plane's endpoint and the VPC DNS resolver listen for the
// tasks.
//
// Several control planes may run on one machine (test files run in
// parallel): each claims its /16 and names by creating a directory under
// /run/lokistack-local (mkdir is atomic), and the next one to start removes
// the leftovers of any whose process is gone.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { run } from "./host.ts";

const STATE_DIR = "/run/lokistack-local";

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Every task namespace of one network (and any process still in it), then its bridge. */
async function removeLinks(ip: string, instance: string): Promise<void> {
  const namespaces = await run(ip, ["netns", "list"]).catch(() => "");
  for (const [name] of namespaces.matchAll(new RegExp(`^lsk${instance}-\\S+`, "gm"))) {
    const pids = await run(ip, ["netns", "pids", name]).catch(() => "");
    for (const pid of pids.split("\n").filter(Boolean)) {
      try {
        process.kill(Number(pid), "SIGKILL");
      } catch {
        // gone already
      }
    }
    await run(ip, ["netns", "delete", name]).catch(() => undefined);
  }
  await run(ip, ["link", "delete", `lsk${instance}br`]).catch(() => undefined);
}

export class TaskNetwork {
  private readonly free: number[] = [];
  private nextHost = 2;

  private constructor(
    private readonly ip: string,
    /** 4 hex characters that prefix every name this network creates. */
    readonly instance: string,
    /** The second octet of 10.x.0.0/16. */
    private readonly octet: number,
  ) {}

  get gateway(): string {
    return `10.${this.octet}.0.1`;
  }

  get cidr(): string {
    return `10.${this.octet}.0.0/16`;
  }

  private get bridge(): string {
    return `lsk${this.instance}br`; // removeLinks knows this name too
  }

  /** Creates the bridge on a /16 no other network on this machine uses. */
  static async create(ip: string): Promise<TaskNetwork> {
    mkdirSync(STATE_DIR, { recursive: true });
    await TaskNetwork.sweep(ip);
    const used = await run(ip, ["-4", "-o", "addr", "show"]);
    const routes = await run(ip, ["-4", "route", "show"]);
    const taken = new Set([...`${used}\n${routes}`.matchAll(/\b10\.(\d+)\./g)].map((m) => Number(m[1])));
    const instance = randomBytes(2).toString("hex");
    for (let octet = 200; octet < 255; octet++) {
      if (taken.has(octet)) continue;
      try {
        mkdirSync(join(STATE_DIR, `subnet-${octet}`));
      } catch {
        continue; // another control plane holds it
      }
      writeFileSync(join(STATE_DIR, `subnet-${octet}`, "owner"), `${process.pid} ${instance}`);
      const net = new TaskNetwork(ip, instance, octet);
      try {
        await run(ip, ["-batch", "-"], [`link add ${net.bridge} type bridge`, `addr add ${net.gateway}/16 dev ${net.bridge}`, `link set ${net.bridge} up`].join("\n") + "\n");
      } catch (e) {
        await net.destroy();
        throw e;
      }
      return net;
    }
    throw new Error("no free 10.x.0.0/16 between 10.200 and 10.254 for the task network");
  }

  /** Removes what control planes that are gone left behind. */
  private static async sweep(ip: string): Promise<void> {
    for (const entry of readdirSync(STATE_DIR)) {
      const dir = join(STATE_DIR, entry);
      let owner: string[];
      try {
        owner = readFileSync(join(dir, "owner"), "utf8").split(" ");
      } catch {
        continue; // being created right now
      }
      const [pid, instance] = owner;
      if (alive(Number(pid))) continue;
      await removeLinks(ip, instance!);
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** An address for a new task: what DescribeTasks shows from PROVISIONING on. */
  allocate(): string {
    const n = this.free.shift() ?? this.nextHost++;
    if (n > 65_000) throw new Error("the task network's /16 is full");
    return `10.${this.octet}.${n >> 8}.${n & 255}`;
  }

  release(address: string): void {
    const [, , hi, lo] = address.split(".").map(Number);
    this.free.push((hi! << 8) + lo!);
  }

  namespaceOf(taskId: string): string {
    return `lsk${this.instance}-${taskId.slice(0, 12)}`;
  }

  /** The task's namespace with eth0 at `address`, its default route through the gateway. */
  async attach(taskId: string, address: string): Promise<string> {
    const ns = this.namespaceOf(taskId);
    const veth = `lsk${this.instance}${taskId.slice(0, 8)}`;
    await run(this.ip, ["netns", "add", ns]);
    await run(this.ip, ["-batch", "-"], [`link add ${veth} type veth peer name eth0 netns ${ns}`, `link set ${veth} master ${this.bridge} up`].join("\n") + "\n");
    await run(this.ip, ["-n", ns, "-batch", "-"], [`addr add ${address}/16 dev eth0`, "link set lo up", "link set eth0 up", `route add default via ${this.gateway}`].join("\n") + "\n");
    return ns;
  }

  /** Deleting the namespace deletes its end of the veth pair, and with it ours. */
  async detach(taskId: string): Promise<void> {
    await run(this.ip, ["netns", "delete", this.namespaceOf(taskId)]).catch(() => undefined);
  }

  async destroy(): Promise<void> {
    await removeLinks(this.ip, this.instance);
    rmSync(join(STATE_DIR, `subnet-${this.octet}`), { recursive: true, force: true });
  }
}
