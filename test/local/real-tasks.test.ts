// Real tasks without Loki: BusyBox stand-ins prove the Fargate semantics the
// runner gives every task (its own network namespace and IP, root-owned
// bind mounts, the image's user, dependsOn, secrets, health checks run
// inside the task, stopTimeout, exit codes, DNS for Cloud Map namespaces).
// They need root, iproute2, bubblewrap, util-linux and BusyBox; elsewhere they
// are skipped and say why. A container's command is PID 1 and ignores SIGTERM
// unless it traps it, as in Docker: long-running stand-ins get a short
// stopTimeout so stopping them takes 2 s, not Fargate's default 30 s.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { CreateClusterCommand, CreateServiceCommand, DescribeTasksCommand, ListTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type ContainerDefinition, type EFSVolumeConfiguration, type Task, type Volume } from "@aws-sdk/client-ecs";
import { CreatePrivateDnsNamespaceCommand, CreateServiceCommand as CreateDiscoveryServiceCommand } from "@aws-sdk/client-servicediscovery";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { checkHost } from "../../src/local/tasks/host.ts";
import { eventually, harness, type Harness } from "../helpers/local.ts";

const host = checkHost();
if (!host.ok) console.warn(`real-task tests skipped: this machine lacks\n  ${host.missing.join("\n  ")}`);

const BUSYBOX = "public.ecr.aws/docker/library/busybox:1.36";
const NETWORK = { awsvpcConfiguration: { subnets: ["subnet-0a1b2c3d4e5f60001"], securityGroups: ["sg-0a1b2c3d4e5f60001"] } };

async function realPlane(): Promise<Harness> {
  const h = await harness({ tasks: "real", tickMs: 50, attempts: 3 });
  await h.ecs.send(new CreateClusterCommand({ clusterName: "c" }));
  return h;
}

async function register(h: Harness, family: string, containerDefinitions: ContainerDefinition[], volumes: Volume[] = []): Promise<string> {
  const out = await h.ecs.send(
    new RegisterTaskDefinitionCommand({
      family,
      networkMode: "awsvpc",
      requiresCompatibilities: ["FARGATE"],
      cpu: "256",
      memory: "512",
      executionRoleArn: "arn:aws:iam::123456789012:role/execution",
      containerDefinitions,
      volumes,
    }),
  );
  return out.taskDefinition!.taskDefinitionArn!;
}

async function runTask(h: Harness, taskDefinition: string): Promise<string> {
  const out = await h.ecs.send(new RunTaskCommand({ cluster: "c", taskDefinition, launchType: "FARGATE", networkConfiguration: NETWORK }));
  return out.tasks![0]!.taskArn!;
}

async function describe1(h: Harness, arn: string): Promise<Task> {
  const out = await h.ecs.send(new DescribeTasksCommand({ cluster: "c", tasks: [arn] }));
  return out.tasks![0]!;
}

/** Polls until the task satisfies `ok` (a count of polls, not a clock). */
function until(h: Harness, arn: string, ok: (t: Task) => boolean): Promise<Task> {
  return eventually(async () => {
    const t = await describe1(h, arn);
    return ok(t) ? t : undefined;
  }, 600, 100);
}

const stopped = (t: Task) => t.lastStatus === "STOPPED";
const running = (t: Task) => t.lastStatus === "RUNNING";

function logOf(h: Harness, arn: string, container: string): string {
  const task = h.cp.ecs.state.tasks[arn]!;
  try {
    return readFileSync(h.cp.runner!.logFile(task, container), "utf8");
  } catch {
    return "";
  }
}

function untilLog(h: Harness, arn: string, container: string, text: string | RegExp): Promise<string> {
  return eventually(async () => {
    const log = logOf(h, arn, container);
    return (typeof text === "string" ? log.includes(text) : text.test(log)) ? log : undefined;
  }, 600, 100);
}

