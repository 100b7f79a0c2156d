// Real tasks: the control plane's tasks as process trees with Fargate's
// semantics (see task-run.ts), on a private bridge network with the VPC's
// DNS for the Cloud Map namespaces. The scheduler asks this runner to move
// each live task along on every tick; the runner answers from what the
// processes did.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TaskLifecycle } from "../ecs/scheduler.ts";
import { moveTask, type TaskDefinitionState, type TaskState } from "../ecs/model.ts";
import { DnsServer, type DnsLookup } from "./dns.ts";
import { checkHost, isExecutableFile, onPath, type HostTools } from "./host.ts";
import { ImageStore } from "./images.ts";
import { TaskNetwork } from "./network.ts";
import { logPath, TaskRun, type ContainerDefinition, type EfsAccessPoint, type VolumeDefinition } from "./task-run.ts";

export interface RealTasksOptions {
  /** The Loki binary grafana/loki images run; default LOKI_BIN, then `loki` on PATH. */
  lokiBin?: string;
  /** Where tasks' volumes, logs and the image roots live; default a new directory under the OS temp dir. */
  runDir?: string;
  /** Keep the run directory (the container logs) after the control plane stops; a given `runDir` is always kept. */
  keepRunDir?: boolean;
  /** EFS access points by id, as `efsVolumeConfiguration.authorizationConfig.accessPointId` names them. */
  efsAccessPoints?: Record<string, EfsAccessPoint>;
}

/** What the runner needs from the control plane around it. */
export interface RunnerHost {
  region: string;
  secret(valueFrom: string): string | undefined;
  dns: DnsLookup;
  /** Opens the control plane's endpoint on `address` too; resolves to the URL tasks use. */
  listenOn(address: string): Promise<string>;
  /** Asks ECS to stop a task (an essential container exited, the task could not start). */
  stopTask(task: TaskState, stopCode: string, reason: string): void;
}

/** Real tasks cannot run here; `missing` says what to install or change. */
export class RealTasksUnavailable extends Error {
  constructor(readonly missing: string[]) {
    super(`real tasks need what this machine lacks:\n${missing.map((m) => `  - ${m}`).join("\n")}`);
  }
}

/** The Loki binary real tasks would use: the option, LOKI_BIN, then `loki` on PATH; undefined unless it is an executable file. */
export function findLokiBinary(option?: string): string | undefined {
  const candidate = option ?? (process.env.LOKI_BIN || undefined);
  if (candidate === undefined) return onPath("loki");
  return isExecutableFile(candidate) ? candidate : undefined;
}

export class RealTaskRunner implements TaskLifecycle {
  private readonly runs = new Map<string, TaskRun>();

  private constructor(
    private readonly host: RunnerHost,
    private readonly tools: HostTools,
    private readonly network: TaskNetwork,
    private readonly dns: DnsServer,
    private readonly images: ImageStore,
    readonly runDir: string,
    /** The control plane's endpoint as tasks reach it (the VPC gateway). */
    readonly taskEndpoint: string,
    private readonly options: RealTasksOptions,
  ) {}

  /** Checks the machine, then brings up the task network, its DNS and the endpoint on the gateway. */
  static async create(host: RunnerHost, options: RealTasksOptions = {}): Promise<RealTaskRunner> {
    const check = checkHost();
    if (!check.ok) throw new RealTasksUnavailable(check.missing);
    const runDir = options.runDir ?? mkdtempSync(join(tmpdir(), "lokistack-tasks-"));
    mkdirSync(runDir, { recursive: true });
    const network = await TaskNetwork.create(check.tools.ip);
    const dns = new DnsServer(host.dns);
    try {
      await dns.listen(network.gateway);
      const taskEndpoint = await host.listenOn(network.gateway);
      const lokiBin = findLokiBinary(options.lokiBin);
      const images = new ImageStore(join(runDir, "images"), { busybox: check.tools.busybox, ...(lokiBin ? { lokiBin } : {}) });
      return new RealTaskRunner(host, check.tools, network, dns, images, runDir, taskEndpoint, options);
    } catch (e) {
      dns.close();
      await network.destroy();
      throw e;
    }
  }

  /** The task's private IP, from the task network (what DescribeTasks shows). */
  allocateAddress(): string {
    return this.network.allocate();
  }

  /** The task network's address range. */
  get cidr(): string {
    return this.network.cidr;
  }

  /** The network namespace (`ip netns` name) a task's processes run in. */
  namespaceOf(task: TaskState): string {
    return this.network.namespaceOf(task.id);
  }

