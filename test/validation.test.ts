import { describe, expect, it } from "vitest";
import { validateDocument, validateText } from "../src/resources/validate.ts";
import { baseDoc, docWith, exampleDoc, NOW, type Doc } from "./helpers/specs.ts";

const invalid: { name: string; doc: Doc | string; path: string; message?: RegExp }[] = [
  { name: "not YAML", doc: "spec: [unclosed", path: "(document)", message: /not valid YAML/ },
  { name: "wrong apiVersion", doc: docWith((d) => (d.apiVersion = "loki.grafana.com/v1")), path: "apiVersion", message: /loki\.ecs\.dev\/v1/ },
  { name: "wrong kind", doc: docWith((d) => (d.kind = "Loki")), path: "kind" },
  { name: "missing name", doc: docWith((d) => delete d.metadata.name), path: "metadata.name", message: /is required/ },
  { name: "uppercase name", doc: docWith((d) => (d.metadata.name = "Prod")), path: "metadata.name", message: /DNS label/ },
  { name: "name too long for service names", doc: docWith((d) => (d.metadata.name = "a".repeat(50))), path: "metadata.name", message: /at most 63.*at most 48/ },
  { name: "unknown top-level spec key", doc: docWith((d) => (d.spec.replica = 3)), path: "spec.replica", message: /did you mean 'replicationFactor'/ },
  { name: "unknown key typo in storage", doc: docWith((d) => (d.spec.storage.s3.buckets = "x")), path: "spec.storage.s3.buckets", message: /did you mean 'bucket'/ },
  { name: "unknown size", doc: docWith((d) => (d.spec.size = "1x.large")), path: "spec.size", message: /1x\.demo \| 1x\.pico/ },
  { name: "unknown mode", doc: docWith((d) => (d.spec.mode = "simple-scalable")), path: "spec.mode", message: /microservices \| monolithic/ },
  { name: "missing cluster", doc: docWith((d) => delete d.spec.cluster), path: "spec.cluster", message: /is required/ },
  { name: "cluster with spaces", doc: docWith((d) => (d.spec.cluster = "my cluster")), path: "spec.cluster", message: /ECS cluster name/ },
  { name: "bad bucket", doc: docWith((d) => (d.spec.storage.s3.bucket = "Acme_Loki")), path: "spec.storage.s3.bucket", message: /S3 bucket name/ },
  { name: "bad region", doc: docWith((d) => (d.spec.storage.s3.region = "europe")), path: "spec.storage.s3.region", message: /AWS region/ },
  { name: "no schemas", doc: docWith((d) => (d.spec.schemas = [])), path: "spec.schemas", message: /at least one schema/ },
  { name: "schema date format", doc: docWith((d) => (d.spec.schemas[0].from = "01/01/2024")), path: "spec.schemas[0].from", message: /YYYY-MM-DD/ },
  { name: "impossible schema date", doc: docWith((d) => (d.spec.schemas[0].from = "2024-02-30")), path: "spec.schemas[0].from", message: /real calendar date/ },
  { name: "duplicate schema dates", doc: docWith((d) => d.spec.schemas.push({ from: "2024-01-01", version: "v13" })), path: "spec.schemas[1].from", message: /unique/ },
  { name: "schemas out of order", doc: docWith((d) => (d.spec.schemas = [{ from: "2024-05-01", version: "v13" }, { from: "2024-01-01", version: "v13" }])), path: "spec.schemas[1].from", message: /oldest first/ },
  { name: "newest schema not v13", doc: docWith((d) => (d.spec.schemas = [{ from: "2024-01-01", version: "v12" }])), path: "spec.schemas[0].version", message: /newest schema must be v13/ },
  { name: "v13 on boltdb", doc: docWith((d) => (d.spec.schemas[0].store = "boltdb-shipper")), path: "spec.schemas[0].store", message: /tsdb/ },
  { name: "index period not 24h", doc: docWith((d) => (d.spec.schemas[0].indexPeriod = "168h")), path: "spec.schemas[0].indexPeriod", message: /"24h"/ },
  { name: "only future schemas", doc: docWith((d) => (d.spec.schemas[0].from = "2027-06-01")), path: "spec.schemas[0].from", message: /no schema is in effect/ },
  { name: "two compactors", doc: docWith((d) => (d.spec.template = { compactor: { replicas: 2 } })), path: "spec.template.compactor.replicas", message: /must be 1 \(Loki needs exactly one compactor/ },
  { name: "zero compactors", doc: docWith((d) => (d.spec.template = { compactor: { replicas: 0 } })), path: "spec.template.compactor.replicas", message: /must be 1/ },
  { name: "two monolithic tasks", doc: docWith((d) => { d.spec.mode = "monolithic"; d.spec.template = { monolithic: { replicas: 2 } }; }), path: "spec.template.monolithic.replicas", message: /must be 1/ },
  { name: "ingesters below replication factor", doc: docWith((d) => { d.spec.replicationFactor = 3; d.spec.template = { ingester: { replicas: 2 } }; }), path: "spec.template.ingester.replicas", message: /at least the replication factor \(3\)/ },
  { name: "replication factor above preset ingesters", doc: docWith((d) => (d.spec.replicationFactor = 4)), path: "spec.replicationFactor", message: /ingester replicas \(3\)/ },
  { name: "monolithic with replication factor 2", doc: docWith((d) => { d.spec.mode = "monolithic"; d.spec.replicationFactor = 2; }), path: "spec.replicationFactor", message: /must be 1 in monolithic mode/ },
  { name: "cpu 256 with memory 4096", doc: docWith((d) => (d.spec.template = { querier: { cpu: 256, memory: 4096 } })), path: "spec.template.querier.memory", message: /must be one of 512, 1024, 2048/ },
  { name: "not a Fargate cpu", doc: docWith((d) => (d.spec.template = { distributor: { cpu: 300 } })), path: "spec.template.distributor.cpu", message: /256, 512, 1024/ },
  { name: "memory too big for preset cpu", doc: docWith((d) => (d.spec.template = { compactor: { memory: 30720 } })), path: "spec.template.compactor.memory", message: /4096\.\.16384/ },
  { name: "cpu change leaves preset memory invalid", doc: docWith((d) => (d.spec.template = { ingester: { cpu: 1024 } })), path: "spec.template.ingester.cpu", message: /memory 14336/ },
  { name: "replicas as a string", doc: docWith((d) => (d.spec.template = { querier: { replicas: "3" } })), path: "spec.template.querier.replicas", message: /^must be a number, not a string$/ },
  { name: "negative replicas", doc: docWith((d) => (d.spec.template = { querier: { replicas: -1 } })), path: "spec.template.querier.replicas", message: /at least 0/ },
  { name: "zero distributors", doc: docWith((d) => (d.spec.template = { distributor: { replicas: 0 } })), path: "spec.template.distributor.replicas", message: /at least 1/ },
  { name: "autoscaling an ingester", doc: docWith((d) => (d.spec.template = { ingester: { autoscaling: { min: 3, max: 6 } } })), path: "spec.template.ingester.autoscaling", message: /stateless components/ },
  { name: "autoscaling min above max", doc: docWith((d) => (d.spec.template = { querier: { autoscaling: { min: 5, max: 2 } } })), path: "spec.template.querier.autoscaling.min", message: /must not exceed max/ },
  { name: "replicas outside autoscaling range", doc: docWith((d) => (d.spec.template = { querier: { replicas: 9, autoscaling: { min: 2, max: 8 } } })), path: "spec.template.querier.replicas", message: /2\.\.8/ },
  { name: "unknown template component", doc: docWith((d) => (d.spec.template = { queryfrontend: { replicas: 2 } })), path: "spec.template.queryfrontend", message: /did you mean 'queryFrontend'/ },
  { name: "monolithic template in microservices mode", doc: docWith((d) => (d.spec.template = { monolithic: { cpu: 1024 } })), path: "spec.template.monolithic", message: /only in monolithic mode/ },
  { name: "component template in monolithic mode", doc: docWith((d) => { d.spec.mode = "monolithic"; d.spec.template = { querier: { replicas: 2 } }; }), path: "spec.template.querier", message: /does not apply in monolithic mode/ },
  { name: "bad env name", doc: docWith((d) => (d.spec.template = { querier: { env: { "1BAD": "x" } } })), path: 'spec.template.querier.env["1BAD"]', message: /environment variable name/ },
  { name: "unknown WAL volume", doc: docWith((d) => (d.spec.ingester = { wal: { volume: "ebs" } })), path: "spec.ingester.wal.volume", message: /ephemeral \| efs/ },
  { name: "EFS WAL without file system", doc: docWith((d) => (d.spec.ingester = { wal: { volume: "efs" } })), path: "spec.ingester.wal.fileSystemId", message: /is required/ },
  { name: "too few access points", doc: docWith((d) => (d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointIds: ["fsap-0123456789abcdef0"] } })), path: "spec.ingester.wal.accessPointIds", message: /1 access point\(s\) for 3 ingester/ },
  { name: "shared access point", doc: docWith((d) => (d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointIds: ["fsap-0123456789abcdef0", "fsap-0123456789abcdef1", "fsap-0123456789abcdef0"] } })), path: "spec.ingester.wal.accessPointIds[2]", message: /never share a WAL/ },
  { name: "compactor directory inside the WAL root", doc: docWith((d) => { d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointRoot: "/loki" } }; d.spec.compactor = { workingDirectory: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", rootDirectory: "/loki/compactor" } }; }), path: "spec.compactor.workingDirectory.rootDirectory", message: /overlaps the ingester WAL root/ },
  { name: "no subnets", doc: docWith((d) => (d.spec.network.subnets = [])), path: "spec.network.subnets", message: /at least 1 item/ },
  { name: "bad security group", doc: docWith((d) => (d.spec.network.securityGroups = ["default"])), path: "spec.network.securityGroups[0]", message: /security group id/ },
  { name: "bad discovery namespace", doc: docWith((d) => (d.spec.discovery.namespace = "Loki Internal")), path: "spec.discovery.namespace", message: /DNS name/ },
  { name: "missing IAM", doc: docWith((d) => delete d.spec.iam), path: "spec.iam", message: /is required/ },
  { name: "bad role ARN", doc: docWith((d) => (d.spec.iam.taskRoleArn = "loki-task")), path: "spec.iam.taskRoleArn", message: /IAM role ARN/ },
  { name: "unknown limits key", doc: docWith((d) => (d.spec.limits = { ingestion_rate: 10 })), path: "spec.limits.ingestion_rate", message: /did you mean 'ingestion_rate_mb'/ },
  { name: "bad limits duration", doc: docWith((d) => (d.spec.limits = { retention_period: "31 days" })), path: "spec.limits.retention_period", message: /duration/ },
  { name: "shared_store in limits", doc: docWith((d) => (d.spec.limits = { shared_store: "s3" })), path: "spec.limits.shared_store", message: /removed in Loki 3/ },
  { name: "shared_store in overrides", doc: docWith((d) => (d.spec.configOverrides = { compactor: { shared_store: "s3" } })), path: "spec.configOverrides.compactor.shared_store", message: /removed in Loki 3/ },
  { name: "override of an owned block", doc: docWith((d) => (d.spec.configOverrides = { schema_config: { configs: [] } })), path: "spec.configOverrides.schema_config", message: /managed by the operator \(set spec\.schemas/ },
  { name: "override of ingester identity", doc: docWith((d) => (d.spec.configOverrides = { ingester: { lifecycler: { id: "x" } } })), path: "spec.configOverrides.ingester.lifecycler.id", message: /fixed instance id/ },
  { name: "unknown override block", doc: docWith((d) => (d.spec.configOverrides = { querrier: {} })), path: "spec.configOverrides.querrier", message: /did you mean 'querier'/ },
  { name: "unknown drift policy", doc: docWith((d) => (d.spec.drift = { policy: "fix" })), path: "spec.drift.policy", message: /repair \| report/ },
  { name: "suspend as string", doc: docWith((d) => (d.spec.suspend = "yes")), path: "spec.suspend", message: /must be a boolean/ },
  { name: "unknown deletion policy", doc: docWith((d) => (d.spec.deletionPolicy = "orphan")), path: "spec.deletionPolicy", message: /retain \| delete/ },
  { name: "spec is a list", doc: docWith((d) => (d.spec = [])), path: "spec", message: /must be an object, not a list/ },
];

describe("validation errors name the path and what would be valid", () => {
  it("has a table of at least 30 invalid specs", () => {
    expect(invalid.length).toBeGreaterThanOrEqual(30);
  });

  it.each(invalid)("$name → $path", ({ doc, path, message }) => {
    const result = typeof doc === "string" ? validateText(doc, { now: NOW }) : validateDocument(doc, { now: NOW });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const hit = result.errors.find((e) => e.path === path);
    expect(hit, `errors were: ${JSON.stringify(result.errors)}`).toBeDefined();
    if (message) expect(hit!.message).toMatch(message);
  });

  it("lists every error at once, not just the first", () => {
    const r = validateDocument(
      docWith((d) => {
        d.spec.size = "huge";
        d.spec.cluster = "bad cluster";
        d.spec.network.subnets = [];
      }),
      { now: NOW },
    );
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors.map((e) => e.path).sort()).toEqual(["spec.cluster", "spec.network.subnets", "spec.size"]);
  });
});

describe("valid specs", () => {
  it.each(["demo", "small", "monolithic", "efs-wal"])("example %s validates", (name) => {
    const r = validateDocument(exampleDoc(name), { now: NOW });
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it("accepts JSON as well as YAML", () => {
    expect(validateText(JSON.stringify(baseDoc()), { now: NOW }).ok).toBe(true);
  });

  it("merges overrides over the preset and keeps one compactor", () => {
    const r = validateDocument(docWith((d) => (d.spec.template = { querier: { replicas: 4, cpu: 1024, memory: 4096 } })), { now: NOW });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const querier = r.stack.components.find((c) => c.component === "querier")!;
    expect(querier).toMatchObject({ replicas: 4, cpu: 1024, memory: 4096 });
    expect(r.stack.components.find((c) => c.component === "compactor")!.replicas).toBe(1);
    expect(r.stack.replicationFactor).toBe(2);
  });

  it("deploys the ruler only when rules are enabled", () => {
    const without = validateDocument(baseDoc(), { now: NOW });
    const withRules = validateDocument(docWith((d) => (d.spec.rules = { enabled: true })), { now: NOW });
    expect(without.ok && without.stack.components.some((c) => c.component === "ruler")).toBe(false);
    expect(withRules.ok && withRules.stack.components.some((c) => c.component === "ruler")).toBe(true);
  });
});

describe("warnings do not block", () => {
  const warningsOf = (doc: Doc) => {
    const r = validateDocument(doc, { now: NOW });
    expect(r.ok).toBe(true);
    return r.warnings;
  };

  it("ingester replicas equal to the replication factor", () => {
    const w = warningsOf(docWith((d) => (d.spec.template = { ingester: { replicas: 2 } })));
    expect(w).toContainEqual(expect.objectContaining({ path: "spec.template.ingester.replicas", reason: "InsufficientIngesterReplicas" }));
  });

  it("retention with an ephemeral compactor working directory", () => {
    const w = warningsOf(docWith((d) => (d.spec.limits = { retention_period: "744h" })));
    expect(w).toContainEqual(expect.objectContaining({ path: "spec.compactor.workingDirectory", reason: "RetentionOnEphemeralStorage" }));
  });

  it("no retention warning from Loki 3.7 on: its deletion markers live in the bucket", () => {
    const w = warningsOf(docWith((d) => ((d.spec.limits = { retention_period: "744h" }), (d.spec.image = "grafana/loki:3.7.1"))));
    expect(w.filter((x) => x.reason === "RetentionOnEphemeralStorage")).toEqual([]);
  });

  it("no retention warning when retention is off or the directory is on EFS", () => {
    expect(warningsOf(docWith((d) => (d.spec.limits = { retention_period: "0s" })))).toEqual([]);
    expect(
      warningsOf(
        docWith((d) => {
          d.spec.limits = { retention_period: "744h" };
          d.spec.compactor = { workingDirectory: { volume: "efs", fileSystemId: "fs-0123456789abcdef0" } };
        }),
      ),
    ).toEqual([]);
  });

  it("a Loki 3.6 image cannot run an ECS health check", () => {
    const w = warningsOf(docWith((d) => (d.spec.image = "grafana/loki:3.6.1")));
    expect(w).toContainEqual(expect.objectContaining({ path: "spec.image", reason: "NoContainerHealthCheck" }));
  });

  it("a ruler template while rules are disabled", () => {
    const w = warningsOf(docWith((d) => (d.spec.template = { ruler: { replicas: 2 } })));
    expect(w).toContainEqual(expect.objectContaining({ path: "spec.template.ruler", reason: "UnusedTemplate" }));
  });
});

describe("messages never echo what the spec gave (a spec may be a SecureString)", () => {
  const secret = "s3cr3t-Marker-7Q";
  const messagesOf = (doc: Doc | string) => {
    const r = typeof doc === "string" ? validateText(doc, { now: NOW }) : validateDocument(doc, { now: NOW });
    return [...(r.ok ? [] : r.errors), ...r.warnings].map((i) => `${i.path}: ${i.message}`);
  };

  it.each<[string, Doc | string, string, RegExp]>([
    ["a string for a number", docWith((d) => (d.spec.template = { querier: { replicas: secret } })), "spec.template.querier.replicas", /must be a number, not a string/],
    ["a number for a string", docWith((d) => (d.spec.cluster = 7)), "spec.cluster", /must be a string, not a number/],
    ["a string for a boolean", docWith((d) => (d.spec.suspend = secret)), "spec.suspend", /must be a boolean, not a string/],
    ["a string for an object", docWith((d) => (d.spec.storage = secret)), "spec.storage", /must be an object, not a string/],
    ["a string for a list", docWith((d) => (d.spec.schemas = secret)), "spec.schemas", /must be an array, not a string/],
    ["a secret as an enum value", docWith((d) => (d.spec.size = secret)), "spec.size", /must be one of 1x\.demo/],
    ["a secret as a literal", docWith((d) => (d.apiVersion = secret)), "apiVersion", /loki\.ecs\.dev\/v1/],
    ["a secret as a discriminator", docWith((d) => (d.spec.ingester = { wal: { volume: secret } })), "spec.ingester.wal.volume", /ephemeral \| efs/],
    ["a secret failing a pattern", docWith((d) => (d.spec.storage.s3.region = secret)), "spec.storage.s3.region", /AWS region/],
    ["a secret failing a URL", docWith((d) => (d.spec.storage.s3.endpoint = secret)), "spec.storage.s3.endpoint", /./],
    ["a secret as an env value of the wrong type", docWith((d) => (d.spec.template = { querier: { env: { TOKEN: [secret] } } })), "spec.template.querier.env.TOKEN", /must be a string, not a list/],
    ["a secret under an unknown key", docWith((d) => (d.spec.drift = { polcy: secret })), "spec.drift.polcy", /did you mean 'policy'/],
    ["a secret as a limit", docWith((d) => (d.spec.limits = { ingestion_rate_mb: secret, retention_period: secret })), "spec.limits.ingestion_rate_mb", /must be a number, not a string/],
    ["a secret as a byte size", docWith((d) => (d.spec.limits = { max_line_size: secret })), "spec.limits.max_line_size", /./],
    ["the whole document a string", secret, "(document)", /must be an object, not a string/],
  ])("%s", (_name, doc, path, message) => {
    const messages = messagesOf(doc);
    expect(messages.find((m) => m.startsWith(`${path}: `)), messages.join("\n")).toMatch(message);
    for (const m of messages) expect(m).not.toContain(secret);
  });

  it("YAML errors give the line and column, not the text around them", () => {
    for (const text of [`spec:\n  token: "${secret}\\x${secret}"\n`, `spec: { a: ${secret}\n`, `a: 1\na: ${secret}\n`, `- a\n${secret}: b\n`, `spec:\n  - ${secret}\n  b: 1\n`, `"${secret}`]) {
      const messages = messagesOf(text);
      expect(messages[0]).toMatch(/^\(document\): not valid YAML or JSON: .+ at line \d+, column \d+$/);
      for (const m of messages) expect(m).not.toContain(secret);
    }
  });

  it("an image without a version is warned about without quoting it", () => {
    const messages = messagesOf(docWith((d) => (d.spec.image = `registry.example/${secret}`)));
    expect(messages).toEqual([expect.stringMatching(/^spec\.image: has no Loki version/)]);
    expect(messages.join("\n")).not.toContain(secret);
  });

  it("cross-field rules name paths, not the strings they compare", () => {
    const name = "a".repeat(40) + "secretname";
    const overlap = docWith((d) => {
      d.metadata.name = name;
      d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointRoot: "/s3cr3tdir" } };
      d.spec.compactor = { workingDirectory: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", rootDirectory: "/s3cr3tdir/compactor" } };
      d.spec.schemas = [{ from: "2024-01-01", version: "v13" }, { from: "2023-07-19", version: "v13" }, { from: "2023-07-19", version: "v13" }];
    });
    const messages = messagesOf(overlap);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^metadata\.name: makes the service name '<name>-[a-z-]+' \d+ characters long/),
        expect.stringMatching(/^spec\.compactor\.workingDirectory\.rootDirectory: overlaps the ingester WAL root \(spec\.ingester\.wal\.accessPointRoot\)/),
        expect.stringMatching(/^spec\.schemas\[1\]\.from: must be after spec\.schemas\[0\]\.from; list schemas oldest first$/),
        expect.stringMatching(/^spec\.schemas\[2\]\.from: duplicates spec\.schemas\[1\]\.from; dates must be unique$/),
      ]),
    );
    for (const m of messages) expect(m).not.toMatch(/secretname|s3cr3tdir|fs-0123456789abcdef0|2023-07-19/);
  });
});

