// The command line as a new user meets it, through the real binary
// (bin/lokistack.js), against a real local control plane where one is needed:
// an error is one line saying what failed and what to do (the stack trace only
// with --debug), a closed pipe is not a crash, and flags are checked before
// anything runs.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { RunTaskCommand, UpdateServiceCommand } from "@aws-sdk/client-ecs";
import { until } from "./helpers/daemon.ts";
import { convergedDemo, example, operatorHarness } from "./helpers/operator.ts";

const bin = fileURLToPath(new URL("../bin/lokistack.js", import.meta.url));

/** Credentials the SDK finds, and none it could find elsewhere (profiles, instance metadata). */
const ENV = {
  PATH: process.env.PATH ?? "",
  HOME: tmpdir(),
  AWS_ACCESS_KEY_ID: "local",
  AWS_SECRET_ACCESS_KEY: "local",
  AWS_EC2_METADATA_DISABLED: "true",
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
};

function lokistack(args: string[], env: Record<string, string> = ENV) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

describe("errors are one line with a next step", () => {
  it("an endpoint where nothing listens: says so and asks whether lokistack local runs there", async () => {
    const endpoint = `http://127.0.0.1:${await closedPort()}`;
    const r = lokistack(["status", "--endpoint", endpoint, "--region", "us-east-1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`lokistack: cannot reach ${endpoint} (ECONNREFUSED): is \`lokistack local\` running there? Check --endpoint or AWS_ENDPOINT_URL\n`);
    const debug = lokistack(["--debug", "status", "--endpoint", endpoint, "--region", "us-east-1"]);
    expect(debug.stderr.split("\n")[0]).toContain("cannot reach");
    expect(debug.stderr).toMatch(/\n {4}at /);
  });

  it("no credentials anywhere: says where the SDK looks", () => {
    const { AWS_ACCESS_KEY_ID: _k, AWS_SECRET_ACCESS_KEY: _s, ...noKeys } = ENV;
    const env = { ...noKeys, AWS_SHARED_CREDENTIALS_FILE: "/nonexistent", AWS_CONFIG_FILE: "/nonexistent" };
    const r = lokistack(["status", "--region", "us-east-1"], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("lokistack: no AWS credentials found: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (in ECS, the task role provides them)\n");
  });

  it("AccessDenied names the action and the prefix", async () => {
    const op = await operatorHarness();
    op.cp.faults.settings.deny = ["ssm:DescribeParameters"];
    op.cp.resume();
    const r = await run(["status", "--endpoint", op.cp.endpoint, "--region", "us-east-1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^lokistack: AccessDenied\w* on ssm:DescribeParameters for \/lokistack: the caller's role needs ssm:DescribeParameters/);
  });

  it("a missing spec file for spec put names the file", () => {
    const r = lokistack(["spec", "put", "-f", "/nonexistent/spec.yaml", "--endpoint", "http://127.0.0.1:9", "--region", "us-east-1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("lokistack: cannot read /nonexistent/spec.yaml: no such file\n");
  });

  it("an invalid spec for spec put: every error on stderr with the file name, nothing written", () => {
    const file = join(mkdtempSync(join(tmpdir(), "lokistack-cli-")), "bad.yaml");
    writeFileSync(file, example("demo").replace("size: 1x.demo", "size: big"));
    const r = lokistack(["spec", "put", "-f", file, "--endpoint", "http://127.0.0.1:9", "--region", "us-east-1"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain(`${file}: error: spec.size: must be one of`);
    expect(r.stderr).toContain(`${file}: not written: nothing changed in SSM`);
  });

  it("a usage error prints one hint, not the whole help", () => {
    const r = lokistack(["plan", "--bogus"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error: unknown option '--bogus'\n(run the command with --help for its usage)\n");
  });

  it("output into a pipe whose reader has gone (lokistack status | head) ends quietly", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    op.cp.resume();
    const child = spawn(process.execPath, [bin, "status", "--endpoint", op.cp.endpoint, "--region", "us-east-1"], { env: ENV });
    // The reader goes away before the first line is written: every write meets EPIPE.
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((r) => child.once("exit", r));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });
});

describe("flags are checked first", () => {
  it.each([
    ["*/30 * * * *", "'*/30 * * * *' has five fields, minutes first; the resync takes six, seconds first: '0 */30 * * * *' runs at the same minutes, '*/30 * * * * *' every 30 seconds"],
    ["every minute", "'every minute' is not a cron expression with six fields, seconds first, such as '*/30 * * * * *' (every 30 seconds)"],
  ])("--resync %s is refused before anything runs", (expression, message) => {
    // An endpoint nothing answers: had the operator started, it would say so instead.
    const r = lokistack(["run", "--resync", expression, "--no-lease", "--endpoint", "http://127.0.0.1:9", "--region", "us-east-1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stdout).toBe("");
  });

  it("--region's help names the whole chain the SDK reads", () => {
    expect(lokistack(["status", "--help"]).stdout.replace(/\s+/g, " ")).toContain(
      "AWS region (default: $AWS_REGION, then the region of the profile ($AWS_PROFILE, else default), then EC2 instance metadata; us-east-1 against a local --endpoint when none is set)",
    );
  });

  it("validation names what is wrong with the file itself", () => {
    const dir = mkdtempSync(join(tmpdir(), "lokistack-cli-"));
    writeFileSync(join(dir, "empty.yaml"), "");
    writeFileSync(join(dir, "two.yaml"), "---\napiVersion: loki.ecs.dev/v1\n---\nkind: LokiStack\n");
    writeFileSync(join(dir, "subnets.yaml"), example("demo").replace("subnets: [subnet-0a1b2c3d4e5f60001]", "subnets: subnet-0a1b2c3d4e5f60001"));
    const r = lokistack(["validate", join(dir, "empty.yaml"), join(dir, "two.yaml"), join(dir, "subnets.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      [
        `${join(dir, "empty.yaml")}: error: (document): the file is empty: it should hold one LokiStack (apiVersion, kind, metadata, spec)`,
        `${join(dir, "two.yaml")}: error: (document): not valid YAML or JSON: the file holds more than one YAML document (---): put one LokiStack in each file at line 3, column 1`,
        `${join(dir, "subnets.yaml")}: error: spec.network.subnets: must be an array, not a string`,
        "",
      ].join("\n"),
    );
  });

  it("render prints YAML, with the Cloud Map services, and one unit with --unit", () => {
    const file = fileURLToPath(new URL("../manifests/examples/demo.yaml", import.meta.url));
    const r = lokistack(["render", "-f", file, "--unit", "querier"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^taskDefinitions:\n  - family: demo-querier\n/);
    expect(r.stdout).toContain("discoveryServices:\n  - Name: demo-querier\n    Namespace: loki.internal\n");
    expect(r.stdout).not.toContain("serviceName: demo-ingester-0");
    expect(r.stdout).not.toContain("family: demo-ingester-0");
  });

  it("--version prints the package's version", () => {
    const r = lokistack(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("validate takes files as arguments, as -f did", () => {
    const file = fileURLToPath(new URL("../manifests/examples/demo.yaml", import.meta.url));
    expect(lokistack(["validate", file]).stdout).toBe(`${file}: valid (demo)\n`);
    expect(lokistack(["validate", "-f", file]).stdout).toBe(`${file}: valid (demo)\n`);
    const none = lokistack(["validate"]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe("lokistack: name one or more spec files: lokistack validate FILE...\n");
  });
});

describe("plan reads like terraform plan", () => {
  it("symbols per unit with the attributes that change, a drift's cause, totals, the next step; exit 2; an unknown stack exits 1", async () => {
    const op = await convergedDemo();
    op.cp.resume();
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    const service = op.cp.ecs.state.services["logging/demo-compactor"]!;
    const rogue = await op.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: service.taskDefinition, launchType: "FARGATE", networkConfiguration: service.networkConfiguration as never }));
    const aws = ["--endpoint", op.cp.endpoint, "--region", "us-east-1", "--loki-proxy", op.cp.endpoint];
    const r = await run(["plan", ...aws]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`  # demo-querier\n  drift DesiredCountChanged: desiredCount: 3 → 1\n  ~ UpdateService\n      ~ desiredCount: 3 → 1\n`);
    expect(r.stdout).toContain(`  # demo-compactor\n  drift ExtraSingletonTask: ${rogue.tasks![0]!.taskArn}`);
    expect(r.stdout).toContain(`  ! StopTask (task ${rogue.tasks![0]!.taskArn})`);
    expect(r.stdout).toContain("Plan: 0 to create, 1 to change, 0 to destroy, 1 task to stop.\n\nSymbols: + create, ~ update in place, - destroy, ! safety action");
    expect(r.stdout).toContain("Next: `lokistack apply demo` makes these changes now");

    const unknown = await run(["plan", "nope", ...aws]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toBe("no stack nope under /lokistack (lokistack status lists the stacks)\n");

    expect((await run(["apply", ...aws])).code).toBe(0);
    op.cp.step(6);
    const clean = await run(["plan", ...aws]);
    expect(clean.code).toBe(0);
    expect(clean.stdout).toBe("LokiStack demo · generation 1 · repair\n  No changes. ECS matches the spec.\n\nNo changes. Every stack matches its spec.\n");
  });
});

describe("status reads like flux get", () => {
  it("--watch prints the table again when a stack's status changes, and stops on Ctrl-C", async () => {
    // The operator's clock is the CLI's: a status written at another time would read Stale.
    const op = await convergedDemo({ now: () => new Date() });
    op.cp.resume();
    const child = spawn(process.execPath, [bin, "status", "--watch", "--interval", "1", "--endpoint", op.cp.endpoint, "--region", "us-east-1"], { env: ENV });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    await until(() => /\ndemo\s+True\s+Ready\s/.test(stdout)).catch(() => { throw new Error(`first table: ${stdout}`); });
    // Someone scales a service by hand; the operator's next pass puts the drift in the status.
    await op.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    await op.pass();
    await until(() => /\ndemo\s+False\s+DriftDetected\s+\S+\s+\S+ ago\s+drift: DesiredCountChanged/.test(stdout)).catch(() => { throw new Error(`second table: ${stdout}`); });
    expect(stdout.match(/^NAME/gm)).toHaveLength(2);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const json = JSON.parse((await run(["status", "demo", "-o", "json", "--endpoint", op.cp.endpoint, "--region", "us-east-1"])).stdout);
    expect(json).toMatchObject({ formatVersion: 1, stacks: [{ name: "demo", ready: "False", status: "DriftDetected" }] });
    expect(json.stacks[0].units.map((u: { name: string }) => u.name)).toContain("demo-querier");
  });
});

describe("local and demo", () => {
  it("local --seed with an invalid file or none exits 1 at once, leaving nothing running", async () => {
    for (const seed of ["/nonexistent/spec.yaml", fileURLToPath(new URL("./fixtures/invalid/two-compactors.yaml", import.meta.url))]) {
      const r = await run(["local", "--port", "0", "--seed", seed]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^lokistack local: (cannot read \/nonexistent\/spec.yaml: no such file|\S+two-compactors.yaml is not a valid LokiStack:\nspec.template.compactor.replicas: must be 1)/);
      expect(r.stdout).toBe("");
    }
  });

  it("local says which services it serves, exports what AWS CLI v1 and v2 need, and how to start the operator", async () => {
    const child = spawn(process.execPath, [bin, "local", "--port", "0"], { env: ENV });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    await until(() => stdout.includes("Ctrl-C to stop."));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const endpoint = /listening on (\S+)/.exec(stdout)![1]!;
    expect(stdout).toContain("Local AWS control plane (ECS, SSM, S3, Cloud Map) listening on");
    expect(stdout).toContain("export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1");
    expect(stdout).toContain(`npx lokistack run --endpoint ${endpoint} --region us-east-1 --no-lease --loki-proxy ${endpoint}`);
  });

  it("Ctrl-C during the demo's chaos stops everything: no chaos step strikes after it", async () => {
    const child = spawn(process.execPath, [bin, "demo", "--port", "0", "--tasks", "simulated"], { env: { ...ENV, LOG_FORMAT: "json" } });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.once("exit", r));
    await until(() => stdout.includes("chaos 1/4"), 600, 100);
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    const after = stdout.slice(stdout.indexOf('"signal"') >= 0 ? stdout.indexOf('"signal"') : stdout.length);
    expect(stdout).not.toContain("chaos 2/4");
    expect(after).not.toMatch(/chaos \d\/4/);
  });
});

describe("spec get, spec delete and apply", () => {
  it("pretty logs are one line each, with no JSON tail", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    op.cp.resume();
    const r = await run(["apply", "--endpoint", op.cp.endpoint, "--region", "us-east-1", "--loki-proxy", op.cp.endpoint], { ...ENV, LOG_FORMAT: "pretty" });
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").filter(Boolean);
    expect(lines.length).toBeGreaterThan(10);
    // Without the colours a terminal gets.
    for (const line of lines.map((l) => l.replace(/\u001b\[\d+m/g, ""))) expect(line).toMatch(/^\[\d\d:\d\d:\d\d\] [A-Z]+: [^{}]+$/);
    expect(r.stdout.replace(/\u001b\[\d+m/g, "")).toContain("INFO: demo · CreateService demo-querier");
  });

  it("apply runs one pass with or without --once; spec get prints what is stored; spec delete says what happens next", async () => {
    const op = await operatorHarness();
    await op.putSpec(example("demo"));
    op.cp.resume();
    const aws = ["--endpoint", op.cp.endpoint, "--region", "us-east-1", "--loki-proxy", op.cp.endpoint];
    expect((await run(["apply", ...aws])).code).toBe(0);
    expect((await run(["apply", "--once", ...aws])).code).toBe(0);
    const get = await run(["spec", "get", "demo", ...aws.slice(0, 4)]);
    expect(get.stdout).toBe(example("demo"));
    const missing = await run(["spec", "get", "nope", ...aws.slice(0, 4)]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("no spec nope: /lokistack/nope/spec does not exist (lokistack status lists the stacks)\n");
    const del = await run(["spec", "delete", "demo", ...aws.slice(0, 4)]);
    expect(del.code).toBe(0);
    expect(del.stdout).toBe("/lokistack/demo/spec deleted; the operator stops managing the stack and leaves its services running (deletionPolicy: retain)\n");
    expect(op.cp.ssm.state.parameters["/lokistack/demo/spec"]).toBeUndefined();
  });
});

/** The binary as a child process, without blocking this process's event loop (the control plane runs in it). */
function run(args: string[], env: Record<string, string> = ENV): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], { env });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
