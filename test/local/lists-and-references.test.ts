// DescribeParameters, ListTaskDefinitions, Cloud Map list filters, what ECS answers for deregistered and
// missing task definitions and for missing clusters: through the real SDK clients over HTTP.
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand as DeleteEcsServiceCommand,
  DeregisterTaskDefinitionCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  ListTaskDefinitionsCommand,
  type ListTaskDefinitionsCommandInput,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateHttpNamespaceCommand,
  CreatePrivateDnsNamespaceCommand,
  CreateServiceCommand as CreateDiscoveryServiceCommand,
  DeleteServiceCommand,
  GetServiceCommand,
  ListNamespacesCommand,
  ListServicesCommand,
  type ServiceDiscoveryClient,
} from "@aws-sdk/client-servicediscovery";
import { DescribeParametersCommand, PutParameterCommand, type ParameterStringFilter, type SSMClient } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { harness, network, rejection, taskDefinitionInput } from "../helpers/local.ts";

const names = (out: { Parameters?: { Name?: string }[] }) => out.Parameters!.map((p) => p.Name);

/** The error a call fails with, as [name, message]. */
const answer = async (p: Promise<unknown>) => {
  const e = await rejection(p);
  return [e.name, e.message];
};

async function describeAll(ssm: SSMClient, filters: ParameterStringFilter[], max?: number): Promise<{ names: string[]; pages: number[] }> {
  const all: string[] = [];
  const pages: number[] = [];
  let token: string | undefined;
  do {
    const page = await ssm.send(new DescribeParametersCommand({ ParameterFilters: filters, MaxResults: max, NextToken: token }));
    all.push(...names(page).map(String));
    pages.push(page.Parameters!.length);
    token = page.NextToken;
  } while (token);
  return { names: all, pages };
}

