import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { cli } from "./helpers/cli.ts";
import { chooseTasks } from "../src/runtime/local.ts";
import { JSON_SCHEMA_PATH, lokiStackJsonSchemaText } from "../src/resources/json-schema.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const examples = readdirSync(`${root}manifests/examples`).map((f) => `${root}manifests/examples/${f}`);


describe("lokistack validate", () => {
  it("exits 0 for every example", async () => {
    const r = await cli("validate", "-f", ...examples);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n").filter(Boolean)).toHaveLength(examples.length);
  });

  it.each([
    ["two-compactors.yaml", "spec.template.compactor.replicas: must be 1"],
    ["ingesters-below-rf.yaml", "spec.template.ingester.replicas: ingester replicas (2) must be at least the replication factor (3)"],
    ["cpu-memory-pair.yaml", "spec.template.querier.memory: cpu 256 with memory 4096 is not a Fargate task size"],
    ["unknown-key.yaml", "spec.drift.polcy: unknown field 'polcy' (did you mean 'policy'?)"],
  ])("exits 1 for %s, naming the path", async (file, message) => {
    const r = await cli("validate", "-f", `${root}test/fixtures/invalid/${file}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
  });

  it("reports a missing file as an error, not a crash", async () => {
    const r = await cli("validate", "-f", "/nonexistent/spec.yaml");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("(file): cannot read: no such file");
  });
});

describe("lokistack render", () => {
  it("prints task definitions, services, Cloud Map services and Loki configs as JSON with -o json", async () => {
    const r = await cli("render", "-f", `${root}manifests/examples/small.yaml`, "-o", "json");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(["taskDefinitions", "services", "discoveryServices", "lokiConfig"]);
    expect(out.discoveryServices).toContainEqual(expect.objectContaining({ Name: "prod-logs-querier", Namespace: "loki.prod.internal", DnsConfig: { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] } }));
    const compactors = out.services.filter((s: { serviceName: string }) => s.serviceName.endsWith("-compactor"));
    expect(compactors).toHaveLength(1);
    expect(compactors[0]).toMatchObject({ desiredCount: 1, deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 100 } });
    const ingesters = out.services.filter((s: { serviceName: string }) => /-ingester-\d+$/.test(s.serviceName));
    expect(ingesters).toHaveLength(3);
    const walDirs = ingesters.map((s: { serviceName: string }) => /dir: (\S+)/.exec(out.lokiConfig[s.serviceName])![1]);
    const ringIds = ingesters.map((s: { serviceName: string }) => /instance_id: (\S+)/.exec(out.lokiConfig[s.serviceName])![1]);
    expect(new Set(walDirs).size).toBe(3);
    expect(new Set(ringIds).size).toBe(3);
  });

  it("prints YAML by default, one unit with --unit, and rejects an unknown format or unit", async () => {
    const yaml = await cli("render", "-f", `${root}manifests/examples/demo.yaml`);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toMatch(/^taskDefinitions:\n/);
    const one = await cli("render", "-f", `${root}manifests/examples/demo.yaml`, "--unit", "ingester-0", "-o", "json");
    const unit = JSON.parse(one.stdout);
    expect([unit.taskDefinitions.map((t: { family: string }) => t.family), unit.services.map((s: { serviceName: string }) => s.serviceName), unit.discoveryServices.map((d: { Name: string }) => d.Name), Object.keys(unit.lokiConfig)]).toEqual([["demo-ingester-0"], ["demo-ingester-0"], ["demo-ingester-0"], ["demo-ingester-0"]]);
    expect(JSON.parse((await cli("render", "-f", `${root}manifests/examples/demo.yaml`, "--unit", "demo-querier", "-o", "json")).stdout).services).toHaveLength(1);
    const unknown = await cli("render", "-f", `${root}manifests/examples/demo.yaml`, "--unit", "nope");
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("no unit 'nope' in");
    expect(unknown.stderr).toContain("its units are distributor, ingester-0, querier, query-frontend, compactor, index-gateway");
    const bad = await cli("render", "-f", `${root}manifests/examples/demo.yaml`, "-o", "xml");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("yaml, json");
  });

  it("renders nothing for an invalid spec", async () => {
    const r = await cli("render", "-f", `${root}test/fixtures/invalid/two-compactors.yaml`);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
  });
});

describe("help", () => {
  it.each([[], ["validate"], ["render"]])("lokistack %s --help", async (...cmd) => {
    const r = await cli(...cmd, "--help");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Usage: lokistack");
  });
});

describe("the installed bin", () => {
  it("runs as a real process with its exit code", () => {
    const ok = spawnSync(process.execPath, [`${root}bin/lokistack.js`, "validate", "-f", `${root}manifests/examples/demo.yaml`], { encoding: "utf8" });
    expect(ok.stdout).toContain("valid (demo)");
    expect(ok.status).toBe(0);
    const bad = spawnSync(process.execPath, [`${root}bin/lokistack.js`, "validate", "-f", `${root}test/fixtures/invalid/two-compactors.yaml`], { encoding: "utf8" });
    expect(bad.status).toBe(1);
  });
});

describe("manifests/lokistack.schema.json", () => {
  it("is up to date with the zod schema (run npm run gen:schema)", () => {
    expect(readFileSync(`${root}${JSON_SCHEMA_PATH}`, "utf8")).toBe(lokiStackJsonSchemaText());
  });
});


describe("lokistack local", () => {
  it("refuses --tasks real without a Loki binary, naming what it was given and where to get one", async () => {
    const r = await cli("local", "--port", "0", "--tasks", "real", "--loki-bin", "/nonexistent/loki");
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("real tasks need what this machine lacks");
    expect(r.stderr).toContain("a Loki binary: /nonexistent/loki (--loki-bin) is not an executable file");
    expect(r.stdout).not.toContain("listening");
  });

  it("falls back to simulated tasks in auto mode and says how to get real ones", () => {
    const chosen = chooseTasks("auto", "/nonexistent/loki");
    expect(chosen.options).toEqual({ tasks: "simulated" });
    expect(chosen.note).toContain("Tasks are simulated: this machine lacks a Loki binary");
    expect(chosen.note).toContain("https://github.com/grafana/loki/releases");
    expect(chooseTasks("simulated", "/nonexistent/loki")).toEqual({ options: { tasks: "simulated" } });
  });

  it("serves the seeded stack to any SDK client, saves its state and stops on SIGTERM", async () => {
    const { spawn } = await import("node:child_process");
    const { mkdtempSync, existsSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { GetParameterCommand, SSMClient } = await import("@aws-sdk/client-ssm");
    const { DescribeClustersCommand, ECSClient } = await import("@aws-sdk/client-ecs");
    const state = `${mkdtempSync(`${tmpdir()}/lokistack-local-`)}/state.json`;
    const child = spawn(process.execPath, [`${root}bin/lokistack.js`, "local", "--port", "0", "--tick-ms", "20", "--state", state, "--seed", `${root}manifests/examples/demo.yaml`], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    const endpoint = await new Promise<string>((resolve, reject) => {
      child.stdout.on("data", () => {
        const m = /export AWS_ENDPOINT_URL=(\S+)/.exec(output);
        if (m) resolve(m[1]!);
      });
      child.once("exit", (code) => reject(new Error(`exited early with ${code}: ${output}`)));
    });
    const config = { endpoint, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } };
    const spec = await new SSMClient(config).send(new GetParameterCommand({ Name: "/lokistack/demo/spec" }));
    expect(spec.Parameter!.Value).toContain("name: demo");
    const clusters = await new ECSClient(config).send(new DescribeClustersCommand({ clusters: ["logging"] }));
    expect(clusters.clusters!.map((c) => c.clusterName)).toEqual(["logging"]);
    expect(output).toContain("demo-compactor       1        0/100");
    const exit = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    expect(output).toContain("stopped");
    expect(existsSync(state)).toBe(true);
  });
});
