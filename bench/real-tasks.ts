// What a real task costs: 20 BusyBox tasks started with RunTask, the time from
// RunTask to RUNNING (network namespace, veth, mount namespaces, the init
// container, then the main one), then StopTask to STOPPED, and the resident
// memory of the whole process tree. Prints figures; asserts nothing. Skips,
// saying why, where real tasks cannot run.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { CreateClusterCommand, ECSClient, RegisterTaskDefinitionCommand, RunTaskCommand, StopTaskCommand } from "@aws-sdk/client-ecs";
import { startLocalControlPlane } from "../src/local/control-plane.ts";
import { checkHost } from "../src/local/tasks/host.ts";

const TASKS = 20;
const host = checkHost();

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** Resident memory of every process in the task network namespaces, in MB. */
function tasksRssMb(instancePrefix: string): number {
  const namespaces = execFileSync("ip", ["netns", "list"], { encoding: "utf8" }).split("\n").map((l) => l.split(" ")[0]!).filter((n) => n.startsWith(instancePrefix));
  let kb = 0;
  for (const ns of namespaces) {
    for (const pid of execFileSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).split("\n").filter(Boolean)) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);
      } catch {
        // gone
      }
    }
  }
  return kb / 1024;
}

async function main(): Promise<void> {
  if (!host.ok) {
    console.log(`real tasks: skipped, this machine lacks\n  ${host.missing.join("\n  ")}`);
    return;
  }
  const cp = await startLocalControlPlane({ tasks: "real", tickMs: 20, seed: 1 });
  try {
    const ecs = new ECSClient({ ...cp.clientConfig, maxAttempts: 1 });
    await ecs.send(new CreateClusterCommand({ clusterName: "bench" }));
    const td = await ecs.send(
      new RegisterTaskDefinitionCommand({
        family: "bench",
        networkMode: "awsvpc",
        requiresCompatibilities: ["FARGATE"],
        cpu: "256",
        memory: "512",
        containerDefinitions: [
          { name: "init", image: "busybox", essential: false, command: ["true"] },
          // PID 1 gets SIGTERM only with a handler: this one exits within 50 ms of it.
          { name: "app", image: "busybox", command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 0.05; done"], dependsOn: [{ containerName: "init", condition: "SUCCESS" }] },
        ],
      }),
    );
    const network = { awsvpcConfiguration: { subnets: ["subnet-0123456789abcdef0"], securityGroups: ["sg-0123456789abcdef0"] } };
    const started = new Map<string, number>();
    for (let i = 0; i < TASKS; i++) {
      const out = await ecs.send(new RunTaskCommand({ cluster: "bench", taskDefinition: td.taskDefinition!.taskDefinitionArn!, launchType: "FARGATE", networkConfiguration: network }));
      started.set(out.tasks![0]!.taskArn!, performance.now());
    }
    const toRunning = await waitAll(cp, started, "RUNNING");
    const rss = tasksRssMb(cp.runner!.namespaceOf(Object.values(cp.ecs.state.tasks)[0]!).split("-")[0]!);
    const stopping = new Map<string, number>();
    for (const arn of started.keys()) {
      await ecs.send(new StopTaskCommand({ cluster: "bench", task: arn }));
      stopping.set(arn, performance.now());
    }
    const toStopped = await waitAll(cp, stopping, "STOPPED");
    console.log(`real tasks (${TASKS} BusyBox tasks: an init container, then the main one)`);
    console.log(`  RunTask → RUNNING   p50 ${percentile(toRunning, 50).toFixed(0)} ms, max ${Math.max(...toRunning).toFixed(0)} ms`);
    console.log(`  StopTask → STOPPED  p50 ${percentile(toStopped, 50).toFixed(0)} ms, max ${Math.max(...toStopped).toFixed(0)} ms`);
    console.log(`  resident memory of the ${TASKS} tasks' processes: ${rss.toFixed(1)} MB`);
  } finally {
    await cp.stop();
  }
}

/** Milliseconds from each task's mark until it reached `status`, polled every 10 ms. */
async function waitAll(cp: Awaited<ReturnType<typeof startLocalControlPlane>>, marks: Map<string, number>, status: string): Promise<number[]> {
  const done = new Map<string, number>();
  while (done.size < marks.size) {
    for (const [arn, t0] of marks) if (!done.has(arn) && cp.ecs.state.tasks[arn]!.lastStatus === status) done.set(arn, performance.now() - t0);
    await new Promise((r) => setTimeout(r, 10));
  }
  return [...done.values()];
}

await main();
