// Fargate bind-mount volumes are root-owned with mode 0755 and the grafana/loki
// image runs as uid 10001, so Loki can write /loki only once something running
// as root hands it over. The operator's config init container does: it writes
// the Loki config, then chowns every volume Loki writes to. This test runs the
// monolithic example's task definition on real tasks twice, one task at a time
// against the same local S3: first with the init container's command as it was
// before the chown (74f0241), where Loki cannot write /loki, then as rendered
// today, where Loki starts and becomes ready. The second test does the same for
// a WAL on EFS (spec.ingester.wal), in both ways the operator mounts it: a
// directory without an access point, root's as whoever created it left it, and
// an access point's root directory, which EFS creates as its creationInfo says.
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand, type RegisterTaskDefinitionCommandInput, type Task } from "@aws-sdk/client-ecs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { DEFAULT_PREFIX, desiredUnits } from "../../src/resources/render.ts";
import type { ResolvedStack } from "../../src/resources/resolve.ts";
import { configParameterName, CONTAINERS } from "../../src/resources/task-definition.ts";
import { seedStackText } from "../../src/runtime/local.ts";
import { until } from "../helpers/daemon.ts";
import { harness, type Harness } from "../helpers/local.ts";
import { example } from "../helpers/operator.ts";
import { e2eUnavailable, lokiImage } from "./harness.ts";

const unavailable = e2eUnavailable();
if (unavailable) console.warn(unavailable);

/** The init container's command before the chown: the config only, /loki left as Fargate makes it. */
const OLD_INIT_COMMAND = `printf '%s' "$LOKI_CONFIG" > /etc/loki/config.yaml`;


async function runTask(h: Harness, stack: ResolvedStack, definition: RegisterTaskDefinitionCommandInput): Promise<string> {
  const td = (await h.ecs.send(new RegisterTaskDefinitionCommand(definition))).taskDefinition!.taskDefinitionArn!;
  const network = { awsvpcConfiguration: { subnets: stack.spec.network.subnets, securityGroups: stack.spec.network.securityGroups } };
  const out = await h.ecs.send(new RunTaskCommand({ cluster: stack.spec.cluster, taskDefinition: td, launchType: "FARGATE", networkConfiguration: network }));
  return out.tasks![0]!.taskArn!;
}

async function describeTask(h: Harness, stack: ResolvedStack, arn: string): Promise<Task> {
  return (await h.ecs.send(new DescribeTasksCommand({ cluster: stack.spec.cluster, tasks: [arn] }))).tasks![0]!;
}

/** Polls (once a second, at most `polls` times) until the task's status is one of `statuses`; then, or on giving up, the task as it is. */
async function untilStatus(h: Harness, stack: ResolvedStack, arn: string, statuses: string[], polls = 120): Promise<Task> {
  const reached = async () => {
    const t = await describeTask(h, stack, arn);
    return statuses.includes(t.lastStatus!) ? t : undefined;
  };
  return until(reached, polls, 1000).catch(() => describeTask(h, stack, arn));
}

/** The Loki container's stdout and stderr (real tasks write them to a file, as awslogs would ship them). */
function lokiLog(h: Harness, arn: string): string {
  return readFileSync(h.cp.runner!.logFile(h.cp.ecs.state.tasks[arn]!, CONTAINERS.loki), "utf8");
}

const container = (t: Task, name: string) => t.containers!.find((c) => c.name === name)!;

/**
 * Polls (once a second, at most 180 times) until the RUNNING task's Loki answers GET /ready
 * with 200, at the task's private IP, which the host routes to; the last answer otherwise.
 */
async function untilReady(h: Harness, stack: ResolvedStack, started: Task): Promise<{ url: string; answer: unknown }> {
  const url = `http://${container(started, CONTAINERS.loki).networkInterfaces![0]!.privateIpv4Address}:3100/ready`;
  const ready = async () => {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch((e: Error) => e);
    return res instanceof Error ? res.message : res.status;
  };
  const answer = await until(async () => {
    if ((await describeTask(h, stack, started.taskArn!)).lastStatus !== "RUNNING") return "the task is no longer RUNNING";
    return (await ready()) === 200 ? 200 : undefined;
  }, 180, 1000).catch(ready);
  return { url, answer };
}

/** The monolithic example running the local Loki binary's image, its WAL as `wal` says (the spec's ingester.wal). */
function monolithicWith(wal: Record<string, unknown>): string {
  const doc = parseDocument(example("monolithic"));
  doc.setIn(["spec", "image"], lokiImage());
  doc.setIn(["spec", "ingester"], doc.createNode({ wal }));
  return doc.toString();
}

