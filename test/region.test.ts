// Region and credentials come from the SDK's default chain: a profile named by
// AWS_PROFILE in the file AWS_CONFIG_FILE names decides where every call of the
// operator's clients goes, proven by the SigV4 credential scope the control
// plane received; with no region anywhere the CLI says how to set one.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateClusterCommand } from "@aws-sdk/client-ecs";
import { PutParameterCommand } from "@aws-sdk/client-ssm";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeClients, resolveRegion } from "../src/aws/clients.ts";
import { cli } from "./helpers/cli.ts";
import { inProcessOperator, ready, seeded as seededDemo, until } from "./helpers/daemon.ts";
import { example } from "./helpers/operator.ts";

/** The demo seeded, its setup calls forgotten: what the control plane counts afterwards is the operator's. */
async function seeded() {
  const h = await seededDemo();
  h.cp.resetCalls();
  return h;
}

/** Every variable the SDK's region and credential chains read, cleared for each test and restored after. */
const CHAIN_VARIABLES = [
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "AWS_DEFAULT_PROFILE",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_ENDPOINT_URL",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
];
let saved: Record<string, string | undefined> = {};
let dir = "";

beforeEach(() => {
  saved = Object.fromEntries(CHAIN_VARIABLES.map((k) => [k, process.env[k]]));
  for (const k of CHAIN_VARIABLES) delete process.env[k];
  dir = mkdtempSync(join(tmpdir(), "lokistack-region-"));
  // Nothing from this machine: no shared files, no instance metadata (nothing here is EC2).
  process.env.AWS_CONFIG_FILE = join(dir, "no-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "no-credentials");
  process.env.AWS_EC2_METADATA_DISABLED = "true";
});

afterEach(() => {
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** A profile in eu-west-1 with its own key, in a config file of its own (the SDK caches files by path). */
function euProfile(): void {
  const file = join(dir, "config");
  writeFileSync(file, ["[profile loki-eu]", "region = eu-west-1", "aws_access_key_id = AKIAPROFILEEUWEST1", "aws_secret_access_key = profile-secret", ""].join("\n"));
  process.env.AWS_CONFIG_FILE = file;
  process.env.AWS_PROFILE = "loki-eu";
}

describe("region and credentials from the SDK's default chain", () => {
  it("a profile in eu-west-1 (AWS_CONFIG_FILE + AWS_PROFILE) sends every call of the operator, its lease and its commands to eu-west-1", async () => {
    euProfile();
    const h = await seeded();
    const { op, logs } = inProcessOperator(h, { lease: "s3://lokistack-operator/leader", leaseMs: 1500, resync: "* * * * * *", watchIntervalMs: 100 });
    await op.daemon.start();
    try {
      await until(() => ready(h));
    } finally {
      await op.daemon.stop();
    }
    // The commands people run, through the CLI.
    const endpoint = ["--endpoint", h.cp.endpoint];
    const specFile = join(dir, "demo.yaml");
    writeFileSync(specFile, example("demo").replace("drift: { policy: repair }", "template: { querier: { replicas: 2 } }"));
    const put = await cli("spec", "put", "-f", specFile, ...endpoint);
    expect(put).toMatchObject({ code: 0, stderr: "" });
    expect((await cli("plan", ...endpoint)).code).toBe(2);
    expect((await cli("apply", "--once", ...endpoint)).code).toBe(0);
    expect((await cli("status", ...endpoint)).code).toBe(0);

    const scopes = h.cp.signingScopes();
    const services = new Set(Object.keys(scopes).map((s) => s.split("/")[2]));
    expect([...services].sort()).toEqual(["ecs", "s3", "servicediscovery", "ssm"]);
    // Every request since the seeding: signed for eu-west-1 with the profile's key, and nothing else.
    expect(Object.keys(scopes).every((s) => s.startsWith("AKIAPROFILEEUWEST1/eu-west-1/"))).toBe(true);
    expect(Object.values(scopes).reduce((a, b) => a + b, 0)).toBe(h.cp.calls().total);
    expect(logs.filter((l) => l.event === "region")).toEqual([]);
  });

  it("AWS_REGION wins over the profile's region, and --region over both", async () => {
    euProfile();
    process.env.AWS_REGION = "ap-southeast-2";
    const h = await seeded();
    expect(await resolveRegion({ endpoint: h.cp.endpoint })).toEqual({ region: "ap-southeast-2", source: "sdk" });
    expect((await cli("status", "--endpoint", h.cp.endpoint)).code).toBe(0);
    const clients = makeClients({ endpoint: h.cp.endpoint, region: "eu-central-1" });
    await clients.ssm.send(new PutParameterCommand({ Name: "/r", Value: "v", Type: "String" }));
    await clients.ecs.send(new CreateClusterCommand({ clusterName: "other" }));
    expect(Object.keys(h.cp.signingScopes()).sort()).toEqual([
      "AKIAPROFILEEUWEST1/ap-southeast-2/ssm", // status
      "AKIAPROFILEEUWEST1/eu-central-1/ecs",
      "AKIAPROFILEEUWEST1/eu-central-1/ssm",
    ]);
  });

  it("a local endpoint with nothing configured signs for us-east-1 with a dummy key, and says so", async () => {
    const h = await seeded();
    const status = await cli("status", "--endpoint", h.cp.endpoint);
    expect(status.code).toBe(0);
    expect(status.stderr).toContain("no AWS region configured");
    expect(status.stderr).toContain("us-east-1");
    const { op, logs } = inProcessOperator(h);
    expect((await op.ssm.get("/lokistack/demo/spec"))?.Version).toBe(1);
    expect(await op.clients.ecs.config.region()).toBe("us-east-1");
    expect(logs.filter((l) => l.event === "region")).toHaveLength(1);
    expect(Object.keys(h.cp.signingScopes()).every((s) => s.startsWith("local/us-east-1/"))).toBe(true);
  });

  it("with no region anywhere, every AWS command fails with one clear error, exit 1, no stack trace", async () => {
    for (const argv of [["status"], ["plan"], ["apply", "--once"], ["spec", "put", "-f", "unused.yaml"], ["run", "--no-lease", "--port", "0"]]) {
      const r = await cli(...argv);
      expect(r.code, argv.join(" ")).toBe(1);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^lokistack: no AWS region found: pass --region <region>, set AWS_REGION, or use a profile that has a region/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
    process.env.AWS_DEFAULT_REGION = "eu-west-1";
    const hinted = await cli("status");
    expect(hinted.code).toBe(1);
    expect(hinted.stderr).toContain("AWS_DEFAULT_REGION=eu-west-1 is set, but the AWS SDK for JavaScript reads AWS_REGION");
    // The operator's clients, used directly, fail every call with the same message.
    const clients = makeClients();
    const err = await clients.ssm.send(new PutParameterCommand({ Name: "/r", Value: "v", Type: "String" })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain("no AWS region found");
  });
});
