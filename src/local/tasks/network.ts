// awsvpc for real tasks: the control plane's "VPC" is a Linux bridge with a
// private /16; every task gets its own network namespace, a veth pair into the
// bridge and one address from the /16, so each Loki binds its usual ports on
// its own IP as on Fargate. The bridge's first address is the VPC's gateway,
// where the control plane's endpoint and the VPC DNS resolver listen for the
// tasks.
//
// Several control planes may run on one machine (test files run in
// parallel). Each claims a /16 by renaming a directory holding its pid to
// /run/lokistack-local/subnet-<octet> (rename is atomic and fails when the
// name exists), and names everything it creates after that octet, so two
// control planes never share a name. The next one to start removes the
// leftovers of any whose process is gone.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "./host.ts";

const STATE_DIR = "/run/lokistack-local";
const FIRST_OCTET = 200;
const LAST_OCTET = 254;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

const bridgeName = (octet: number) => `lsk${octet}br`;
const namespacePrefix = (octet: number) => `lsk${octet}-`;

/** Kills what still runs in a namespace, then deletes it (its end of the veth pair goes with it, and ours too). */
async function deleteNamespace(ip: string, name: string): Promise<void> {
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

/** Every task namespace of one network, then its bridge. */
async function removeNetwork(ip: string, octet: number): Promise<void> {
  const namespaces = await run(ip, ["netns", "list"]).catch(() => "");
  for (const line of namespaces.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    if (name.startsWith(namespacePrefix(octet))) await deleteNamespace(ip, name);
  }
  await run(ip, ["link", "delete", bridgeName(octet)]).catch(() => undefined);
}

export class TaskNetwork {
  private readonly free: number[] = [];
  private readonly allocated = new Set<string>();
  private nextHost = 2;

  private constructor(
    private readonly ip: string,
    /** The second octet of 10.x.0.0/16, which also names everything this network creates. */
    private readonly octet: number,
  ) {}

  get gateway(): string {
    return `10.${this.octet}.0.1`;
  }

  get cidr(): string {
    return `10.${this.octet}.0.0/16`;
  }

  /** Creates the bridge on a /16 no other network on this machine uses. */
  static async create(ip: string): Promise<TaskNetwork> {
    mkdirSync(STATE_DIR, { recursive: true });
    await TaskNetwork.sweep(ip);
    const used = await run(ip, ["-4", "-o", "addr", "show"]);
    const routes = await run(ip, ["-4", "route", "show"]);
    const taken = new Set([...`${used}\n${routes}`.matchAll(/\b10\.(\d+)\./g)].map((m) => Number(m[1])));
    for (let octet = FIRST_OCTET; octet <= LAST_OCTET; octet++) {
      if (taken.has(octet) || !claim(octet)) continue;
      const net = new TaskNetwork(ip, octet);
      try {
        await run(ip, ["-batch", "-"], [`link add ${bridgeName(octet)} type bridge`, `addr add ${net.gateway}/16 dev ${bridgeName(octet)}`, `link set ${bridgeName(octet)} up`].join("\n") + "\n");
      } catch (e) {
        await net.destroy();
        throw e;
      }
      return net;
    }
    throw new Error(`no free 10.x.0.0/16 between 10.${FIRST_OCTET} and 10.${LAST_OCTET} for the task network`);
  }

  /** Removes what control planes that are gone left behind. */
  private static async sweep(ip: string): Promise<void> {
    for (const entry of readdirSync(STATE_DIR)) {
      const m = /^subnet-(\d+)$/.exec(entry);
      if (!m) continue;
      let pid: number;
      try {
        pid = Number(readFileSync(join(STATE_DIR, entry, "owner"), "utf8"));
      } catch {
        continue;
      }
      if (alive(pid)) continue;
      // Take it away from other sweepers first: only one of them wins the rename.
      const tombstone = join(STATE_DIR, `gone-${entry}-${process.pid}`);
      try {
        renameSync(join(STATE_DIR, entry), tombstone);
      } catch {
        continue;
      }
      await removeNetwork(ip, Number(m[1]));
      rmSync(tombstone, { recursive: true, force: true });
    }
  }

  /** An address for a new task: what DescribeTasks shows from PROVISIONING on. */
  allocate(): string {
    const n = this.free.shift() ?? this.nextHost++;
    if (n > 65_000) throw new Error("the task network's /16 is full");
    const address = `10.${this.octet}.${n >> 8}.${n & 255}`;
    this.allocated.add(address);
    return address;
  }

  /** Whether this network gave out `address` (a task from saved state has someone else's). */
  owns(address: string): boolean {
    return this.allocated.has(address);
  }

  release(address: string): void {
    if (!this.allocated.delete(address)) return;
    const [, , hi, lo] = address.split(".").map(Number);
    this.free.push((hi! << 8) + lo!);
  }

  namespaceOf(taskId: string): string {
    return `${namespacePrefix(this.octet)}${taskId.slice(0, 12)}`;
  }

  /** The task's namespace with eth0 at `address`, its default route through the gateway. */
  async attach(taskId: string, address: string): Promise<string> {
    const ns = this.namespaceOf(taskId);
    const veth = `lsk${this.octet}${taskId.slice(0, 8)}`;
    await run(this.ip, ["netns", "add", ns]);
    await run(this.ip, ["-batch", "-"], [`link add ${veth} type veth peer name eth0 netns ${ns}`, `link set ${veth} master ${bridgeName(this.octet)} up`].join("\n") + "\n");
    await run(this.ip, ["-n", ns, "-batch", "-"], [`addr add ${address}/16 dev eth0`, "link set lo up", "link set eth0 up", `route add default via ${this.gateway}`].join("\n") + "\n");
    return ns;
  }

  /** Removes the task's namespace and anything still running in it. */
  async detach(taskId: string): Promise<void> {
    await deleteNamespace(this.ip, this.namespaceOf(taskId));
  }

  async destroy(): Promise<void> {
    await removeNetwork(this.ip, this.octet);
    rmSync(join(STATE_DIR, `subnet-${this.octet}`), { recursive: true, force: true });
  }
}

/** Claims a /16: a directory with our pid, renamed into place; false when another control plane holds it. */
function claim(octet: number): boolean {
  const pending = mkdtempSync(join(STATE_DIR, "claim-"));
  writeFileSync(join(pending, "owner"), String(process.pid));
  try {
    renameSync(pending, join(STATE_DIR, `subnet-${octet}`));
    return true;
  } catch {
    rmSync(pending, { recursive: true, force: true });
    return false;
  }
}
