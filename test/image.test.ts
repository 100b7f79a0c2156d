// The operator image, as far as a machine without Docker can check it: the
// Dockerfile and .dockerignore agree with the repository, and the file tree
// the Dockerfile's runtime stage produces (package.json, package-lock.json,
// production dependencies, dist/ compiled by tsc; no src/, no TypeScript, no
// tsx) runs as a non-root user with NODE_ENV=production and a read-only /tmp:
// `run --help`, `apply --once` and `plan` against a local control plane, and
// the daemon itself for a few resyncs.
//
// The tree is built in a temporary directory, never the repository's dist/. Its production
// dependencies come from `npm ci --omit=dev` (a few seconds with a warm npm
// cache); without the npm registry, from the repository's node_modules,
// copying exactly the lockfile's production packages.
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { example, operatorHarness } from "./helpers/operator.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const dockerfile = readFileSync(join(root, "manifests/operator/Dockerfile"), "utf8");
const dockerignore = readFileSync(join(root, ".dockerignore"), "utf8");
/** The image's ENTRYPOINT, `node [flags] dist/src/cli.js`: the tree below is run with exactly this. */
const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? "[]") as string[];

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; args: string }[] {
  return text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}

/** Instructions per stage (a stage starts at FROM); global ARGs are stage -1, not returned. */
function stages(text: string): { from: string; steps: { op: string; args: string }[] }[] {
  const out: { from: string; steps: { op: string; args: string }[] }[] = [];
  for (const i of instructions(text)) {
    if (i.op === "FROM") out.push({ from: i.args, steps: [] });
    else out.at(-1)?.steps.push(i);
  }
  return out;
}

