// One real task from PROVISIONING to STOPPED, as the ECS agent on Fargate runs
// it: network first, then the "pull" (the image must map to local files) and
// the secrets (from the local SSM), then each container as soon as its
// dependsOn conditions hold, health checks inside the container, and on stop
// each container signalled in reverse dependency order with SIGTERM and,
// after its stopTimeout, SIGKILL. The runner reads this object's fields on
// every scheduler tick and turns them into the task's ECS state.
import { chmodSync, chownSync, existsSync, mkdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { execInContainer, startContainer, type ContainerProcess } from "./container.ts";
import type { HostTools } from "./host.ts";
import type { ImageStore, LocalImage } from "./images.ts";
import type { TaskNetwork } from "./network.ts";

/** A container definition as DescribeTaskDefinition returns it (the fields a runner uses). */
export interface ContainerDefinition {
  name: string;
  image: string;
  essential?: boolean;
  entryPoint?: string[];
  command?: string[];
  environment?: { name: string; value: string }[];
  secrets?: { name: string; valueFrom: string }[];
  mountPoints?: { sourceVolume: string; containerPath: string; readOnly?: boolean }[];
  dependsOn?: { containerName: string; condition: "START" | "COMPLETE" | "SUCCESS" | "HEALTHY" }[];
  healthCheck?: { command: string[]; interval?: number; timeout?: number; retries?: number; startPeriod?: number };
  stopTimeout?: number;
  user?: string;
  workingDirectory?: string;
}

export interface VolumeDefinition {
  name: string;
  efsVolumeConfiguration?: { fileSystemId: string; rootDirectory?: string; authorizationConfig?: { accessPointId?: string } };
}

/**
 * An EFS access point: the directory it roots clients at, created on first use as
 * `creationInfo` says. Its POSIX user (every file operation as that uid) is not
 * modeled: that takes an NFS server, not a bind mount.
 */
export interface EfsAccessPoint {
  fileSystemId: string;
  rootDirectory: string;
  creationInfo?: { ownerUid: number; ownerGid: number; permissions: string };
}

export interface TaskEnvironment {
  tools: HostTools;
  images: ImageStore;
  network: TaskNetwork;
  runDir: string;
  region: string;
  accessPoints: Record<string, EfsAccessPoint>;
  /** An SSM parameter's value by name or ARN, as the agent reads `secrets`; undefined when there is none. */
  secret(valueFrom: string): string | undefined;
  /** Credentials the task role stands for, as environment variables. */
  credentials(taskRoleArn: string | undefined): Record<string, string>;
}

export type ContainerStatus = "PENDING" | "RUNNING" | "STOPPED";
export type Health = "UNKNOWN" | "HEALTHY" | "UNHEALTHY";

/** A promise with its resolver: the container milestones other containers wait on. */
class Milestone<T> {
  resolve!: (value: T) => void;
  readonly promise = new Promise<T>((r) => (this.resolve = r));
}

export class ContainerRun {
  status: ContainerStatus = "PENDING";
  health: Health = "UNKNOWN";
  exitCode?: number;
  reason?: string;
  process?: ContainerProcess;
  user = { uid: 0, gid: 0 };
  env: Record<string, string> = {};
  readonly started = new Milestone<boolean>();
  readonly exited = new Milestone<number | undefined>();
  readonly healthy = new Milestone<boolean>();

  constructor(readonly def: ContainerDefinition) {}

  get essential(): boolean {
    return this.def.essential ?? true;
  }

  /** Never started: every milestone settles so nothing waits on it forever. */
  abandon(reason: string): void {
    if (this.status !== "PENDING") return;
    this.status = "STOPPED";
    this.reason = reason;
    this.started.resolve(false);
    this.healthy.resolve(false);
    this.exited.resolve(undefined);
  }
}

const FARGATE_STOP_TIMEOUT = 30;

/** Where a container's stdout and stderr go: what awslogs would ship. */
export function logPath(runDir: string, taskId: string, container: string): string {
  return join(runDir, "logs", taskId, `${container}.log`);
}

/**
 * A host path under `root` (created if missing), refusing any that would lead outside it:
 * `..` in a name, or a symlink a container planted in a shared volume along the way.
 */
function inside(root: string, ...parts: string[]): string {
  mkdirSync(root, { recursive: true });
  const path = resolve(root, ...parts.map((p) => p.replace(/^\/+/, "")));
  const realRoot = realpathSync(root);
  let existing = path;
  while (!existsSync(existing)) existing = dirname(existing);
  const real = realpathSync(existing);
  const under = (p: string, r: string) => p === r || p.startsWith(`${r}/`);
  if (!under(path, root) || !under(real, realRoot)) throw new Error(`${parts.join("/")} leads outside ${root}`);
  return path;
}

const hasHealthCheck = (def: ContainerDefinition) => (def.healthCheck?.command.length ?? 0) > 0 && def.healthCheck?.command[0] !== "NONE";

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

const PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The users every local image's /etc/passwd and /etc/group know (see etcFiles). */
const USERS: Record<string, number> = { root: 0, loki: 10001, nobody: 65534, nogroup: 65534 };

/** A container definition's `user` (uid, user, uid:gid, user:group); undefined when a name is unknown, as Docker refuses it. */
function parseUser(user: string | undefined, image: LocalImage): { uid: number; gid: number } | undefined {
  if (!user) return image.user;
  const id = (s: string) => (/^\d+$/.test(s) ? Number(s) : USERS[s]);
  const [u = "", g] = user.split(":");
  const uid = id(u);
  const gid = g === undefined ? uid : id(g);
  return uid === undefined || gid === undefined ? undefined : { uid, gid };
}

export class TaskRun {
  readonly containers: ContainerRun[];
  /** The task's namespace exists and has its address. */
  provisioned = false;
  /** Why the task cannot run (an image or secret it cannot get, a dependency that failed). */
  failure?: { stopCode: string; reason: string };
  /** An essential container exited on its own. */
  essentialExit?: { container: string; exitCode: number };
  containersStopped = false;
  released = false;
  private stopping = false;
  private readonly abort = new AbortController();
  private readonly dir: string;
  private launching?: Promise<void>;

  constructor(
    private readonly env: TaskEnvironment,
    readonly id: string,
    readonly address: string,
    private readonly definition: { containers: ContainerDefinition[]; volumes: VolumeDefinition[]; taskRoleArn?: string },
  ) {
    this.containers = definition.containers.map((d) => new ContainerRun(d));
    this.dir = join(env.runDir, "tasks", id);
  }

  get hostname(): string {
    return `ip-${this.address.replaceAll(".", "-")}`;
  }

  logFile(container: string): string {
    return logPath(this.env.runDir, this.id, container);
  }

  /** Every essential container runs: the task is RUNNING. */
  get essentialsRunning(): boolean {
    return this.containers.every((c) => !c.essential || c.status === "RUNNING");
  }

  /** The task's health: UNHEALTHY if an essential container is, HEALTHY when every essential one with a check is. */
  get health(): Health {
    const checked = this.containers.filter((c) => c.essential && c.def.healthCheck);
    if (checked.some((c) => c.health === "UNHEALTHY")) return "UNHEALTHY";
    return checked.length > 0 && checked.every((c) => c.health === "HEALTHY") ? "HEALTHY" : "UNKNOWN";
  }

  launch(): void {
    this.launching = this.provisionAndStart().catch((e: unknown) => {
      this.failure ??= { stopCode: "TaskFailedToStart", reason: `ResourceInitializationError: ${e instanceof Error ? e.message : String(e)}` };
    });
  }

  private async provisionAndStart(): Promise<void> {
    const volumes = this.volumes();
    mkdirSync(join(this.env.runDir, "logs", this.id), { recursive: true });
    const etc = this.etcFiles();
    const netns = await this.env.network.attach(this.id, this.address);
    this.provisioned = true;
    if (this.stopping) return;

    // The "pull": every image must map to local files before any container starts.
    const images = new Map<string, LocalImage>();
    for (const c of this.containers) {
      const image = this.env.images.resolve(c.def.image);
      if ("error" in image) {
        this.failure = { stopCode: "TaskFailedToStart", reason: image.error };
        return;
      }
      images.set(c.def.name, image);
    }
    // Secrets are read once, at start, by the agent (with the execution role).
    const missing: string[] = [];
    for (const c of this.containers) {
      const image = images.get(c.def.name)!;
      const user = parseUser(c.def.user, image);
      if (!user) {
        this.failure = { stopCode: "TaskFailedToStart", reason: `CannotStartContainerError: ${c.def.name}: unable to find user ${c.def.user}: no matching entries in passwd file` };
        return;
      }
      c.user = user;
      c.env = {
        PATH,
        HOSTNAME: this.hostname,
        HOME: c.user.uid === 0 ? "/root" : "/",
        AWS_REGION: this.env.region,
        AWS_DEFAULT_REGION: this.env.region,
        AWS_EXECUTION_ENV: "AWS_ECS_FARGATE",
        ...this.env.credentials(this.definition.taskRoleArn),
      };
      for (const e of c.def.environment ?? []) c.env[e.name] = e.value;
      for (const s of c.def.secrets ?? []) {
        const value = this.env.secret(s.valueFrom);
        if (value === undefined) missing.push(s.valueFrom);
        else c.env[s.name] = value;
      }
    }
    if (missing.length > 0) {
      this.failure = {
        stopCode: "TaskFailedToStart",
        reason: `ResourceInitializationError: unable to pull secrets or registry auth: unable to retrieve secrets from ssm: service call has been retried 1 time(s): invalid parameters: ${missing.join(", ")}`,
      };
      return;
    }
    const cycle = this.dependencyCycle();
    if (cycle) {
      this.failure = { stopCode: "TaskFailedToStart", reason: `CannotStartContainerError: the containers' dependsOn form a cycle: ${cycle.join(" → ")}` };
      return;
    }
    await Promise.all(this.containers.map((c) => this.startWhenReady(c, images.get(c.def.name)!, netns, volumes, etc)));
  }

  /** Fresh directories for bind-mount volumes (root, 0755, as on Fargate); EFS volumes shared by file system and path. */
  private volumes(): Map<string, string> {
    const out = new Map<string, string>();
    for (const v of this.definition.volumes) {
      const efs = v.efsVolumeConfiguration;
      if (!efs) {
        const dir = inside(join(this.dir, "volumes"), v.name);
        mkdirSync(dir, { recursive: true });
        chmodSync(dir, 0o755);
        out.set(v.name, dir);
        continue;
      }
      const apId = efs.authorizationConfig?.accessPointId;
      const fsRoot = inside(join(this.env.runDir, "efs"), efs.fileSystemId);
      mkdirSync(fsRoot, { recursive: true });
      chmodSync(fsRoot, 0o755); // an EFS file system's root: root's, 0755 (whatever this process's umask)
      if (apId) {
        const ap = this.env.accessPoints[apId];
        if (!ap || ap.fileSystemId !== efs.fileSystemId) {
          throw new Error(`failed to invoke EFS utils commands to set up EFS volumes: access point ${apId} of ${efs.fileSystemId} not found`);
        }
        const dir = inside(fsRoot, ap.rootDirectory);
        // EFS creates an access point's root directory on first mount, owned as creationInfo says.
        if (ap.creationInfo) {
          if (!isDirectory(dir)) {
            mkdirSync(dir, { recursive: true, mode: 0o755 });
            chownSync(dir, ap.creationInfo.ownerUid, ap.creationInfo.ownerGid);
            chmodSync(dir, Number.parseInt(ap.creationInfo.permissions, 8));
          }
        } else if (!isDirectory(dir)) {
          throw new Error(`failed to invoke EFS utils commands to set up EFS volumes: access point ${apId}: root directory ${ap.rootDirectory} does not exist and the access point has no creationInfo`);
        }
        out.set(v.name, dir);
        continue;
      }
      // Without an access point the rootDirectory must exist: EFS does not create it.
      const dir = inside(fsRoot, efs.rootDirectory ?? "/");
      if (!isDirectory(dir)) {
        throw new Error(
          `failed to invoke EFS utils commands to set up EFS volumes: mount.nfs4: mounting ${efs.fileSystemId}:${efs.rootDirectory} failed, reason given by server: No such file or directory`,
        );
      }
      out.set(v.name, dir);
    }
    return out;
  }

  private etcFiles() {
    const etc = join(this.dir, "etc");
    mkdirSync(etc, { recursive: true });
    const files = {
      resolv: join(etc, "resolv.conf"),
      hosts: join(etc, "hosts"),
      passwd: join(etc, "passwd"),
      group: join(etc, "group"),
    };
    writeFileSync(files.resolv, `nameserver ${this.env.network.gateway}\n`);
    writeFileSync(files.hosts, `127.0.0.1 localhost\n${this.address} ${this.hostname}\n`);
    writeFileSync(files.passwd, "root:x:0:0:root:/root:/bin/sh\nloki:x:10001:10001:loki:/:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n");
    writeFileSync(files.group, "root:x:0:\nloki:x:10001:\nnogroup:x:65534:\n");
    for (const f of Object.values(files)) chmodSync(f, 0o644); // readable by the image's user whatever our umask
    return files;
  }

  private async startWhenReady(c: ContainerRun, image: LocalImage, netns: string, volumes: Map<string, string>, etc: ReturnType<TaskRun["etcFiles"]>): Promise<void> {
    for (const dep of c.def.dependsOn ?? []) {
      const target = this.containers.find((o) => o.def.name === dep.containerName);
      const met = target ? await this.conditionMet(target, dep.condition) : false;
      if (!met) {
        const reason = `dependency ${dep.containerName} did not reach ${dep.condition}${target?.exitCode !== undefined ? ` (exit code ${target.exitCode})` : ""}`;
        c.abandon(reason);
        if (c.essential && !this.stopping) this.failure ??= { stopCode: "TaskFailedToStart", reason: `CannotStartContainerError: ${c.def.name}: ${reason}` };
        return;
      }
    }
    if (this.stopping) return c.abandon("the task stopped before the container started");
    const entryPoint = c.def.entryPoint ?? image.entryPoint;
    const command = c.def.command ?? (c.def.entryPoint ? [] : image.command);
    c.process = startContainer(this.env.tools, {
      netns,
      hostname: this.hostname,
      image,
      user: c.user,
      argv: [...entryPoint, ...command],
      env: c.env,
      mounts: (c.def.mountPoints ?? []).flatMap((m) => {
        const source = volumes.get(m.sourceVolume);
        return source ? [{ source, target: m.containerPath, readOnly: m.readOnly ?? false }] : [];
      }),
      etc,
      ...(c.def.workingDirectory ? { workingDirectory: c.def.workingDirectory } : {}),
      logFile: this.logFile(c.def.name),
    });
    c.status = "RUNNING";
    c.started.resolve(true);
    void c.process.exited.then((code) => {
      c.status = "STOPPED";
      c.exitCode = code;
      c.exited.resolve(code);
      c.healthy.resolve(false);
      if (c.essential && !this.stopping) this.essentialExit ??= { container: c.def.name, exitCode: code };
    });
    if (hasHealthCheck(c.def)) void this.checkHealth(c);
  }

  private async conditionMet(dep: ContainerRun, condition: string): Promise<boolean> {
    if (!(await dep.started.promise)) return false;
    if (condition === "START") return true;
    if (condition === "HEALTHY") return hasHealthCheck(dep.def) && dep.healthy.promise;
    const code = await dep.exited.promise;
    return condition === "COMPLETE" ? code !== undefined : code === 0;
  }

  /** Docker's health check loop: every `interval` seconds; failures count after `startPeriod` or the first success. */
  private async checkHealth(c: ContainerRun): Promise<void> {
    const hc = c.def.healthCheck!;
    const [kind, ...rest] = hc.command;
    const argv = kind === "CMD-SHELL" ? ["/bin/sh", "-c", rest.join(" ")] : kind === "CMD" ? rest : hc.command;
    const interval = (hc.interval ?? 30) * 1000;
    const graceUntil = Date.now() + (hc.startPeriod ?? 0) * 1000;
    let failures = 0;
    let succeeded = false;
    const pid = await c.process!.pid;
    if (pid === undefined) return;
    while (c.status === "RUNNING") {
      try {
        await sleep(interval, undefined, { signal: this.abort.signal });
      } catch {
        return;
      }
      if (c.status !== "RUNNING") return;
      const code = await execInContainer(this.env.tools, pid, c.user, argv, c.env, (hc.timeout ?? 5) * 1000);
      if (c.status !== "RUNNING") return;
      if (code === 0) {
        failures = 0;
        succeeded = true;
        c.health = "HEALTHY";
        c.healthy.resolve(true);
      } else if (succeeded || Date.now() >= graceUntil) {
        failures += 1;
        if (failures >= (hc.retries ?? 3)) {
          c.health = "UNHEALTHY";
          c.healthy.resolve(false);
        }
      }
    }
  }

  /**
   * Stops every container as ECS does: those no running container depends on first, each
   * with SIGTERM and after its stopTimeout SIGKILL, then the next level; then frees the network.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const c of this.containers) if (!c.process) c.abandon("the task stopped before the container started");
    for (const level of this.stopLevels()) {
      await Promise.all(
        level.map(async (c) => {
          if (c.status !== "RUNNING") return;
          c.process!.signal("SIGTERM");
          const timeout = Math.min(c.def.stopTimeout ?? FARGATE_STOP_TIMEOUT, 120) * 1000;
          const done = await Promise.race([c.exited.promise.then(() => true), sleep(timeout, false, { signal: this.abort.signal }).catch(() => false)]);
          if (!done) c.process!.signal("SIGKILL");
          await c.exited.promise;
        }),
      );
    }
    this.containersStopped = true;
    await this.release();
    this.released = true;
  }

  /** Kills everything at once, for a control plane that is shutting down. */
  async kill(): Promise<void> {
    this.stopping = true;
    for (const c of this.containers) {
      c.abandon("the control plane stopped");
      c.process?.signal("SIGKILL");
    }
    await Promise.all(this.containers.map((c) => c.exited.promise));
    await this.release();
  }

  /** Frees what the task held; never throws, so a task always reaches STOPPED. */
  private async release(): Promise<void> {
    await this.launching;
    this.abort.abort(); // health checks and stop timers
    await this.env.network.detach(this.id);
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch {
      // a volume still busy: the run directory goes with the control plane
    }
  }

  /** The containers' dependsOn as a cycle of names, if they form one (ECS would never start such a task). */
  private dependencyCycle(): string[] | undefined {
    const byName = new Map(this.containers.map((c) => [c.def.name, c]));
    const visit = (c: ContainerRun, path: string[]): string[] | undefined => {
      if (path.includes(c.def.name)) return [...path.slice(path.indexOf(c.def.name)), c.def.name];
      for (const d of c.def.dependsOn ?? []) {
        const dep = byName.get(d.containerName);
        const cycle = dep && visit(dep, [...path, c.def.name]);
        if (cycle) return cycle;
      }
      return undefined;
    };
    for (const c of this.containers) {
      const cycle = visit(c, []);
      if (cycle) return cycle;
    }
    return undefined;
  }

  /** Stop levels: first the containers nothing depends on, then those only they depended on, and so on. */
  private stopLevels(): ContainerRun[][] {
    const level = new Map<ContainerRun, number>();
    const depth = (c: ContainerRun, seen: Set<ContainerRun>): number => {
      if (level.has(c)) return level.get(c)!;
      if (seen.has(c)) return 0; // a cycle: never started, nothing to order
      seen.add(c);
      const dependents = this.containers.filter((o) => o.def.dependsOn?.some((d) => d.containerName === c.def.name));
      const n = dependents.length === 0 ? 0 : 1 + Math.max(...dependents.map((o) => depth(o, seen)));
      level.set(c, n);
      return n;
    };
    const levels: ContainerRun[][] = [];
    for (const c of this.containers) (levels[depth(c, new Set())] ??= []).push(c);
    return levels.filter(Boolean);
  }
}