describe("edge cases of the file itself", () => {
  const errorsOf = (text: string) => {
    const r = validateText(text, { now: NOW });
    return r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`);
  };
  it("an empty file, or one of comments only, says it is empty", () => {
    for (const text of ["", "\n\n", "# a comment\n\n# another\n"]) {
      expect(errorsOf(text)).toEqual(["(document): the file is empty: it should hold one LokiStack (apiVersion, kind, metadata, spec)"]);
    }
  });
  it("several documents in one file: says so in its own words, not the parser's API", () => {
    expect(errorsOf("---\napiVersion: loki.ecs.dev/v1\n---\nkind: LokiStack\n")).toEqual([
      "(document): not valid YAML or JSON: the file holds more than one YAML document (---): put one LokiStack in each file at line 3, column 1",
    ]);
  });
  it("a YAML error names the problem and where, without a cut-off frame", () => {
    const [message] = errorsOf("apiVersion: loki.ecs.dev/v1\nspec:\n  size: 1x.demo\n   cluster: logging\n");
    expect(message).toBe("(document): not valid YAML or JSON: Nested mappings are not allowed in compact mappings at line 3, column 9");
    expect(errorsOf("a: &x 1\nb: *y\n")).toEqual(["(document): not valid YAML or JSON: an alias (*name) refers to an anchor (&name) that is not defined before it"]);
  });
  it("a value of the wrong type is one error, not also a check of a length it cannot have", () => {
    const r = validateDocument(docWith((d) => ((d.spec.network as Record<string, unknown>).subnets = "subnet-0a1b2c3d4e5f60001")), { now: NOW });
    expect(r.ok ? [] : r.errors.map((e) => `${e.path}: ${e.message}`)).toEqual(["spec.network.subnets: must be an array, not a string"]);
  });
});