/** Whether .dockerignore keeps `path` (relative to the repository root) out of the build context. */
function ignored(path: string): boolean {
  const patterns = dockerignore.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  // Docker's patterns: Go's filepath.Match plus `**` for any number of directories; a match covers what is below it.
  const toRegExp = (p: string) => {
    const body = p
      .replace(/^\//, "")
      .split(/(\*\*\/|\*\*|\*|\?)/)
      .map((t) => ({ "**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]" })[t] ?? t.replace(/[.+^${}()|[\]\\]/g, "\\$&"))
      .join("");
    return new RegExp(`^${body}(?:/.*)?$`);
  };
  let result = false;
  for (const p of patterns) {
    if (p.startsWith("!")) {
      if (toRegExp(p.slice(1)).test(path)) result = false;
    } else if (toRegExp(p).test(path)) result = true;
  }
  return result;
}

describe("manifests/operator/Dockerfile and .dockerignore", () => {
  const [build, runtime] = stages(dockerfile);
  const globalArgs = dockerfile.slice(0, dockerfile.search(/^FROM /m));

  it("builds on Node 24 in two stages: tsc in the first, production dependencies and dist/ only in the second", () => {
    expect(stages(dockerfile)).toHaveLength(2);
    expect(globalArgs).toMatch(/^ARG NODE_IMAGE=\S+\/node:24[-.\w]*$/m);
    expect(build!.from).toMatch(/\$\{NODE_IMAGE\} AS build$/);
    expect(build!.steps.some((s) => s.op === "RUN" && /npm run build\b/.test(s.args))).toBe(true);
    expect(runtime!.from).toMatch(/\$\{NODE_IMAGE\}$/);
    const runs = runtime!.steps.filter((s) => s.op === "RUN").map((s) => s.args);
    expect(runs).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
    const copies = runtime!.steps.filter((s) => s.op === "COPY").map((s) => s.args);
    expect(copies).toEqual(["package.json package-lock.json ./", "--from=build /src/dist ./dist"]);
    expect(runtime!.steps).toContainEqual({ op: "ENV", args: expect.stringMatching(/\bNODE_ENV=production\b/) });
    expect(runtime!.steps.at(-3)).toEqual({ op: "USER", args: "node" });
    expect(runtime!.steps.at(-2)?.op).toBe("ENTRYPOINT");
    expect(entrypoint[0]).toBe("node");
    expect(entrypoint.at(-1)).toBe("dist/src/cli.js");
    expect(runtime!.steps.at(-1)).toEqual({ op: "CMD", args: '["run"]' });
  });

  it("declares the target platform (default linux/amd64, the default of Fargate) for the runtime stage", () => {
    expect(globalArgs).toMatch(/^ARG PLATFORM=linux\/amd64$/m);
    expect(runtime!.from).toMatch(/^--platform=\$PLATFORM /);
    // The build stage's output is JavaScript: it runs on the build machine's own platform.
    expect(build!.from).toMatch(/^--platform=\$BUILDPLATFORM /);
    expect(dockerfile).toMatch(/CpuArchitecture/);
  });

  it("keeps dependencies, builds, git, tests, benches and state out of the context, but not what the build copies", () => {
    for (const p of ["node_modules", "node_modules/zod/package.json", "dist", "dist/src/cli.js", ".git", "test", "test/image.test.ts", "bench", ".lokistack-state.json", "x/.lokistack-state-a.json"]) {
      expect(ignored(p), p).toBe(true);
    }
    const copied = build!.steps.filter((s) => s.op === "COPY" && !s.args.startsWith("--from")).flatMap((s) => s.args.split(/\s+/).slice(0, -1));
    expect(copied).toEqual(expect.arrayContaining(["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json", "src"]));
    for (const p of copied) {
      expect(existsSync(join(root, p)), `${p} exists`).toBe(true);
      expect(ignored(p), `${p} is in the context`).toBe(false);
    }
    for (const file of readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" })) expect(ignored(`src/${file}`), file).toBe(false);
  });
});

// ---------------------------------------------------------------------------

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const isRoot = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
/** How a command is made to run as `nobody` (root only; a non-root test runner is non-root already). */
const dropPrivileges: string[] | undefined = !isRoot
  ? []
  : has("setpriv")
    ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    : has("runuser")
      ? ["runuser", "-u", "nobody", "--"]
      : undefined;
/** Whether a private mount namespace can be made, to run with /tmp, /var/tmp and /dev/shm read-only. */
const readOnlyTmp = isRoot && has("unshare") && spawnSync("unshare", ["--mount", "--propagation", "private", "--", "true"]).status === 0;

function exec(cmd: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The environment of the container: nothing of the test runner's but PATH. */
const imageEnv: NodeJS.ProcessEnv = {
  PATH: process.env.PATH,
  HOME: "/nonexistent",
  NODE_ENV: "production",
  LOG_FORMAT: "json",
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
};

/** The command line that runs `node …` as nobody, with /tmp read-only where possible. */
function asImage(nodeArgs: string[]): [string, string[]] {
  const node = [...dropPrivileges!, process.execPath, ...nodeArgs];
  if (!readOnlyTmp) return [node[0]!, node.slice(1)];
  const script = 'for d in /tmp /var/tmp /dev/shm; do [ -d "$d" ] || continue; mount --bind "$d" "$d" && mount -o remount,ro,bind "$d" || exit 97; done; exec "$@"';
  return ["unshare", ["--mount", "--propagation", "private", "--", "sh", "-c", script, "sh", ...node]];
}

/** The command line of the image's entry point, `node [flags] dist/src/cli.js …`. */
const imageCommand = (args: string[]) => asImage([...entrypoint.slice(1), ...args]);

describe("the image's file tree, without Docker", () => {
  let work: string;
  let app: string;
  let unavailable: string | undefined;

  beforeAll(async () => {
    if (!dropPrivileges) {
      unavailable = "running as root without setpriv or runuser: cannot run the tree as a non-root user";
      return;
    }
    work = mkdtempSync(join(tmpdir(), "lokistack-image-"));
    app = join(work, "app");
    // The build stage: `npm run build`, into the temporary tree.
    const tsc = await exec(process.execPath, [join(root, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", join(app, "dist")], { cwd: root, timeoutMs: 120_000 });
    expect(tsc.stdout + tsc.stderr, "tsc -p tsconfig.build.json").toBe("");
    expect(tsc.code).toBe(0);
    cpSync(join(root, "manifests/examples"), join(app, "dist/manifests/examples"), { recursive: true });
    // The runtime stage.
    for (const f of ["package.json", "package-lock.json"]) cpSync(join(root, f), join(app, f));
    const npm = await exec("npm", ["ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"], {
      cwd: app,
      env: { ...process.env, NODE_ENV: "production", npm_config_update_notifier: "false" },
      timeoutMs: 150_000,
    });
    if (npm.code !== 0) {
      const offline = /ENOTFOUND|EAI_AGAIN|ENOTCACHED|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network|timed out|SIGKILL/i.test(npm.stderr) || npm.code === null;
      if (!offline) throw new Error(`npm ci --omit=dev failed:\n${npm.stderr}`);
      console.log(`image tree: npm ci --omit=dev could not reach the registry; copying the lockfile's production packages from node_modules instead`);
      rmSync(join(app, "node_modules"), { recursive: true, force: true });
      const missing = copyProductionPackages(root, app);
      if (missing.length) {
        unavailable = `no npm registry, and node_modules lacks production packages ${missing.join(", ")}: cannot assemble the tree`;
        return;
      }
    }
    // The image has tsx (a dependency, for `npm start`) but must never need it: without it, a run that did fails.
    for (const p of ["tsx", "esbuild", "@esbuild"]) rmSync(join(app, "node_modules", p), { recursive: true, force: true });
    // Root's temporary directory is private; the tree is readable, not writable, by nobody (as in the image).
    chmodSync(work, 0o755);
    chmodSync(app, 0o755);
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it("holds compiled JavaScript and production dependencies only", (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    expect(readdirSync(app).sort()).toEqual(["dist", "node_modules", "package-lock.json", "package.json"]);
    const dist = readdirSync(join(app, "dist"), { recursive: true, encoding: "utf8" }).filter((f) => statSync(join(app, "dist", f)).isFile());
    expect(dist.filter((f) => f.startsWith(`src${sep}`) && !f.endsWith(".js"))).toEqual([]);
    expect(dist).toContain(join("src", "cli.js"));
    // Every module of src/ was compiled (a file tsc left out would fail at run time, not at build time).
    const sources = readdirSync(join(root, "src"), { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".ts"));
    expect(dist.filter((f) => f.endsWith(".js")).sort()).toEqual(sources.map((f) => join("src", f.replace(/\.ts$/, ".js"))).sort());
    // The compiled modules import .js, never .ts (rewriteRelativeImportExtensions).
    for (const f of dist.filter((x) => x.endsWith(".js"))) expect(readFileSync(join(app, "dist", f), "utf8"), f).not.toMatch(/from\s+["'][^"']+\.ts["']|import\(\s*["'][^"']+\.ts["']/);
    const devDependencies = Object.keys((JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { devDependencies: Record<string, string> }).devDependencies);
    for (const d of [...devDependencies, "vitest", "typescript"]) expect(existsSync(join(app, "node_modules", d)), d).toBe(false);
  });

  it("runs `run --help` as a non-root user with NODE_ENV=production and a read-only /tmp", async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    if (!readOnlyTmp) console.log("image tree: no private mount namespace here (unshare); /tmp stays writable for this run");
    const [cmd, args] = imageCommand(["run", "--help"]);
    const r = await exec(cmd, args, { cwd: app, env: imageEnv });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: lokistack run [options]");
    // The same way, node reports who it runs as and whether it can write anywhere a process usually can.
    const probe = `const fs = require("node:fs"); const w = (d) => { try { fs.mkdtempSync(d + "/x-"); return true; } catch { return false; } };
      process.stdout.write(JSON.stringify({ uid: process.getuid(), env: process.env.NODE_ENV, tmp: w(require("node:os").tmpdir()), app: w(".") }))`;
    const [pCmd, pArgs] = asImage(["-e", probe]);
    const who = JSON.parse((await exec(pCmd, pArgs, { cwd: app, env: imageEnv })).stdout) as Record<string, unknown>;
    // The tree is root's, as in the image (a non-root runner owns its own tree); /tmp is read-only where a mount namespace can be made.
    expect(who).toEqual({ uid: isRoot ? 65534 : process.getuid!(), env: "production", tmp: readOnlyTmp ? false : who.tmp, app: isRoot ? false : who.app });
  });

  it("reconciles a stack from it: apply --once creates the stack, plan then finds no drift", async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    const endpoint = ["--endpoint", op.cp.endpoint];
    const image = (...a: string[]) => {
      const [cmd, args] = imageCommand(a);
      return exec(cmd, args, { cwd: app, env: imageEnv });
    };

    const first = await image("apply", "--once", ...endpoint);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    const services = Object.values(op.cp.ecs.state.services).filter((s) => s.status === "ACTIVE").map((s) => s.name);
    expect(services).toEqual(expect.arrayContaining(["demo-compactor", "demo-distributor", "demo-querier", "demo-ingester-0"]));

    let plan: Run | undefined;
    for (let round = 0; round < 8; round++) {
      op.cp.step(6);
      plan = await image("plan", ...endpoint);
      if (plan.code === 0) break;
      expect(plan.code, plan.stdout + plan.stderr).toBe(2);
      expect((await image("apply", "--once", ...endpoint)).code).toBe(0);
    }
    expect(plan!.stdout).toContain("No changes. ECS matches the spec.");
    expect(plan!.code).toBe(0);
  });

  it("runs the daemon from it: reconciles, serves /healthz and /metrics, stops cleanly on SIGTERM", async (ctx) => {
    if (unavailable) return ctx.skip(unavailable);
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    const [cmd, args] = imageCommand(["run", "--endpoint", op.cp.endpoint, "--no-lease", "--resync", "* * * * * *", "--watch-interval", "200", "--port", "0", "--host", "127.0.0.1"]);
    // spawn, not exec: the daemon runs until it is told to stop.
    const child = spawn(cmd, args, { cwd: app, env: imageEnv, stdio: ["ignore", "pipe", "pipe"] });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = () => stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { event?: string; port?: number });
    const until = async (probe: () => boolean, what: string) => {
      for (let i = 0; i < 300 && !probe(); i++) {
        if (child.exitCode !== null) throw new Error(`the daemon exited with ${child.exitCode} while waiting for ${what}:\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      if (!probe()) throw new Error(`timed out waiting for ${what}:\n${stdout}\n${stderr}`);
    };
    try {
      await until(() => lines().some((l) => l.event === "start"), "start");
      const port = lines().find((l) => l.event === "start")!.port;
      await until(() => op.cp.ecs.state.services["logging/demo-compactor"]?.status === "ACTIVE", "the stack's compactor service");
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).toMatch(/^lokistack_passes_total [1-9]/m);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(lines().at(-1)).toMatchObject({ event: "stop" });
  });
});

/**
 * Copies the packages `npm ci --omit=dev` would install (the lockfile's entries
 * not marked dev) from `from`/node_modules to `to`/node_modules; returns those
 * missing (optional packages of other platforms are not missing).
 */
function copyProductionPackages(from: string, to: string): string[] {
  const lock = JSON.parse(readFileSync(join(from, "package-lock.json"), "utf8")) as { packages: Record<string, { dev?: boolean; optional?: boolean; link?: boolean }> };
  const missing: string[] = [];
  for (const [key, entry] of Object.entries(lock.packages)) {
    if (!key || entry.dev || entry.link) continue;
    const source = join(from, key);
    if (!existsSync(source)) {
      if (!entry.optional) missing.push(key);
      continue;
    }
    // A nested node_modules is its own lockfile entry (and may be a dev one).
    cpSync(source, join(to, key), { recursive: true, filter: (s) => !relative(source, s).split(sep).includes("node_modules") });
  }
  return missing;
}
