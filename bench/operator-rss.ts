// The operator's peak memory (RSS) at its scale target, as it runs in the
// image: compiled JavaScript (`tsc -p tsconfig.build.json`, as `npm run build`)
// in a process of its own, `node dist/src/cli.js run`, against 50 stacks of 8
// units (1x.pico) on the local control plane in this process. The operator
// task is 0.25 vCPU / 512 MB; the target is a peak of at most 128 MB.
//
// The 50 stacks are converged first by a reconciler in this process without
// the write budget (through the CLI the budget of 1 task definition a second
// makes a first converge of 400 units take minutes by design). Then the
// operator starts cold against them, runs a resync a second, repairs an
// out-of-band scale of every stack's querier (50 writes under its real
// budget), and runs RESYNCS more resyncs; its peak RSS is the kernel's
// high-water mark (VmHWM in /proc/<pid>/status). The same run under tsx
// (`node --import tsx src/cli.ts run`, what the image ran before) is printed
// beside it. Asserts nothing.
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { UpdateServiceCommand, type ECSClient } from "@aws-sdk/client-ecs";
import type { LocalControlPlane } from "../src/local/control-plane.ts";
import { benchReconciler, convergeAll, fleet } from "./fleet.ts";

const STACKS = 50;
const RESYNCS = 8;
const TARGET_MB = 128;
const root = fileURLToPath(new URL("../", import.meta.url));
// Under node_modules/ so that the compiled modules resolve the repository's packages; never the repository's dist/.
const out = `${root}node_modules/.cache/lokistack-bench`;
const MB = 1024 * 1024;
const mb = (bytes: number) => `${(bytes / MB).toFixed(1)} MB`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Compiles src/ as `npm run build` does, into `out`; returns the entry point. */
function compile(): string {
  rmSync(out, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, "-p", "tsconfig.build.json", "--outDir", `${out}/dist`], { cwd: root, encoding: "utf8" });
  if (tsc.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${tsc.stdout}${tsc.stderr}`);
  cpSync(`${root}manifests/examples`, `${out}/dist/manifests/examples`, { recursive: true });
  return `${out}/dist/src/cli.js`;
}

/** The control plane with 50 converged stacks. */
async function convergedControlPlane(): Promise<{ cp: LocalControlPlane; ecs: ECSClient }> {
  const f = await fleet(STACKS);
  await convergeAll(benchReconciler(f, f.cp));
  return f;
}

/** The kernel's figures for a process, in bytes: peak (VmHWM) and current (VmRSS) resident set. */
function procStatus(pid: number): { hwm: number; rss: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN) * 1024;
    return { hwm: kb("VmHWM"), rss: kb("VmRSS") };
  } catch {
    return undefined;
  }
}

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (NaN without /proc). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "").split(" ");
    // After the command: state is field 3, utime 14 and stime 15 (proc(5)); clock ticks of 1/100 s on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** `ps` for systems without /proc: the current RSS in bytes. */
function psRss(pid: number): number {
  const r = spawnSync("ps", ["-o", "rss=", "-p", String(pid)], { encoding: "utf8" });
  return Number(r.stdout.trim()) * 1024 || 0;
}

interface Measured {
  peak: number;
  peakSource: string;
  startup: number;
  rssAtEnd: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  seconds: number;
  cpu: number;
  passes: number;
  repairs: number;
}

/** Runs one operator process (`argv` after node) against `cp` and measures it. */
async function measure(argv: string[], cp: LocalControlPlane, ecs: ECSClient): Promise<Measured> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [...argv, "run", "--endpoint", cp.endpoint, "--no-lease", "--resync", "* * * * * *", "--watch-interval", "1000", "--port", "0", "--host", "127.0.0.1"],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_ENV: "production", LOG_FORMAT: "json", AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local", NODE_OPTIONS: "" },
    },
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let port: number | undefined;
  let repairs = 0;
  let buffer = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on("data", (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop()!;
    for (const l of lines) {
      if (!l.startsWith("{")) continue;
      const line = JSON.parse(l) as { event?: string; port?: number; action?: string };
      if (line.event === "start") port = line.port;
      if (line.event === "action" && line.action === "UpdateService") repairs++;
    }
  });
  // Without /proc, the peak is the highest of samples every 50 ms.
  let sampledPeak = 0;
  const sampler = existsSync(`/proc/${child.pid}/status`) ? undefined : setInterval(() => (sampledPeak = Math.max(sampledPeak, psRss(child.pid!))), 50);
  const until = async (probe: () => boolean | Promise<boolean>, what: string, seconds = 120) => {
    const deadline = performance.now() + seconds * 1000;
    while (!(await probe())) {
      if (child.exitCode !== null) throw new Error(`the operator exited with ${child.exitCode} before ${what}:\n${stderr}`);
      if (performance.now() > deadline) throw new Error(`no ${what} after ${seconds} s:\n${stderr}`);
      await sleep(50);
    }
  };
  const metrics = async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text)?.[1] ?? NaN);
    return {
      passes: value("lokistack_passes_total"),
      heapUsed: value("lokistack_nodejs_heap_size_used_bytes"),
      heapTotal: value("lokistack_nodejs_heap_size_total_bytes"),
      external: value("lokistack_nodejs_external_memory_bytes"),
    };
  };
  try {
    await until(() => port !== undefined, "start");
    const startup = procStatus(child.pid!)?.rss ?? psRss(child.pid!);
    await until(async () => (await metrics()).passes >= 2, "first resyncs");
    // Every stack's querier scaled by hand: 50 repairs under the real write budget.
    const querier = (i: number) => cp.ecs.state.services[`logging/stack-${i}-querier`]!;
    const desired = Array.from({ length: STACKS }, (_, i) => querier(i).desiredCount);
    for (let i = 0; i < STACKS; i++) await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: `stack-${i}-querier`, desiredCount: desired[i]! + 2 }));
    const queriersBack = () => desired.every((n, i) => querier(i).desiredCount === n);
    await until(queriersBack, "the queriers' repair");
    const after = (await metrics()).passes;
    await until(async () => (await metrics()).passes >= after + RESYNCS, `${RESYNCS} more resyncs`);
    const m = await metrics();
    const proc = procStatus(child.pid!);
    return {
      peak: proc?.hwm ?? sampledPeak,
      peakSource: proc ? "VmHWM" : "sampled every 50 ms with ps",
      startup,
      rssAtEnd: proc?.rss ?? psRss(child.pid!),
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      seconds: (performance.now() - t0) / 1000,
      cpu: cpuSeconds(child.pid!),
      passes: m.passes,
      repairs,
    };
  } finally {
    if (sampler) clearInterval(sampler);
    child.kill("SIGTERM");
    await exited;
  }
}

async function main(): Promise<void> {
  const cli = compile();
  const { cp, ecs } = await convergedControlPlane();
  try {
    const services = Object.values(cp.ecs.state.services).filter((s) => s.status === "ACTIVE").length;
    const tasks = Object.values(cp.ecs.state.tasks).filter((t) => t.desiredStatus === "RUNNING").length;
    console.log(`operator peak RSS, its own process, ${STACKS} stacks (${services} services, ${tasks} running tasks): cold start, a resync a second, ${STACKS} repairs, ${RESYNCS} more resyncs (Node ${process.versions.node})`);
    // The image's own command line (the Dockerfile's ENTRYPOINT), then plain node, then tsx.
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(`${root}manifests/operator/Dockerfile`, "utf8"))?.[1] ?? '["node", "dist/src/cli.js"]') as string[];
    const flags = entrypoint.slice(1, entrypoint.indexOf("dist/src/cli.js"));
    const runs: [string, string[]][] = [
      [`the image's entry point (${entrypoint.join(" ")})`, [...flags, cli]],
      ...(flags.length ? [["compiled JavaScript, plain node (node dist/src/cli.js)", [cli]] as [string, string[]]] : []),
      ["TypeScript under tsx (node --import tsx src/cli.ts, the image before)", ["--import", "tsx", `${root}src/cli.ts`]],
    ];
    for (const [label, argv] of runs) {
      const m = await measure(argv, cp, ecs);
      console.log(`  ${label}:`);
      console.log(
        `    peak RSS ${mb(m.peak)} (${m.peakSource}; target ≤ ${TARGET_MB} MB: ${m.peak <= TARGET_MB * MB ? "within" : "OVER"}), RSS after start ${mb(m.startup)}, at the end ${mb(m.rssAtEnd)}; ` +
          `heap used ${mb(m.heapUsed)} of ${mb(m.heapTotal)}, external ${mb(m.external)}; ${m.passes} resyncs, ${m.repairs} repairs in ${m.seconds.toFixed(1)} s, ${m.cpu.toFixed(1)} s of CPU (${((m.cpu / m.passes) * 1000).toFixed(0)} ms a resync)`,
      );
    }
  } finally {
    await cp.stop();
    rmSync(out, { recursive: true, force: true });
  }
}

await main();