describe.skipIf(unavailable !== undefined)("Loki's volumes on real tasks", () => {
  it("without the init container's chown Loki cannot write /loki and the task stops; with it Loki starts and answers /ready", async () => {
    // harness() stops the control plane after the test: every task process is killed, the task network removed.
    const hh = await harness({ tasks: "real", tickMs: 250, attempts: 3 });
    // Seeding (as `lokistack local` does) creates the cluster and the bucket and points the
    // stack's S3 at the control plane's address on the task network, so Loki reaches it.
    const stack = await seedStackText(hh.cp, example("monolithic").replace(/image: grafana\/loki:\S+/, `image: ${lokiImage()}`), "monolithic example");
    const units = desiredUnits(stack);
    expect(units.map((u) => u.unit.component)).toEqual(["monolithic"]);
    const { unit, lokiConfig, taskDefinition: today } = units[0]!;
    // The operator's job, done by hand: the config the init container reads through `secrets`.
    await hh.ssm.send(new PutParameterCommand({ Name: configParameterName(DEFAULT_PREFIX, stack.name, unit.name), Value: lokiConfig, Type: "String", Overwrite: true }));
    const beforeChown = {
      ...today,
      containerDefinitions: today.containerDefinitions!.map((c) => (c.name === CONTAINERS.config ? { ...c, command: [OLD_INIT_COMMAND] } : c)),
    };

    // Before: the config is written (the init container succeeds), but Loki, uid 10001, fails
    // creating its first directory under the root-owned /loki and exits; it is essential, so
    // the task stops. Which directory comes first varies (compactor, boltdb-cache, ...).
    const a = await runTask(hh, stack, beforeChown);
    const failed = await untilStatus(hh, stack, a, ["STOPPED"]);
    console.log(`before the chown: ${failed.lastStatus}, ${failed.stopCode}, loki exit code ${container(failed, CONTAINERS.loki).exitCode}; Loki: ${/^.*permission denied.*$/m.exec(lokiLog(hh, a))?.[0]}`);
    expect(container(failed, CONTAINERS.config).exitCode).toBe(0);
    expect(failed.lastStatus).toBe("STOPPED");
    expect(failed.stopCode).toBe("EssentialContainerExited");
    expect(container(failed, CONTAINERS.loki).exitCode).toBe(1);
    expect(lokiLog(hh, a)).toMatch(/mkdir \/loki\/\S+: permission denied/);

    // Today's definition, only now that the first task is gone: the init container hands /loki
    // to uid 10001, Loki starts, and its /ready answers 200 once the ingester has joined its
    // ring (30-60 s), polled at the task's private IP, which the host routes to.
    const b = await runTask(hh, stack, today);
    const started = await untilStatus(hh, stack, b, ["RUNNING", "STOPPED"]);
    expect(started.lastStatus).toBe("RUNNING");
    const { url, answer } = await untilReady(hh, stack, started);
    console.log(`after the chown: ${started.lastStatus}, GET ${url}: ${answer}`);
    expect(answer).toBe(200);
    expect((await describeTask(hh, stack, b)).lastStatus).toBe("RUNNING");
    expect(lokiLog(hh, b)).not.toMatch(/permission denied/i);
  });

  it("Loki writes its WAL on EFS: a root-owned directory once the init container chowns it, and an access point's directory as creationInfo makes it", async () => {
    const fileSystemId = "fs-0123456789abcdef0";
    const accessPointId = "fsap-0123456789abcdef0";
    const stackName = String(parseDocument(example("monolithic")).getIn(["metadata", "name"]));
    // The access point as manifests/prerequisites/cloudformation.yaml creates ordinal 0's
    // (the monolithic task is ordinal 0): rooted at <accessPointRoot>/<stack>-ingester-0,
    // created on first mount for uid/gid 10001 with 0750. (Its PosixUser, every file
    // operation as 10001, is not modeled by the runner: a bind mount, not NFS.)
    const apRoot = `/wal/${stackName}-ingester-0`;
    const hh = await harness({
      tasks: "real",
      tickMs: 250,
      attempts: 3,
      realTasks: { efsAccessPoints: { [accessPointId]: { fileSystemId, rootDirectory: apRoot, creationInfo: { ownerUid: 10001, ownerGid: 10001, permissions: "0750" } } } },
    });
    // The runner keeps each EFS file system as a directory under its run directory.
    const efsPath = (dir: string) => join(hh.cp.runner!.runDir, "efs", fileSystemId, dir);
    /** Seeds the spec and puts the unit's config parameter (the operator's job, done by hand). */
    const seed = async (wal: Record<string, unknown>) => {
      const stack = await seedStackText(hh.cp, monolithicWith(wal), "monolithic example, WAL on EFS");
      const [u] = desiredUnits(stack);
      await hh.ssm.send(new PutParameterCommand({ Name: configParameterName(DEFAULT_PREFIX, stack.name, u!.unit.name), Value: u!.lokiConfig, Type: "String", Overwrite: true }));
      return { stack, unit: u!.unit, today: u!.taskDefinition };
    };
    /** Runs the definition until Loki answers /ready (the test fails otherwise); the task's ARN. */
    const runUntilReady = async (stack: ResolvedStack, definition: RegisterTaskDefinitionCommandInput, label: string) => {
      const arn = await runTask(hh, stack, definition);
      const started = await untilStatus(hh, stack, arn, ["RUNNING", "STOPPED"]);
      expect(started.lastStatus).toBe("RUNNING");
      const { url, answer } = await untilReady(hh, stack, started);
      console.log(`${label}: ${started.lastStatus}, GET ${url}: ${answer}`);
      expect(answer).toBe(200);
      expect(lokiLog(hh, arn)).not.toMatch(/permission denied/i);
      return arn;
    };
    /** Loki's WAL (wal.dir is /loki/wal/<unit>, inside the EFS mount): its segment files. */
    const segments = (mounted: string, unit: string) => readdirSync(join(mounted, unit)).filter((f) => /^\d{8}$/.test(f));

    // (a) No access points: the task mounts <accessPointRoot>/<unit> of the file system, which
    // EFS does not create. Whoever made it (root) owns it, 0755, as here.
    const a = await seed({ volume: "efs", fileSystemId, accessPointRoot: "/wal" });
    const walVolume = a.today.volumes!.find((v) => v.name === "wal")!.efsVolumeConfiguration!;
    expect(walVolume.rootDirectory).toBe(`/wal/${a.unit.name}`);
    expect(walVolume.authorizationConfig).toBeUndefined();
    const dir = efsPath(walVolume.rootDirectory!);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o755);
    chownSync(dir, 0, 0);

    // Without the chown of the EFS mount (the init container chowns /loki, the ephemeral volume,
    // only: the old command would fail at /loki before Loki reaches the WAL), Loki, uid 10001,
    // cannot create its WAL directory in the root-owned mount and exits; the task stops.
    const chownDataOnly = `printf '%s' "$LOKI_CONFIG" > /etc/loki/config.yaml && chown 10001:10001 /loki`;
    const failing = await runTask(hh, a.stack, {
      ...a.today,
      containerDefinitions: a.today.containerDefinitions!.map((c) => (c.name === CONTAINERS.config ? { ...c, command: [chownDataOnly] } : c)),
    });
    const failed = await untilStatus(hh, a.stack, failing, ["STOPPED"]);
    console.log(`EFS without the chown: ${failed.lastStatus}, ${failed.stopCode}, loki exit code ${container(failed, CONTAINERS.loki).exitCode}; Loki: ${/^.*permission denied.*$/m.exec(lokiLog(hh, failing))?.[0]}`);
    expect(container(failed, CONTAINERS.config).exitCode).toBe(0);
    expect(failed.stopCode).toBe("EssentialContainerExited");
    expect(container(failed, CONTAINERS.loki).exitCode).toBe(1);
    expect(lokiLog(hh, failing)).toMatch(/\/loki\/wal\S*: permission denied/);
    expect(statSync(dir).uid).toBe(0);

    // Today's definition: the init container (root) chowns /loki and /loki/wal, so the EFS
    // directory is 10001's (kept across tasks: it is the file system's) and holds Loki's WAL.
    const b = await runUntilReady(a.stack, a.today, "EFS without an access point");
    console.log(`${dir}: uid ${statSync(dir).uid}, mode ${(statSync(dir).mode & 0o777).toString(8)}, ${a.unit.name}/: ${readdirSync(join(dir, a.unit.name)).join(" ")}`);
    expect(statSync(dir).uid).toBe(10001);
    expect(segments(dir, a.unit.name).length).toBeGreaterThan(0);
    // One monolithic Loki against a store at a time: this one goes before the next starts.
    await hh.ecs.send(new StopTaskCommand({ cluster: a.stack.spec.cluster, task: b }));
    expect((await untilStatus(hh, a.stack, b, ["STOPPED"], 180)).lastStatus).toBe("STOPPED");

    // (b) An access point per ordinal: its root directory does not exist until the first mount,
    // which creates it for 10001 (0750); the chown of it changes nothing and Loki writes its WAL.
    const c = await seed({ volume: "efs", fileSystemId, accessPointIds: [accessPointId] });
    expect(c.today.volumes!.find((v) => v.name === "wal")!.efsVolumeConfiguration!.authorizationConfig?.accessPointId).toBe(accessPointId);
    const apDir = efsPath(apRoot);
    expect(existsSync(apDir)).toBe(false);
    await runUntilReady(c.stack, c.today, "EFS with an access point");
    console.log(`${apDir}: uid ${statSync(apDir).uid}, mode ${(statSync(apDir).mode & 0o777).toString(8)}, ${c.unit.name}/: ${readdirSync(join(apDir, c.unit.name)).join(" ")}`);
    expect(statSync(apDir).uid).toBe(10001);
    expect(statSync(apDir).mode & 0o777).toBe(0o750);
    expect(segments(apDir, c.unit.name).length).toBeGreaterThan(0);
  });
});