describe("SSM DescribeParameters", () => {
  async function seeded() {
    const h = await harness();
    const put = (Name: string, Type: "String" | "SecureString" | "StringList", extra: object = {}) => h.ssm.send(new PutParameterCommand({ Name, Value: "v", Type, ...extra }));
    await put("/lokistack/demo/spec", "String", { Description: "the spec" });
    await put("/lokistack/demo/status", "String", { Tags: [{ Key: "team", Value: "obs" }] });
    await put("/lokistack/demo/config/ingester-0", "SecureString");
    await put("/lokistack/demo-2/spec", "String");
    await put("/other/list", "StringList");
    return h;
  }

  it("filters by Path (OneLevel by default, or Recursive), Name, Type and tags, and answers ParameterMetadata", async () => {
    const { ssm } = await seeded();
    const describeWith = async (...filters: ParameterStringFilter[]) => names(await ssm.send(new DescribeParametersCommand({ ParameterFilters: filters, MaxResults: 50 })));
    expect(await describeWith({ Key: "Path", Values: ["/lokistack/demo"] })).toEqual(["/lokistack/demo/spec", "/lokistack/demo/status"]);
    expect(await describeWith({ Key: "Path", Option: "OneLevel", Values: ["/lokistack/demo"] })).toEqual(["/lokistack/demo/spec", "/lokistack/demo/status"]);
    expect(await describeWith({ Key: "Path", Option: "Recursive", Values: ["/lokistack/demo"] })).toEqual([
      "/lokistack/demo/config/ingester-0",
      "/lokistack/demo/spec",
      "/lokistack/demo/status",
    ]);
    // Recursive below /lokistack/demo never reaches /lokistack/demo-2.
    expect(await describeWith({ Key: "Path", Option: "Recursive", Values: ["/lokistack"] })).toHaveLength(4);
    expect(await describeWith({ Key: "Name", Option: "BeginsWith", Values: ["/lokistack/demo-"] })).toEqual(["/lokistack/demo-2/spec"]);
    expect(await describeWith({ Key: "Name", Values: ["/lokistack/demo/spec", "/other/list"] })).toEqual(["/lokistack/demo/spec", "/other/list"]);
    expect(await describeWith({ Key: "Name", Option: "Contains", Values: ["status"] })).toEqual(["/lokistack/demo/status"]);
    expect(await describeWith({ Key: "Type", Values: ["StringList"] })).toEqual(["/other/list"]);
    expect(await describeWith({ Key: "Path", Option: "Recursive", Values: ["/lokistack"] }, { Key: "Type", Option: "Equals", Values: ["SecureString"] })).toEqual([
      "/lokistack/demo/config/ingester-0",
    ]);
    expect(await describeWith({ Key: "tag:team", Values: ["obs"] })).toEqual(["/lokistack/demo/status"]);
    expect(await describeWith({ Key: "tag:team" })).toEqual(["/lokistack/demo/status"]);

    const secure = (await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Type", Values: ["SecureString"] }] }))).Parameters![0]!;
    expect(secure).toMatchObject({
      Name: "/lokistack/demo/config/ingester-0",
      ARN: "arn:aws:ssm:us-east-1:123456789012:parameter/lokistack/demo/config/ingester-0",
      Type: "SecureString",
      KeyId: "alias/aws/ssm",
      LastModifiedUser: "arn:aws:iam::123456789012:root",
      Version: 1,
      Tier: "Standard",
      Policies: [],
      DataType: "text",
    });
    expect(secure.LastModifiedDate).toBeInstanceOf(Date);
    expect(secure).not.toHaveProperty("Value");
    const spec = (await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: ["/lokistack/demo/spec"] }] }))).Parameters![0]!;
    expect(spec.Description).toBe("the spec");
    expect(spec).not.toHaveProperty("KeyId");
  });

  it("pages at most MaxResults (1-50, 10 when omitted) and hands out a NextToken exactly while more match", async () => {
    const { ssm } = await harness();
    for (let i = 0; i < 25; i++) await ssm.send(new PutParameterCommand({ Name: `/p/${String(i).padStart(2, "0")}`, Value: "v", Type: "String" }));
    for (let i = 0; i < 5; i++) await ssm.send(new PutParameterCommand({ Name: `/q/${i}`, Value: "v", Type: "String" }));
    const path = [{ Key: "Path", Values: ["/p"] }];
    expect((await describeAll(ssm, path)).pages).toEqual([10, 10, 5]);
    const byTwelve = await describeAll(ssm, path, 12);
    expect(byTwelve.pages).toEqual([12, 12, 1]);
    expect(byTwelve.names).toEqual(Array.from({ length: 25 }, (_, i) => `/p/${String(i).padStart(2, "0")}`));
    expect((await describeAll(ssm, [{ Key: "Path", Values: ["/q"] }], 5)).pages).toEqual([5]);
    expect((await describeAll(ssm, [], 50)).pages).toEqual([30]);
    for (const MaxResults of [0, 51]) {
      const err = await rejection(ssm.send(new DescribeParametersCommand({ MaxResults })));
      expect(err.name).toBe("ValidationException");
      expect(err.message).toContain("at 'maxResults' failed to satisfy constraint");
    }
    expect((await rejection(ssm.send(new DescribeParametersCommand({ NextToken: "not-a-token" })))).name).toBe("InvalidNextToken");
  });

  it("refuses invalid filters with SSM's error codes", async () => {
    const { ssm } = await seeded();
    const refused = async (filters: ParameterStringFilter[]) => rejection(ssm.send(new DescribeParametersCommand({ ParameterFilters: filters })));
    const cases: [ParameterStringFilter[], string, string][] = [
      [[{ Key: "Label", Values: ["live"] }], "InvalidFilterKey", "The following filter key is not valid: Label."],
      [[{ Key: "Name", Values: ["a"] }, { Key: "Name", Values: ["b"] }], "InvalidFilterKey", "The following filter is duplicated in the request: Name."],
      [[{ Key: "Path", Option: "Equals", Values: ["/lokistack"] }], "InvalidFilterOption", "Valid options include: [Recursive, OneLevel]."],
      [[{ Key: "Type", Option: "Contains", Values: ["String"] }], "InvalidFilterOption", "The following filter option is not valid: Contains."],
      [[{ Key: "Name", Option: "Recursive", Values: ["/x"] }], "InvalidFilterOption", "Valid options include: [BeginsWith, Contains, Equals]."],
      [[{ Key: "Type", Values: ["Secret"] }], "InvalidFilterValue", "The following filter value is not valid: Secret."],
      [[{ Key: "Tier", Values: ["Premium"] }], "InvalidFilterValue", "Valid values include: [Standard, Advanced, Intelligent-Tiering]."],
      [[{ Key: "Name" }], "InvalidFilterValue", "The following filter values are missing : null for filter key Name."],
      [[{ Key: "Owner", Values: ["me"] }], "ValidationException", "Member must satisfy regular expression pattern"],
      [[{ Key: "Name", Values: Array.from({ length: 51 }, (_, i) => `/n${i}`) }], "ValidationException", "Member must have length less than or equal to 50"],
      [[{ Key: "Path", Values: ["/aws/service"] }], "ValidationException", "Filters for common parameters can't be prefixed"],
      [[{ Key: "Path", Values: ["lokistack"] }], "ValidationException", "The parameter name must begin with a forward slash"],
    ];
    for (const [filters, code, message] of cases) {
      const err = await refused(filters);
      expect([err.name, err.message]).toEqual([code, expect.stringContaining(message)]);
    }
    // Fifty values are fine.
    const fifty = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: Array.from({ length: 50 }, (_, i) => `/n${i}`) }] }));
    expect(fifty.Parameters).toEqual([]);
  });

  it("is counted and faulted like every other action", async () => {
    const { ssm, cp } = await harness();
    await ssm.send(new DescribeParametersCommand({}));
    cp.faults.update({ throttle: { "ssm.DescribeParameters": 1 } });
    const err = await rejection(ssm.send(new DescribeParametersCommand({})));
    expect([err.name, err.message]).toEqual(["ThrottlingException", "Rate exceeded"]);
    cp.faults.update({ throttle: {}, errors: [{ match: "ssm.DescribeParameters", rate: 1, code: "InternalServerError", status: 500 }] });
    expect((await rejection(ssm.send(new DescribeParametersCommand({})))).name).toBe("InternalServerError");
    const counts = (await (await fetch(`${cp.endpoint}/_local/calls`)).json()) as ReturnType<typeof cp.calls>;
    expect(counts.calls["ssm.DescribeParameters"]).toBe(3);
    expect(counts.errors).toEqual({ "ssm.DescribeParameters:ThrottlingException": 1, "ssm.DescribeParameters:InternalServerError": 1 });
    expect(cp.calls()).toEqual(counts);
  });
});