describe.skipIf(!host.ok)("real tasks", () => {
  it("give every task its own network namespace and IP on the task network, so two tasks bind the same port", async () => {
    const h = await realPlane();
    const server = await register(h, "server", [
      { name: "web", image: BUSYBOX, command: ["sh", "-c", "mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p 3100 -h /tmp/www"] },
    ]);
    const [a, b] = [await runTask(h, server), await runTask(h, server)];
    const [ta, tb] = [await until(h, a, running), await until(h, b, running)];
    const ipA = ta.containers![0]!.networkInterfaces![0]!.privateIpv4Address!;
    const ipB = tb.containers![0]!.networkInterfaces![0]!.privateIpv4Address!;
    expect(ipA).not.toBe(ipB);
    expect(ipA).toMatch(/^10\.\d+\.\d+\.\d+$/);
    const client = await register(h, "client", [
      { name: "probe", image: BUSYBOX, command: ["sh", "-c", `ip -4 -o addr show eth0; for ip in ${ipA} ${ipB}; do wget -q -O - http://$ip:3100/ || echo "unreachable $ip"; done`] },
    ]);
    const c = await runTask(h, client);
    const done = await until(h, c, stopped);
    const log = logOf(h, c, "probe");
    expect(log).toContain(`ip-${ipA.replaceAll(".", "-")}`);
    expect(log).toContain(`ip-${ipB.replaceAll(".", "-")}`);
    expect(log).not.toContain("unreachable");
    // The probe's only container is essential: its exit stops the task, as on ECS.
    expect(done.stopCode).toBe("EssentialContainerExited");
    expect(done.containers![0]!.exitCode).toBe(0);
  });

  it("mount bind volumes as fresh root-owned 0755 directories: the image's user cannot write until a root container prepares them", async () => {
    const h = await realPlane();
    const probe = "stat -c '%u %a' /loki; touch /loki/probe 2>/dev/null && echo writable || echo read-only";
    const td = await register(
      h,
      "volumes",
      [
        { name: "init", image: BUSYBOX, essential: false, command: ["sh", "-c", `${probe}; mkdir -p /loki/wal && chown -R 10001:10001 /loki && echo prepared`], mountPoints: [{ sourceVolume: "data", containerPath: "/loki" }] },
        {
          name: "app",
          image: BUSYBOX,
          user: "10001",
          command: ["sh", "-c", "id -u; touch /loki/wal/segment && echo wrote; touch /etc/hosts 2>/dev/null || echo etc-read-only; sleep 600"],
          stopTimeout: 2,
          mountPoints: [{ sourceVolume: "data", containerPath: "/loki" }],
          dependsOn: [{ containerName: "init", condition: "SUCCESS" }],
        },
        { name: "fresh", image: BUSYBOX, user: "10001", command: ["sh", "-c", `${probe}; sleep 600`], mountPoints: [{ sourceVolume: "other", containerPath: "/loki" }], stopTimeout: 2 },
      ],
      [{ name: "data" }, { name: "other" }],
    );
    const a = await runTask(h, td);
    await until(h, a, running);
    expect(await untilLog(h, a, "app", "etc-read-only")).toMatch(/^10001\nwrote\netc-read-only/);
    // A volume nobody prepared: root's 0755, not writable for uid 10001.
    expect(await untilLog(h, a, "fresh", /read-only|writable/)).toBe("0 755\nread-only\n");
    expect(logOf(h, a, "init")).toMatch(/^0 755\nwritable\nprepared/);
    // A second task of the same definition starts from a fresh, empty volume.
    const b = await runTask(h, td);
    await until(h, b, running);
    expect(await untilLog(h, b, "init", "prepared")).toMatch(/^0 755\nwritable/);
    await h.ecs.send(new StopTaskCommand({ cluster: "c", task: a }));
    await h.ecs.send(new StopTaskCommand({ cluster: "c", task: b }));
    await until(h, a, stopped);
  });

  it("share EFS volumes across tasks by file system and root directory; an access point creates its root as creationInfo says", async () => {
    const h = await harness({
      tasks: "real",
      tickMs: 50,
      attempts: 3,
      realTasks: { efsAccessPoints: { "fsap-0123456789abcdef0": { fileSystemId: "fs-0123456789abcdef0", rootDirectory: "/wal/ingester-0", creationInfo: { ownerUid: 10001, ownerGid: 10001, permissions: "750" } } } },
    });
    await h.ecs.send(new CreateClusterCommand({ clusterName: "c" }));
    const efs = (name: string, config: Omit<EFSVolumeConfiguration, "fileSystemId">): Volume => ({ name, efsVolumeConfiguration: { fileSystemId: "fs-0123456789abcdef0", transitEncryption: "ENABLED", ...config } });
    const writer = await register(
      h,
      "writer",
      [
        {
          name: "app",
          image: BUSYBOX,
          user: "10001",
          command: ["sh", "-c", "stat -c '%u %a' /wal; echo from-a > /wal/segment && echo wrote; mkdir /shared/dir && echo made"],
          mountPoints: [
            { sourceVolume: "wal", containerPath: "/wal" },
            { sourceVolume: "shared", containerPath: "/shared" },
          ],
        },
      ],
      [efs("wal", { authorizationConfig: { accessPointId: "fsap-0123456789abcdef0", iam: "ENABLED" } }), efs("shared", { rootDirectory: "/" })],
    );
    const a = await runTask(h, writer);
    await until(h, a, stopped);
    // The access point's root was created for uid 10001 (0750); the file system's root is root's 0755.
    expect(logOf(h, a, "app")).toMatch(/^10001 750\nwrote\nmkdir: can't create directory '\/shared\/dir': Permission denied/);
    const reader = await register(
      h,
      "reader",
      [{ name: "app", image: BUSYBOX, user: "10001", command: ["cat", "/wal/segment"], mountPoints: [{ sourceVolume: "wal", containerPath: "/wal" }] }],
      [efs("wal", { authorizationConfig: { accessPointId: "fsap-0123456789abcdef0", iam: "ENABLED" } })],
    );
    const b = await runTask(h, reader);
    await until(h, b, stopped);
    expect(logOf(h, b, "app")).toBe("from-a\n");

    // Without an access point the root directory must exist: EFS does not create it.
    const missing = await register(h, "missing", [{ name: "app", image: BUSYBOX, command: ["true"], mountPoints: [{ sourceVolume: "wal", containerPath: "/wal" }] }], [efs("wal", { rootDirectory: "/wal/nowhere" })]);
    const t = await until(h, await runTask(h, missing), stopped);
    expect(t.stopCode).toBe("TaskFailedToStart");
    expect(t.stoppedReason).toContain("ResourceInitializationError: failed to invoke EFS utils commands to set up EFS volumes");
    expect(t.stoppedReason).toContain("fs-0123456789abcdef0:/wal/nowhere");
  });

  it("start a container only when its dependsOn condition holds, and fail the task when a SUCCESS dependency exits non-zero", async () => {
    const h = await realPlane();
    const td = (initExit: number) =>
      register(h, `deps-${initExit}`, [
        { name: "init", image: BUSYBOX, essential: false, command: ["sh", "-c", `sleep 1; exit ${initExit}`] },
        { name: "main", image: BUSYBOX, command: ["sh", "-c", "echo started; sleep 600"], dependsOn: [{ containerName: "init", condition: "SUCCESS" }] },
      ]);
    const ok = await runTask(h, await td(0));
    const t = await until(h, ok, running);
    expect(t.containers!.find((c) => c.name === "init")).toMatchObject({ lastStatus: "STOPPED", exitCode: 0 });
    expect(await untilLog(h, ok, "main", "started")).toBe("started\n");

    const bad = await runTask(h, await td(3));
    const failed = await until(h, bad, stopped);
    expect(failed.stopCode).toBe("TaskFailedToStart");
    expect(failed.stoppedReason).toContain("dependency init did not reach SUCCESS (exit code 3)");
    expect(failed.containers!.find((c) => c.name === "init")!.exitCode).toBe(3);
    expect(failed.containers!.find((c) => c.name === "main")!.exitCode).toBeUndefined();
    expect(logOf(h, bad, "main")).toBe("");
  });

  it("resolve secrets from the local SSM at start, and refuse to start a task whose secret is missing", async () => {
    const h = await realPlane();
    await h.ssm.send(new PutParameterCommand({ Name: "/app/config", Value: "line one\nline: two", Type: "SecureString" }));
    const td = (valueFrom: string) =>
      register(h, "secrets", [{ name: "app", image: BUSYBOX, command: ["sh", "-c", 'printf "%s" "$CONFIG"'], secrets: [{ name: "CONFIG", valueFrom }] }]);
    const ok = await runTask(h, await td(`arn:aws:ssm:${h.cp.region}:${h.cp.account}:parameter/app/config`));
    await until(h, ok, stopped);
    expect(logOf(h, ok, "app")).toBe("line one\nline: two");

    const missing = await runTask(h, await td("/app/missing"));
    const t = await until(h, missing, stopped);
    expect(t.stopCode).toBe("TaskFailedToStart");
    expect(t.stoppedReason).toContain("ResourceInitializationError: unable to pull secrets");
    expect(t.stoppedReason).toContain("/app/missing");
  });

  it("run the container health check inside the task; ECS replaces a service task that fails it", async () => {
    const h = await realPlane();
    const td = await register(h, "health", [
      {
        name: "app",
        image: BUSYBOX,
        // Healthy while /tmp/ok exists in the container's own /tmp, which the host cannot see.
        command: ["sh", "-c", "touch /tmp/ok; sleep 7; rm /tmp/ok; sleep 600"],
        healthCheck: { command: ["CMD-SHELL", "test -f /tmp/ok"], interval: 5, timeout: 2, retries: 1 },
        stopTimeout: 2,
      },
    ]);
    await h.ecs.send(new CreateServiceCommand({ cluster: "c", serviceName: "health", taskDefinition: td, desiredCount: 1, launchType: "FARGATE", networkConfiguration: NETWORK }));
    const first = await eventually(async () => (await h.ecs.send(new ListTasksCommand({ cluster: "c", serviceName: "health" }))).taskArns?.[0], 600, 100);
    const healthy = await until(h, first, (t) => t.healthStatus === "HEALTHY");
    expect(healthy.containers![0]!.healthStatus).toBe("HEALTHY");
    const replaced = await until(h, first, stopped);
    expect(replaced.healthStatus).toBe("UNHEALTHY");
    expect(replaced.stopCode).toBe("ServiceSchedulerInitiated");
    expect(replaced.stoppedReason).toBe("Task failed container health checks");
    const next = await eventually(async () => (await h.ecs.send(new ListTasksCommand({ cluster: "c", serviceName: "health" }))).taskArns?.find((a) => a !== first), 600, 100);
    expect(next).toBeDefined();
  });

  it("stop dependents first, each with SIGTERM and SIGKILL after its stopTimeout; exit codes as Docker reports them", async () => {
    const h = await realPlane();
    // `app` notes its SIGTERM in a shared volume; `base`, which it depends on, says at its own SIGTERM what it found there.
    const loop = "echo ready; while true; do sleep 0.2; done";
    const shared = [{ sourceVolume: "shared", containerPath: "/shared" }];
    const td = await register(
      h,
      "stop",
      [
        { name: "base", image: BUSYBOX, essential: false, command: ["sh", "-c", `trap 'echo "stopped before me: $(cat /shared/order)"; exit 0' TERM; ${loop}`], mountPoints: shared },
        { name: "app", image: BUSYBOX, command: ["sh", "-c", `trap 'echo app > /shared/order; exit 0' TERM; ${loop}`], mountPoints: shared, dependsOn: [{ containerName: "base", condition: "START" }] },
        { name: "stubborn", image: BUSYBOX, essential: false, command: ["sh", "-c", `trap 'while true; do echo tick; sleep 0.5; done' TERM; ${loop}`], stopTimeout: 2 },
        // PID 1 without a SIGTERM handler ignores it, as in Docker: only the SIGKILL ends it.
        { name: "plain", image: BUSYBOX, essential: false, command: ["sleep", "600"], stopTimeout: 2 },
      ],
      [{ name: "shared" }],
    );
    const arn = await runTask(h, td);
    await until(h, arn, running);
    for (const c of ["base", "app", "stubborn"]) await untilLog(h, arn, c, "ready");
    await h.ecs.send(new StopTaskCommand({ cluster: "c", task: arn, reason: "test" }));
    const t = await until(h, arn, stopped);
    const exit = (name: string) => t.containers!.find((c) => c.name === name)!.exitCode;
    expect([exit("base"), exit("app"), exit("stubborn"), exit("plain")]).toEqual([0, 0, 137, 137]);
    // stopTimeout 2 s, not Fargate's default 30 s: a tick every 0.5 s until the SIGKILL.
    const ticks = logOf(h, arn, "stubborn").split("\n").filter((l) => l === "tick").length;
    expect(ticks).toBeGreaterThan(0);
    expect(ticks).toBeLessThan(15);
    expect(t.stopCode).toBe("UserInitiated");
    expect(logOf(h, arn, "base")).toContain("stopped before me: app");
  });

  it("stop the task with EssentialContainerExited when its essential process dies", async () => {
    const h = await realPlane();
    const td = await register(h, "dies", [{ name: "app", image: BUSYBOX, command: ["sh", "-c", "sleep 1; exit 7"] }]);
    const t = await until(h, await runTask(h, td), stopped);
    expect(t.stopCode).toBe("EssentialContainerExited");
    expect(t.stoppedReason).toBe("Essential container in task exited");
    expect(t.containers![0]!.exitCode).toBe(7);
  });

  it("answer DNS for Cloud Map private namespaces with the IPs of the registered tasks", async () => {
    const h = await realPlane();
    const ns = await h.discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
    const nsId = h.cp.discovery.state.namespaces[Object.keys(h.cp.discovery.state.namespaces)[0]!]!.id;
    expect(ns.OperationId).toBeDefined();
    const sd = await h.discovery.send(
      new CreateDiscoveryServiceCommand({ Name: "web", NamespaceId: nsId, DnsConfig: { DnsRecords: [{ Type: "A", TTL: 10 }], RoutingPolicy: "MULTIVALUE" } }),
    );
    const web = await register(h, "web", [{ name: "web", image: BUSYBOX, command: ["sleep", "600"] }]);
    await h.ecs.send(
      new CreateServiceCommand({ cluster: "c", serviceName: "web", taskDefinition: web, desiredCount: 2, launchType: "FARGATE", networkConfiguration: NETWORK, serviceRegistries: [{ registryArn: sd.Service!.Arn! }] }),
    );
    const arns = await eventually(async () => {
      const list = (await h.ecs.send(new ListTasksCommand({ cluster: "c", serviceName: "web" }))).taskArns ?? [];
      const tasks = await Promise.all(list.map((a) => describe1(h, a)));
      return tasks.length === 2 && tasks.every(running) ? tasks : undefined;
    }, 600, 100);
    const ips = arns.map((t) => t.containers![0]!.networkInterfaces![0]!.privateIpv4Address!).sort();
    const probe = await register(h, "dig", [{ name: "dig", image: BUSYBOX, command: ["sh", "-c", "nslookup -type=a web.loki.internal; nslookup nothing.loki.internal || echo nxdomain"] }]);
    const p = await runTask(h, probe);
    await until(h, p, stopped);
    const log = logOf(h, p, "dig");
    for (const ip of ips) expect(log).toContain(`Address: ${ip}`);
    expect(log).toContain("nxdomain");
  });

  it("fail a task whose dependsOn can never hold: a HEALTHY condition on a container without a health check, or a cycle", async () => {
    const h = await realPlane();
    const unhealthy = await register(h, "no-check", [
      { name: "side", image: BUSYBOX, essential: false, command: ["sleep", "600"], stopTimeout: 2 },
      { name: "app", image: BUSYBOX, command: ["sleep", "600"], dependsOn: [{ containerName: "side", condition: "HEALTHY" }] },
    ]);
    const a = await until(h, await runTask(h, unhealthy), stopped);
    expect(a.stopCode).toBe("TaskFailedToStart");
    expect(a.stoppedReason).toContain("app: dependency side did not reach HEALTHY");
    const cycle = await register(h, "cycle", [
      { name: "a", image: BUSYBOX, command: ["true"], dependsOn: [{ containerName: "b", condition: "START" }] },
      { name: "b", image: BUSYBOX, command: ["true"], dependsOn: [{ containerName: "a", condition: "START" }] },
    ]);
    const b = await until(h, await runTask(h, cycle), stopped);
    expect(b.stoppedReason).toContain("form a cycle: a → b → a");
  });

  it("leave nothing behind: no namespace, link, process or claim once the control plane stops", async () => {
    const h = await realPlane();
    const td = await register(h, "leftover", [{ name: "app", image: BUSYBOX, command: ["sh", "-c", "sleep 600 & sleep 600"] }]);
    const arn = await runTask(h, td);
    await until(h, arn, running);
    const ns = h.cp.runner!.namespaceOf(h.cp.ecs.state.tasks[arn]!);
    const octet = /^lsk(\d+)-/.exec(ns)![1]!;
    const pids = execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean);
    expect(pids.length).toBeGreaterThanOrEqual(2); // the shell and its background sleep
    await h.cp.stop();
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(`lsk${octet}-`);
    expect(execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" })).not.toMatch(new RegExp(`lsk${octet}(br|[0-9a-f]{8})`));
    expect(pids.filter((p) => existsSync(`/proc/${p}`))).toEqual([]);
    expect(existsSync(`/run/lokistack-local/subnet-${octet}`)).toBe(false);
  });

  it("refuse an image it cannot map to local files, as ECS refuses one it cannot pull", async () => {
    const h = await realPlane();
    const t = await until(h, await runTask(h, await register(h, "unknown", [{ name: "app", image: "example.com/nothing:1" }])), stopped);
    expect(t.stopCode).toBe("TaskFailedToStart");
    expect(t.stoppedReason).toMatch(/^CannotPullContainerError: .*example\.com\/nothing:1.*real tasks know: grafana\/loki/);
  });
});