  /** Where a container's stdout and stderr go (awslogs, here). */
  logFile(task: TaskState, container: string): string {
    return logPath(this.runDir, task.id, container);
  }

  advance(t: TaskState, td: TaskDefinitionState | undefined, now: number): void {
    if (t.lastStatus === "STOPPED") return;
    let run = this.runs.get(t.arn);
    if (!run) {
      if (t.lastStatus !== "PROVISIONING" || !td || !this.network.owns(t.privateIp)) {
        // A task from saved state: its processes are gone with the control plane that ran them.
        if (t.desiredStatus === "RUNNING") this.host.stopTask(t, "InfrastructureHealth", "Task stopped because the underlying infrastructure was unhealthy.");
        moveTask(t, "STOPPED");
        t.stoppedAt = now;
        t.executionStoppedAt ??= now;
        return;
      }
      run = new TaskRun(this.environment(), t.id, t.privateIp, {
        containers: (td.body.containerDefinitions ?? []) as ContainerDefinition[],
        volumes: (td.body.volumes ?? []) as VolumeDefinition[],
        ...(typeof td.body.taskRoleArn === "string" ? { taskRoleArn: td.body.taskRoleArn } : {}),
      });
      this.runs.set(t.arn, run);
      run.launch();
    }
    this.report(t, run);
    if (t.desiredStatus === "STOPPED") {
      void run.stop(); // never rejects: release() swallows what it cannot undo
      if (t.lastStatus === "STOPPING" && run.containersStopped) {
        t.executionStoppedAt = now;
        moveTask(t, "DEPROVISIONING");
      } else if (t.lastStatus === "DEPROVISIONING" && run.released) {
        moveTask(t, "STOPPED");
        t.stoppedAt = now;
        this.runs.delete(t.arn);
        this.network.release(t.privateIp);
      } else if (t.lastStatus !== "STOPPING" && t.lastStatus !== "DEPROVISIONING") {
        moveTask(t, "STOPPING");
      }
      return;
    }
    if (run.failure) return this.host.stopTask(t, run.failure.stopCode, run.failure.reason);
    if (run.essentialExit) return this.host.stopTask(t, "EssentialContainerExited", "Essential container in task exited");
    if (t.lastStatus === "PROVISIONING" && run.provisioned) {
      t.pullStartedAt = now;
      moveTask(t, "PENDING");
    } else if (t.lastStatus === "PENDING" && run.essentialsRunning) {
      t.pullStoppedAt = now;
      t.startedAt = now;
      t.connectivityAt = now;
      moveTask(t, "RUNNING");
    } else if (t.lastStatus === "RUNNING" && t.hasHealthCheck && t.healthStatus !== run.health) {
      t.healthStatus = run.health;
      t.version += 1;
    }
  }

  /** Copies each container's status, exit code, health and reason into the task (DescribeTasks shows them). */
  private report(t: TaskState, run: TaskRun): void {
    for (const c of t.containers) {
      const r = run.containers.find((x) => x.def.name === c.name);
      if (!r) continue;
      c.lastStatus = r.status;
      c.healthStatus = r.def.healthCheck ? r.health : "UNKNOWN";
      if (r.exitCode !== undefined) c.exitCode = r.exitCode;
      if (r.reason) c.reason = r.reason;
    }
  }

  private environment() {
    return {
      tools: this.tools,
      images: this.images,
      network: this.network,
      runDir: this.runDir,
      region: this.host.region,
      accessPoints: this.options.efsAccessPoints ?? {},
      secret: (valueFrom: string) => this.host.secret(valueFrom),
      // Tasks get static keys named after their role: the local control plane
      // does not check signatures, and the SDKs' container credentials
      // endpoint only allows 169.254.170.2, which one machine cannot give to
      // several control planes at once.
      credentials: (taskRoleArn: string | undefined) => ({
        AWS_ACCESS_KEY_ID: `task-${(taskRoleArn ?? "none").split("/").pop()}`,
        AWS_SECRET_ACCESS_KEY: "local",
      }),
    };
  }

  /** Kills every task process and removes the network; the run directory too unless kept. */
  async close(): Promise<void> {
    await Promise.all([...this.runs.values()].map((r) => r.kill()));
    this.runs.clear();
    this.dns.close();
    await this.network.destroy();
    if (!this.options.keepRunDir && !this.options.runDir) rmSync(this.runDir, { recursive: true, force: true });
  }
}