describe("ECS task definition references", () => {
  it("answers 'TaskDefinition is inactive' for a deregistered revision and 'TaskDefinition not found.' for a missing one", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app", { image: "grafana/loki:3.5.1" })));
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app:1", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network }));
    cp.step(3);
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: "app:1" }));

    const create = (taskDefinition: string) =>
      ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "other", taskDefinition, desiredCount: 1, launchType: "FARGATE", networkConfiguration: network }));
    const update = (taskDefinition: string) => ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "web", taskDefinition }));
    const run = (taskDefinition: string) => ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition, launchType: "FARGATE", networkConfiguration: network }));
    expect(await answer(create("app:1"))).toEqual(["ClientException", "TaskDefinition is inactive"]);
    expect(await answer(update("app:1"))).toEqual(["ClientException", "TaskDefinition is inactive"]);
    expect(await answer(run("app:1"))).toEqual(["InvalidParameterException", "TaskDefinition is inactive"]);
    const arn1 = "arn:aws:ecs:us-east-1:123456789012:task-definition/app:1";
    expect(await answer(run(arn1))).toEqual(["InvalidParameterException", "TaskDefinition is inactive"]);
    for (const missing of ["app:9", "nope", "nope:1"]) {
      expect(await answer(create(missing))).toEqual(["ClientException", "TaskDefinition not found."]);
      expect(await answer(update(missing))).toEqual(["ClientException", "TaskDefinition not found."]);
      expect(await answer(run(missing))).toEqual(["ClientException", "TaskDefinition not found."]);
      expect(await answer(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: missing })))).toEqual(["ClientException", "Unable to describe task definition."]);
    }
    // The service keeps its INACTIVE revision and still scales; the INACTIVE revision stays describable.
    const scaled = await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "web", desiredCount: 2 }));
    expect(scaled.service!.taskDefinition).toBe(arn1);
    expect((await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "app:1" }))).taskDefinition!.status).toBe("INACTIVE");
    // The bare family means its latest ACTIVE revision; with none left it is not found.
    expect((await run("app")).tasks![0]!.taskDefinitionArn).toMatch(/app:2$/);
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: "app:2" }));
    expect(await answer(run("app"))).toEqual(["ClientException", "TaskDefinition not found."]);
  });

  it("lists task definitions of one family exactly, ordered by family then revision, with status, sort and paging", async () => {
    const { ecs } = await harness({ paused: true });
    for (const f of ["demo-ingester-10", "demo-ingester-1", "demo-ingester-2", "demo-ingester-1", "demo-ingester-10", "demo-ingester-1"]) {
      await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput(f)));
    }
    const list = async (input: ListTaskDefinitionsCommandInput) =>
      (await ecs.send(new ListTaskDefinitionsCommand(input))).taskDefinitionArns!.map((a) => a.split("/")[1]);
    expect(await list({ familyPrefix: "demo-ingester-1" })).toEqual(["demo-ingester-1:1", "demo-ingester-1:2", "demo-ingester-1:3"]);
    expect(await list({ familyPrefix: "demo-ingester" })).toEqual([]);
    expect(await list({})).toEqual(["demo-ingester-1:1", "demo-ingester-1:2", "demo-ingester-1:3", "demo-ingester-10:1", "demo-ingester-10:2", "demo-ingester-2:1"]);
    expect(await list({ sort: "DESC" })).toEqual(["demo-ingester-2:1", "demo-ingester-10:2", "demo-ingester-10:1", "demo-ingester-1:3", "demo-ingester-1:2", "demo-ingester-1:1"]);
    await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: "demo-ingester-1:2" }));
    expect(await list({ familyPrefix: "demo-ingester-1" })).toEqual(["demo-ingester-1:1", "demo-ingester-1:3"]);
    expect(await list({ status: "INACTIVE" })).toEqual(["demo-ingester-1:2"]);
    expect(await list({ status: "DELETE_IN_PROGRESS" })).toEqual([]);

    const pages: string[][] = [];
    let nextToken: string | undefined;
    do {
      const page = await ecs.send(new ListTaskDefinitionsCommand({ sort: "DESC", maxResults: 2, nextToken }));
      pages.push(page.taskDefinitionArns!.map((a) => a.split("/")[1]!));
      nextToken = page.nextToken;
    } while (nextToken);
    expect(pages).toEqual([["demo-ingester-2:1", "demo-ingester-10:2"], ["demo-ingester-10:1", "demo-ingester-1:3"], ["demo-ingester-1:1"]]);

    const refusal = async (input: object) => (await rejection(ecs.send(new ListTaskDefinitionsCommand(input as never)))).name;
    expect(await refusal({ status: "ALL" })).toBe("InvalidParameterException");
    expect(await refusal({ sort: "UP" })).toBe("InvalidParameterException");
    expect(await refusal({ maxResults: 0 })).toBe("InvalidParameterException");
    expect(await refusal({ maxResults: 101 })).toBe("InvalidParameterException");
  });

  it("lists 100 task definitions when maxResults is omitted", async () => {
    const { ecs } = await harness({ paused: true });
    for (let i = 0; i < 101; i++) await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("many")));
    const first = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "many" }));
    expect(first.taskDefinitionArns).toHaveLength(100);
    const second = await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "many", nextToken: first.nextToken }));
    expect(second.taskDefinitionArns!.map((a) => a.split("/")[1])).toEqual(["many:101"]);
    expect(second.nextToken).toBeUndefined();
  });
});

