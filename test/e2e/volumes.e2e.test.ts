// Fargate bind-mount volumes are root-owned with mode 0755 and the grafana/loki
// image runs as uid 10001, so Loki can write /loki only once something running
// as root hands it over. The operator's config init container does: it writes
// the Loki config, then chowns every volume Loki writes to. This test runs the
// monolithic example's task definition on real tasks twice, one task at a time
// against the same local S3: first with the init container's command as it was
// before the chown (74f0241), where Loki cannot write /loki, then as rendered
// today, where Loki starts and becomes ready.
import { readFileSync } from "node:fs";
import { DescribeTasksCommand, RegisterTaskDefinitionCommand, RunTaskCommand, type RegisterTaskDefinitionCommandInput, type Task } from "@aws-sdk/client-ecs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
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
    const url = `http://${container(started, CONTAINERS.loki).networkInterfaces![0]!.privateIpv4Address}:3100/ready`;
    const ready = async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch((e: Error) => e);
      return res instanceof Error ? res.message : res.status;
    };
    const answer = await until(async () => {
      if ((await describeTask(hh, stack, b)).lastStatus !== "RUNNING") return "the task is no longer RUNNING";
      return (await ready()) === 200 ? 200 : undefined;
    }, 180, 1000).catch(ready);
    console.log(`after the chown: ${started.lastStatus}, GET ${url}: ${answer}`);
    expect(answer).toBe(200);
    expect((await describeTask(hh, stack, b)).lastStatus).toBe("RUNNING");
    expect(lokiLog(hh, b)).not.toMatch(/permission denied/i);
  });
});