describe("ECS with a cluster that does not exist", () => {
  it("answers ClusterNotFoundException 'Cluster not found.' to DescribeServices and ListTasks, the default cluster included", async () => {
    const { ecs } = await harness();
    const notFound = ["ClusterNotFoundException", "Cluster not found."];
    expect(await answer(ecs.send(new DescribeServicesCommand({ cluster: "nope", services: ["web"] })))).toEqual(notFound);
    expect(await answer(ecs.send(new DescribeServicesCommand({ cluster: "arn:aws:ecs:us-east-1:123456789012:cluster/nope", services: ["web"] })))).toEqual(notFound);
    expect(await answer(ecs.send(new ListTasksCommand({ cluster: "nope" })))).toEqual(notFound);
    expect(await answer(ecs.send(new ListTasksCommand({ cluster: "nope", serviceName: "web" })))).toEqual(notFound);
    expect(await answer(ecs.send(new ListTasksCommand({})))).toEqual(notFound);
    expect(await answer(ecs.send(new DescribeServicesCommand({ services: ["web"] })))).toEqual(notFound);
    await ecs.send(new CreateClusterCommand({}));
    expect((await ecs.send(new ListTasksCommand({}))).taskArns).toEqual([]);
  });
});

describe("Cloud Map lists", () => {
  async function namespaces(discovery: ServiceDiscoveryClient) {
    await discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.prod.internal", Vpc: "vpc-0123456789abcdef0" }));
    await discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.dev.internal", Vpc: "vpc-0123456789abcdef0" }));
    await discovery.send(new CreateHttpNamespaceCommand({ Name: "loki-http" }));
    const all = (await discovery.send(new ListNamespacesCommand({}))).Namespaces!;
    return Object.fromEntries(all.map((n) => [n.Name!, n]));
  }

  it("filters namespaces by NAME, TYPE, HTTP_NAME (EQ or BEGINS_WITH, one value) and RESOURCE_OWNER", async () => {
    const { discovery } = await harness();
    await namespaces(discovery);
    const list = async (...Filters: { Name: "NAME" | "TYPE" | "HTTP_NAME" | "RESOURCE_OWNER"; Values: string[]; Condition?: "EQ" | "BEGINS_WITH" | "IN" }[]) =>
      (await discovery.send(new ListNamespacesCommand({ Filters }))).Namespaces!.map((n) => n.Name);
    expect(await list({ Name: "NAME", Values: ["loki.prod.internal"] })).toEqual(["loki.prod.internal"]);
    expect(await list({ Name: "NAME", Values: ["loki."], Condition: "BEGINS_WITH" })).toEqual(["loki.prod.internal", "loki.dev.internal"]);
    expect(await list({ Name: "TYPE", Values: ["HTTP"], Condition: "EQ" })).toEqual(["loki-http"]);
    expect(await list({ Name: "TYPE", Values: ["DNS_PRIVATE"] }, { Name: "NAME", Values: ["loki.d"], Condition: "BEGINS_WITH" })).toEqual(["loki.dev.internal"]);
    expect(await list({ Name: "HTTP_NAME", Values: ["loki.dev.internal"] })).toEqual(["loki.dev.internal"]);
    expect(await list({ Name: "RESOURCE_OWNER", Values: ["SELF"] })).toHaveLength(3);
    expect(await list({ Name: "NAME", Values: ["nope"] })).toEqual([]);
    for (const Filters of [
      [{ Name: "TYPE" as const, Values: ["HTTP", "DNS_PRIVATE"], Condition: "IN" as const }],
      [{ Name: "NAME" as const, Values: ["a", "b"] }],
      [{ Name: "RESOURCE_OWNER" as const, Values: ["SELF"], Condition: "BEGINS_WITH" as const }],
    ]) {
      expect((await rejection(discovery.send(new ListNamespacesCommand({ Filters })))).name).toBe("InvalidInput");
    }
  });

  it("filters services by one NAMESPACE_ID (ID or ARN) with EQ only, and pages a window of MaxResults before filtering", async () => {
    const { discovery } = await harness();
    const ns = await namespaces(discovery);
    const prod = ns["loki.prod.internal"]!;
    const dev = ns["loki.dev.internal"]!;
    for (let i = 0; i < 4; i++) {
      await discovery.send(new CreateDiscoveryServiceCommand({ Name: `prod-${i}`, NamespaceId: prod.Id }));
      await discovery.send(new CreateDiscoveryServiceCommand({ Name: `dev-${i}`, NamespaceId: dev.Id }));
    }
    const list = async (Values: string[], Condition?: "EQ" | "IN" | "BEGINS_WITH" | "BETWEEN") => discovery.send(new ListServicesCommand({ Filters: [{ Name: "NAMESPACE_ID", Values, Condition }] }));
    const byId = await list([prod.Id!], "EQ");
    expect(byId.Services!.map((s) => s.Name)).toEqual(["prod-0", "prod-1", "prod-2", "prod-3"]);
    expect(byId.Services![0]).toMatchObject({ Type: "DNS_HTTP", InstanceCount: 0, ResourceOwner: "123456789012", CreatedByAccount: "123456789012" });
    expect(byId.Services![0]).not.toHaveProperty("NamespaceId");
    expect((await list([prod.Arn!])).Services).toHaveLength(4);
    expect((await list(["ns-doesnotexist00000"])).Services).toEqual([]);
    expect((await discovery.send(new ListServicesCommand({}))).Services).toHaveLength(8);
    expect((await discovery.send(new GetServiceCommand({ Id: byId.Services![0]!.Id! }))).Service!.NamespaceId).toBe(prod.Id);

    for (const [values, condition] of [
      [[prod.Id!, dev.Id!], "IN"],
      [[prod.Id!], "IN"],
      [[prod.Id!, dev.Id!], "EQ"],
      [[prod.Id!], "BEGINS_WITH"],
      [[prod.Id!], "BETWEEN"],
      [[], "EQ"],
    ] as const) {
      const err = await rejection(list([...values], condition));
      expect(err.name).toBe("InvalidInput");
    }
    expect((await rejection(discovery.send(new ListServicesCommand({ MaxResults: 101 })))).name).toBe("InvalidInput");

    // Services alternate prod, dev: windows of 3 hold 1 or 2 prod services, and the last window's filtering leaves it short.
    const pages: (string | undefined)[][] = [];
    let NextToken: string | undefined;
    do {
      const page = await discovery.send(new ListServicesCommand({ Filters: [{ Name: "NAMESPACE_ID", Values: [dev.Id!] }], MaxResults: 3, NextToken }));
      pages.push(page.Services!.map((s) => s.Name));
      NextToken = page.NextToken;
    } while (NextToken);
    expect(pages).toEqual([["dev-0"], ["dev-1", "dev-2"], ["dev-3"]]);
  });

  it("refuses DeleteService while ECS tasks are registered, and allows it once they have stopped", async () => {
    const { ecs, discovery, cp } = await harness({ paused: true });
    await discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
    const ns = (await discovery.send(new ListNamespacesCommand({}))).Namespaces![0]!;
    const registry = (await discovery.send(new CreateDiscoveryServiceCommand({ Name: "web", NamespaceId: ns.Id, DnsConfig: { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] } }))).Service!;
    const other = (await discovery.send(new CreateDiscoveryServiceCommand({ Name: "other", NamespaceId: ns.Id }))).Service!;
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network, serviceRegistries: [{ registryArn: registry.Arn }] }));
    const instances = async (id: string) => (await discovery.send(new GetServiceCommand({ Id: id }))).Service!.InstanceCount;
    cp.step(4);
    expect(await instances(registry.Id!)).toBe(2);
    const refused = await rejection(discovery.send(new DeleteServiceCommand({ Id: registry.Id })));
    expect([refused.name, refused.message]).toEqual(["ResourceInUse", "Service contains registered instances; delete the instances before deleting the service"]);

    // Moving the ECS service to another registry: its running tasks stay registered where they started until they are replaced.
    await ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "web", serviceRegistries: [{ registryArn: other.Arn }] }));
    expect(await instances(registry.Id!)).toBe(2);
    cp.step(12);
    expect([await instances(registry.Id!), await instances(other.Id!)]).toEqual([0, 2]);
    await discovery.send(new DeleteServiceCommand({ Id: registry.Id }));

    // Deleting the ECS service stops its tasks, which deregisters them.
    await ecs.send(new DeleteEcsServiceCommand({ cluster: "logging", service: "web", force: true }));
    expect((await rejection(discovery.send(new DeleteServiceCommand({ Id: other.Id })))).name).toBe("ResourceInUse");
    cp.step(6);
    expect(await instances(other.Id!)).toBe(0);
    await discovery.send(new DeleteServiceCommand({ Id: other.Id }));
    expect((await discovery.send(new ListServicesCommand({}))).Services).toEqual([]);
  });
});
