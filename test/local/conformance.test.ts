// The control plane through the real SDK clients over HTTP: shapes, limits and errors.
import {
  CreateClusterCommand,
  CreateServiceCommand,
  DeleteServiceCommand,
  DescribeClustersCommand,
  DescribeServicesCommand,
  DescribeTaskDefinitionCommand,
  DescribeTasksCommand,
  DeregisterTaskDefinitionCommand,
  ListServicesCommand,
  ListTaskDefinitionsCommand,
  ListTagsForResourceCommand,
  ListTasksCommand,
  RegisterTaskDefinitionCommand,
  RunTaskCommand,
  StopTaskCommand,
  TagResourceCommand,
  UntagResourceCommand,
  UpdateServiceCommand,
} from "@aws-sdk/client-ecs";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  GetBucketLocationCommand,
  HeadObjectCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from "@aws-sdk/client-s3";
import { Readable } from "node:stream";
import {
  DeleteParameterCommand,
  GetParameterCommand,
  GetParameterHistoryCommand,
  GetParametersByPathCommand,
  GetParametersCommand,
  LabelParameterVersionCommand,
  PutParameterCommand,
} from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { canonicalService, canonicalTaskDefinition, diffCanonical } from "../../src/resources/normalize.ts";
import { render } from "../../src/resources/render.ts";
import { harness, network, rejection, taskDefinitionInput } from "../helpers/local.ts";
import { exampleDoc, resolved } from "../helpers/specs.ts";

describe("ECS", () => {
  it("rejects DescribeServices with 11 services and reports missing ones as failures", async () => {
    const { ecs } = await harness();
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    const eleven = Array.from({ length: 11 }, (_, i) => `svc-${i}`);
    const err = await rejection(ecs.send(new DescribeServicesCommand({ cluster: "logging", services: eleven })));
    expect(err.name).toBe("InvalidParameterException");
    const out = await ecs.send(new DescribeServicesCommand({ cluster: "logging", services: eleven.slice(0, 10) }));
    expect(out.services).toEqual([]);
    expect(out.failures).toHaveLength(10);
    expect(out.failures![0]).toEqual({ arn: "arn:aws:ecs:us-east-1:123456789012:service/logging/svc-0", reason: "MISSING" });
  });

  it("raises the named exceptions for a missing cluster and service", async () => {
    const { ecs } = await harness();
    expect((await rejection(ecs.send(new DescribeServicesCommand({ cluster: "nope", services: ["x"] })))).name).toBe("ClusterNotFoundException");
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    expect((await rejection(ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "x", desiredCount: 1 })))).name).toBe("ServiceNotFoundException");
    expect((await rejection(ecs.send(new ListTasksCommand({ cluster: "logging", serviceName: "x" })))).name).toBe("ServiceNotFoundException");
    const clusters = await ecs.send(new DescribeClustersCommand({ clusters: ["logging", "nope"] }));
    expect(clusters.clusters!.map((c) => c.clusterName)).toEqual(["logging"]);
    expect(clusters.failures).toEqual([{ arn: "arn:aws:ecs:us-east-1:123456789012:cluster/nope", reason: "MISSING" }]);
  });

  it("validates task definitions like ECS and numbers revisions per family", async () => {
    const { ecs } = await harness();
    const bad = await rejection(ecs.send(new RegisterTaskDefinitionCommand({ ...taskDefinitionInput("a"), cpu: "256", memory: "4096" })));
    expect(bad.name).toBe("ClientException");
    expect(bad.message).toContain("No Fargate configuration exists for given values: 256 CPU, 4096 memory");
    const r1 = await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("a")));
    const r2 = await ecs.send(new RegisterTaskDefinitionCommand({ ...taskDefinitionInput("a"), cpu: "0.5 vCPU", memory: "1GB" }));
    expect([r1.taskDefinition!.revision, r2.taskDefinition!.revision]).toEqual([1, 2]);
    expect([r2.taskDefinition!.cpu, r2.taskDefinition!.memory]).toEqual(["512", "1024"]);
    const latest = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "a" }));
    expect(latest.taskDefinition!.taskDefinitionArn).toBe("arn:aws:ecs:us-east-1:123456789012:task-definition/a:2");
    expect(latest.taskDefinition!.containerDefinitions![0]).toMatchObject({ essential: true, cpu: 0, portMappings: [{ containerPort: 3100, hostPort: 3100, protocol: "tcp" }] });
    expect(latest.taskDefinition!.registeredAt).toBeInstanceOf(Date);
    expect((await rejection(ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "a:9" })))).name).toBe("ClientException");
  });

  it("lists and deregisters task definitions, and filters tasks by family and startedBy", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    for (const f of ["a", "a", "b"]) await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput(f)));
    expect((await ecs.send(new ListTaskDefinitionsCommand({ familyPrefix: "a" }))).taskDefinitionArns!.map((a) => a.split("/")[1])).toEqual(["a:1", "a:2"]);
    const dereg = await ecs.send(new DeregisterTaskDefinitionCommand({ taskDefinition: "a:2" }));
    expect(dereg.taskDefinition!.status).toBe("INACTIVE");
    expect((await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: "a" }))).taskDefinition!.revision).toBe(1);
    expect((await ecs.send(new ListTaskDefinitionsCommand({ status: "INACTIVE" }))).taskDefinitionArns!.map((a) => a.split("/")[1])).toEqual(["a:2"]);
    expect((await rejection(ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "x", taskDefinition: "a:2", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network })))).message).toBe("TaskDefinition is inactive");
    await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "a", launchType: "FARGATE", networkConfiguration: network, startedBy: "rogue" }));
    await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "b", launchType: "FARGATE", networkConfiguration: network }));
    cp.step(1);
    expect((await ecs.send(new ListTasksCommand({ cluster: "logging", family: "b" }))).taskArns).toHaveLength(1);
    const rogue = await ecs.send(new ListTasksCommand({ cluster: "logging", startedBy: "rogue" }));
    expect(rogue.taskArns).toHaveLength(1);
    expect((await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: rogue.taskArns! }))).tasks![0]!.taskDefinitionArn).toMatch(/task-definition\/a:1$/);
  });

  it("round-trips every rendered object of a stack to an empty diff", async () => {
    const { ecs } = await harness({ paused: true });
    const out = render(resolved(exampleDoc("small")));
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    for (const td of out.taskDefinitions) {
      await ecs.send(new RegisterTaskDefinitionCommand(td));
      const d = await ecs.send(new DescribeTaskDefinitionCommand({ taskDefinition: td.family, include: ["TAGS"] }));
      expect(diffCanonical(canonicalTaskDefinition(td), canonicalTaskDefinition(d.taskDefinition!, d.tags))).toEqual([]);
    }
    for (const svc of out.services) await ecs.send(new CreateServiceCommand(svc));
    for (let i = 0; i < out.services.length; i += 10) {
      const batch = out.services.slice(i, i + 10);
      const d = await ecs.send(new DescribeServicesCommand({ cluster: "logging", services: batch.map((s) => s.serviceName!), include: ["TAGS"] }));
      for (const svc of batch) {
        const observed = d.services!.find((s) => s.serviceName === svc.serviceName)!;
        expect(diffCanonical(canonicalService(svc), canonicalService(observed))).toEqual([]);
      }
    }
  });

  it("paginates ListServices (default 10) and ListTasks (100)", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    for (let i = 0; i < 23; i++) {
      await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: `s${i}`, taskDefinition: "app", desiredCount: 0, launchType: "FARGATE", networkConfiguration: network }));
    }
    const pages: number[] = [];
    let token: string | undefined;
    do {
      const p = await ecs.send(new ListServicesCommand({ cluster: "logging", nextToken: token }));
      pages.push(p.serviceArns!.length);
      token = p.nextToken;
    } while (token);
    expect(pages).toEqual([10, 10, 3]);

    for (let i = 0; i < 13; i++) await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "app", count: 10, launchType: "FARGATE", networkConfiguration: network }));
    cp.step(3);
    const first = await ecs.send(new ListTasksCommand({ cluster: "logging" }));
    expect(first.taskArns).toHaveLength(100);
    const second = await ecs.send(new ListTasksCommand({ cluster: "logging", nextToken: first.nextToken }));
    expect(second.taskArns).toHaveLength(30);
    expect(second.nextToken).toBeUndefined();
    const tooMany = await rejection(ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: [...first.taskArns!, second.taskArns![0]!] })));
    expect(tooMany.name).toBe("InvalidParameterException");
    const described = await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: [first.taskArns![0]!, "arn:aws:ecs:us-east-1:123456789012:task/logging/0000"] }));
    expect(described.tasks).toHaveLength(1);
    expect(described.failures).toEqual([{ arn: "arn:aws:ecs:us-east-1:123456789012:task/logging/0000", reason: "MISSING" }]);
  });

  it("drains a deleted service to INACTIVE and refuses its name while DRAINING", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    const create = () => ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network }));
    await create();
    cp.step(4);
    expect((await rejection(ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "web" })))).message).toContain("scaled above 0");
    const del = await ecs.send(new DeleteServiceCommand({ cluster: "logging", service: "web", force: true }));
    expect(del.service!.status).toBe("DRAINING");
    expect((await rejection(create())).message).toContain("still Draining");
    expect((await rejection(ecs.send(new UpdateServiceCommand({ cluster: "logging", service: "web", desiredCount: 2 })))).name).toBe("ServiceNotActiveException");
    expect((await ecs.send(new ListServicesCommand({ cluster: "logging" }))).serviceArns).toEqual([]);
    // "After all tasks have transitioned to either STOPPING or STOPPED status, the service status
    // moves from DRAINING to INACTIVE": the task is still stopping under an INACTIVE service.
    const status = async () => (await ecs.send(new DescribeServicesCommand({ cluster: "logging", services: ["web"] }))).services![0]!.status;
    const task = Object.values(cp.ecs.state.tasks)[0]!;
    for (let i = 0; i < 6 && task.lastStatus !== "STOPPING"; i++) cp.step(1);
    expect(task.lastStatus).toBe("STOPPING");
    expect(await status()).toBe("INACTIVE");
    // Created again under the name, it is another service: the old one's stopping task is not its,
    // and does not hold back the new one's first task, even at maximumPercent 100.
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network, deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 100 } }));
    cp.step(1);
    const live = Object.values(cp.ecs.state.tasks).filter((t) => t.lastStatus !== "STOPPED");
    expect(live.map((t) => (t === task ? `old ${t.lastStatus}` : `new ${t.lastStatus}`))).toEqual(["old DEPROVISIONING", "new PROVISIONING"]);
    cp.step(6);
    expect(task.lastStatus).toBe("STOPPED");
  });

  it("tags services, task definitions and tasks; refuses aws: keys", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    const svc = await ecs.send(new CreateServiceCommand({
      cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 1, launchType: "FARGATE", networkConfiguration: network,
      tags: [{ key: "lokistack.io/managed-by", value: "ecs-lokistack-operator" }], propagateTags: "SERVICE", enableECSManagedTags: true,
    }));
    const arn = svc.service!.serviceArn!;
    await ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: "team", value: "obs" }] }));
    await ecs.send(new UntagResourceCommand({ resourceArn: arn, tagKeys: ["team"] }));
    expect((await ecs.send(new ListTagsForResourceCommand({ resourceArn: arn }))).tags).toEqual([{ key: "lokistack.io/managed-by", value: "ecs-lokistack-operator" }]);
    expect((await rejection(ecs.send(new TagResourceCommand({ resourceArn: arn, tags: [{ key: "aws:x", value: "y" }] })))).name).toBe("InvalidParameterException");
    cp.step(1);
    const [taskArn] = (await ecs.send(new ListTasksCommand({ cluster: "logging", serviceName: "web" }))).taskArns!;
    const task = (await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: [taskArn!], include: ["TAGS"] }))).tasks![0]!;
    expect(task.tags).toContainEqual({ key: "lokistack.io/managed-by", value: "ecs-lokistack-operator" });
    expect(task.tags).toContainEqual({ key: "aws:ecs:serviceName", value: "web" });
    expect(task.group).toBe("service:web");
    expect(task.startedBy).toMatch(/^ecs-svc\/\d+$/);
  });

  it("runs tasks outside services and stops them with UserInitiated", async () => {
    const { ecs, cp } = await harness({ paused: true });
    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    const noNet = await rejection(ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "app", launchType: "FARGATE" })));
    expect(noNet.message).toContain("Network Configuration must be provided");
    const run = await ecs.send(new RunTaskCommand({ cluster: "logging", taskDefinition: "app", launchType: "FARGATE", networkConfiguration: network, startedBy: "someone" }));
    const arn = run.tasks![0]!.taskArn!;
    expect(run.tasks![0]).toMatchObject({ group: "family:app", startedBy: "someone", lastStatus: "PROVISIONING" });
    cp.step(10);
    const stop = await ecs.send(new StopTaskCommand({ cluster: "logging", task: arn, reason: "rogue" }));
    expect(stop.task).toMatchObject({ desiredStatus: "STOPPED", stopCode: "UserInitiated", stoppedReason: "rogue" });
    cp.step(4);
    const stopped = await ecs.send(new ListTasksCommand({ cluster: "logging", desiredStatus: "STOPPED" }));
    expect(stopped.taskArns).toEqual([arn]);
    const t = (await ecs.send(new DescribeTasksCommand({ cluster: "logging", tasks: [arn] }))).tasks![0]!;
    expect(t.lastStatus).toBe("STOPPED");
    expect(t.stoppedAt).toBeInstanceOf(Date);
  });
});

describe("SSM", () => {
  it("versions parameters and raises the named errors", async () => {
    const { ssm } = await harness();
    const put = await ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: "a", Type: "String" }));
    expect(put).toMatchObject({ Version: 1, Tier: "Standard" });
    expect((await rejection(ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: "b", Type: "String" })))).name).toBe("ParameterAlreadyExists");
    expect((await ssm.send(new PutParameterCommand({ Name: "/lokistack/demo/spec", Value: "b", Overwrite: true }))).Version).toBe(2);
    const got = await ssm.send(new GetParameterCommand({ Name: "/lokistack/demo/spec" }));
    expect(got.Parameter).toMatchObject({ Value: "b", Version: 2, Type: "String" });
    expect(got.Parameter!.LastModifiedDate).toBeInstanceOf(Date);
    expect((await ssm.send(new GetParameterCommand({ Name: "/lokistack/demo/spec:1" }))).Parameter!.Value).toBe("a");
    expect((await rejection(ssm.send(new GetParameterCommand({ Name: "/nope" })))).name).toBe("ParameterNotFound");
    expect((await rejection(ssm.send(new GetParameterCommand({ Name: "/lokistack/demo/spec:7" })))).name).toBe("ParameterVersionNotFound");
    const many = await ssm.send(new GetParametersCommand({ Names: ["/lokistack/demo/spec", "/missing"] }));
    expect(many.Parameters!.map((p) => p.Name)).toEqual(["/lokistack/demo/spec"]);
    expect(many.InvalidParameters).toEqual(["/missing"]);
    expect((await rejection(ssm.send(new PutParameterCommand({ Name: "/x", Value: "v", Type: "String", Overwrite: true, Tags: [{ Key: "a", Value: "b" }] })))).message).toContain("tags and overwrite can't be used together");
    await ssm.send(new DeleteParameterCommand({ Name: "/lokistack/demo/spec" }));
    expect((await rejection(ssm.send(new DeleteParameterCommand({ Name: "/lokistack/demo/spec" })))).name).toBe("ParameterNotFound");
  });

  it("keeps SecureString values encrypted unless asked to decrypt", async () => {
    const { ssm } = await harness();
    await ssm.send(new PutParameterCommand({ Name: "/s", Value: "hunter2", Type: "SecureString" }));
    expect((await ssm.send(new GetParameterCommand({ Name: "/s" }))).Parameter!.Value).not.toContain("hunter2");
    expect((await ssm.send(new GetParameterCommand({ Name: "/s", WithDecryption: true }))).Parameter!.Value).toBe("hunter2");
  });

  it("enforces the 4 KB standard and 8 KB advanced limits", async () => {
    const { ssm } = await harness();
    const big = "x".repeat(5000);
    const err = await rejection(ssm.send(new PutParameterCommand({ Name: "/big", Value: big, Type: "String" })));
    expect(err.name).toBe("ValidationException");
    expect(err.message).toContain("advanced-parameter tier");
    expect((await ssm.send(new PutParameterCommand({ Name: "/big", Value: big, Type: "String", Tier: "Advanced" }))).Tier).toBe("Advanced");
    expect((await ssm.send(new PutParameterCommand({ Name: "/auto", Value: big, Type: "String", Tier: "Intelligent-Tiering" }))).Tier).toBe("Advanced");
    expect((await rejection(ssm.send(new PutParameterCommand({ Name: "/huge", Value: "x".repeat(9000), Type: "String", Tier: "Advanced" })))).name).toBe("ValidationException");
  });

  it("keeps 100 versions, and refuses to drop a labelled oldest version", async () => {
    const { ssm } = await harness();
    for (let i = 1; i <= 100; i++) await ssm.send(new PutParameterCommand({ Name: "/v", Value: `v${i}`, Type: "String", Overwrite: true }));
    await ssm.send(new LabelParameterVersionCommand({ Name: "/v", ParameterVersion: 1, Labels: ["first"] }));
    const err = await rejection(ssm.send(new PutParameterCommand({ Name: "/v", Value: "v101", Overwrite: true })));
    expect(err.name).toBe("ParameterMaxVersionLimitExceeded");
    await ssm.send(new LabelParameterVersionCommand({ Name: "/v", ParameterVersion: 50, Labels: ["first"] }));
    expect((await ssm.send(new PutParameterCommand({ Name: "/v", Value: "v101", Overwrite: true }))).Version).toBe(101);
    const history: number[] = [];
    let token: string | undefined;
    do {
      const h = await ssm.send(new GetParameterHistoryCommand({ Name: "/v", NextToken: token }));
      history.push(...h.Parameters!.map((p) => p.Version!));
      token = h.NextToken;
    } while (token);
    expect(history).toHaveLength(100);
    expect(history[0]).toBe(2);
    expect((await rejection(ssm.send(new GetParameterCommand({ Name: "/v:1" })))).name).toBe("ParameterVersionNotFound");
  });

  it("pages GetParametersByPath at most 10 at a time, with short and empty pages that carry a NextToken", async () => {
    const { ssm } = await harness();
    for (let i = 0; i < 25; i++) await ssm.send(new PutParameterCommand({ Name: `/lokistack/s${String(i).padStart(2, "0")}/spec`, Value: "x", Type: "String" }));
    for (let i = 0; i < 15; i++) await ssm.send(new PutParameterCommand({ Name: `/other/p${i}`, Value: "x", Type: "String" }));
    const pages: number[] = [];
    let token: string | undefined;
    do {
      const p = await ssm.send(new GetParametersByPathCommand({ Path: "/lokistack", Recursive: true, NextToken: token }));
      pages.push(p.Parameters!.length);
      token = p.NextToken;
    } while (token);
    expect(pages.reduce((a, b) => a + b, 0)).toBe(25);
    expect(pages.every((n) => n <= 10)).toBe(true);
    expect(pages).toContain(0);
    const direct = await ssm.send(new GetParametersByPathCommand({ Path: "/lokistack", MaxResults: 10 }));
    expect(direct.Parameters).toEqual([]);
    expect((await rejection(ssm.send(new GetParametersByPathCommand({ Path: "/lokistack", MaxResults: 11 })))).name).toBe("ValidationException");
  });
});

describe("S3", () => {
  it("creates only once with If-None-Match and swaps only on a matching If-Match", async () => {
    const { s3 } = await harness();
    await s3.send(new CreateBucketCommand({ Bucket: "leases" }));
    await s3.send(new HeadBucketCommand({ Bucket: "leases" }));
    const first = await s3.send(new PutObjectCommand({ Bucket: "leases", Key: "op/lease.json", Body: '{"holder":"a"}', IfNoneMatch: "*" }));
    expect(first.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    const second = await rejection(s3.send(new PutObjectCommand({ Bucket: "leases", Key: "op/lease.json", Body: '{"holder":"b"}', IfNoneMatch: "*" })));
    expect(second.name).toBe("PreconditionFailed");
    expect(second.$metadata?.httpStatusCode).toBe(412);
    const renewed = await s3.send(new PutObjectCommand({ Bucket: "leases", Key: "op/lease.json", Body: '{"holder":"a","n":2}', IfMatch: first.ETag }));
    const stale = await rejection(s3.send(new PutObjectCommand({ Bucket: "leases", Key: "op/lease.json", Body: '{"holder":"b"}', IfMatch: first.ETag })));
    expect(stale.$metadata?.httpStatusCode).toBe(412);
    const gone = await rejection(s3.send(new PutObjectCommand({ Bucket: "leases", Key: "op/none.json", Body: "x", IfMatch: first.ETag })));
    expect(gone.name).toBe("NoSuchKey");
    const got = await s3.send(new GetObjectCommand({ Bucket: "leases", Key: "op/lease.json" }));
    expect(await got.Body!.transformToString()).toBe('{"holder":"a","n":2}');
    expect(got.ETag).toBe(renewed.ETag);
    expect((await s3.send(new HeadObjectCommand({ Bucket: "leases", Key: "op/lease.json" }))).ETag).toBe(renewed.ETag);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: "leases", Prefix: "op/" }));
    expect(listed.Contents!.map((o) => o.Key)).toEqual(["op/lease.json"]);
    await s3.send(new DeleteObjectCommand({ Bucket: "leases", Key: "op/lease.json" }));
    expect((await rejection(s3.send(new HeadObjectCommand({ Bucket: "leases", Key: "op/lease.json" })))).$metadata?.httpStatusCode).toBe(404);
    expect((await rejection(s3.send(new GetObjectCommand({ Bucket: "nope", Key: "x" })))).name).toBe("NoSuchBucket");
  });

  // The shapes Loki's object store client writes: a TSDB table per period and tenant,
  // chunk keys with ':' in them.
  const lokiKeys = ["index/index_19700/fake/1700000000-compactor-1.tsdb.gz", "index/index_19700/fake/1700000100-ingester-0.tsdb.gz", "index/index_19701/fake/1700086400-ingester-0.tsdb.gz", "index/delete_requests/delete_requests.gz", "index/README.txt", "fake/8f1c2b3a4d5e6f70:18b0c0a0b00:18b0c0a4e88:a1b2c3d4", "loki_cluster_seed.json"];
  const bucketWith = async (keys: readonly string[]): Promise<{ s3: S3Client; endpoint: string }> => {
    const { s3, cp } = await harness();
    await s3.send(new CreateBucketCommand({ Bucket: "chunks" }));
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: "chunks", Key, Body: `body of ${Key}` }));
    return { s3, endpoint: cp.endpoint };
  };

  it("rolls keys up into CommonPrefixes at the delimiter, each counted once against MaxKeys", async () => {
    const { s3 } = await bucketWith(lokiKeys);
    const tables = await s3.send(new ListObjectsV2Command({ Bucket: "chunks", Prefix: "index/", Delimiter: "/" }));
    expect(tables.CommonPrefixes!.map((p) => p.Prefix)).toEqual(["index/delete_requests/", "index/index_19700/", "index/index_19701/"]);
    expect(tables.Contents!.map((o) => o.Key)).toEqual(["index/README.txt"]);
    expect(tables).toMatchObject({ KeyCount: 4, Delimiter: "/", Prefix: "index/", IsTruncated: false });
    const tenants = await s3.send(new ListObjectsV2Command({ Bucket: "chunks", Prefix: "index/index_19700/", Delimiter: "/" }));
    expect(tenants.CommonPrefixes!.map((p) => p.Prefix)).toEqual(["index/index_19700/fake/"]);
    expect(tenants.Contents).toBeUndefined();
    const top = await s3.send(new ListObjectsV2Command({ Bucket: "chunks", Delimiter: "/" }));
    expect(top.CommonPrefixes!.map((p) => p.Prefix)).toEqual(["fake/", "index/"]);
    expect(top.Contents!.map((o) => o.Key)).toEqual(["loki_cluster_seed.json"]);
  });

  it("pages one entry at a time through keys and common prefixes alike, each exactly once (V2 tokens and V1 markers)", async () => {
    const { s3 } = await bucketWith(lokiKeys);
    const v2: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: "chunks", Prefix: "index/", Delimiter: "/", MaxKeys: 1, ContinuationToken }));
      expect(page.KeyCount).toBe(1);
      v2.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((o) => o.Key!));
      ContinuationToken = page.NextContinuationToken;
      expect(Boolean(ContinuationToken)).toBe(page.IsTruncated);
    } while (ContinuationToken);
    expect(v2).toEqual(["index/README.txt", "index/delete_requests/", "index/index_19700/", "index/index_19701/"]);
    const v1: string[] = [];
    let Marker: string | undefined;
    for (;;) {
      const page = await s3.send(new ListObjectsCommand({ Bucket: "chunks", Prefix: "index/", Delimiter: "/", MaxKeys: 2, Marker }));
      v1.push(...(page.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(page.Contents ?? []).map((o) => o.Key!));
      if (!page.IsTruncated) break;
      Marker = page.NextMarker;
    }
    expect(v1.sort()).toEqual([...v2].sort());
    const all = await s3.send(new ListObjectsV2Command({ Bucket: "chunks", StartAfter: "index/index_19701/" }));
    expect(all.Contents!.map((o) => o.Key)).toEqual(["index/index_19701/fake/1700086400-ingester-0.tsdb.gz", "loki_cluster_seed.json"]);
  });

  it("stores and lists keys with ':' unchanged, URL-encodes listings on request, and serves byte ranges", async () => {
    const { s3, endpoint } = await bucketWith(lokiKeys);
    const chunk = "fake/8f1c2b3a4d5e6f70:18b0c0a0b00:18b0c0a4e88:a1b2c3d4";
    expect(await (await s3.send(new GetObjectCommand({ Bucket: "chunks", Key: chunk }))).Body!.transformToString()).toBe(`body of ${chunk}`);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: "chunks", Prefix: "fake/" }))).Contents!.map((o) => o.Key)).toEqual([chunk]);
    const raw = await (await fetch(`${endpoint}/chunks?list-type=2&prefix=fake%2F&encoding-type=url`)).text();
    expect(raw).toContain(`<Key>${encodeURIComponent(chunk)}</Key>`);
    expect(raw).toContain("<EncodingType>url</EncodingType>");
    const part = await s3.send(new GetObjectCommand({ Bucket: "chunks", Key: chunk, Range: "bytes=0-6" }));
    expect(await part.Body!.transformToString()).toBe("body of");
    expect(part.ContentRange).toBe(`bytes 0-6/${`body of ${chunk}`.length}`);
    const tail = await s3.send(new GetObjectCommand({ Bucket: "chunks", Key: chunk, Range: "bytes=-8" }));
    expect(await tail.Body!.transformToString()).toBe("a1b2c3d4");
    expect((await rejection(s3.send(new GetObjectCommand({ Bucket: "chunks", Key: chunk, Range: "bytes=9999-" })))).$metadata?.httpStatusCode).toBe(416);
    expect((await s3.send(new GetBucketLocationCommand({ Bucket: "chunks" }))).LocationConstraint).toBeUndefined();
  });

  it("stores the payload of a streamed upload, not its aws-chunked framing", async () => {
    const { s3, endpoint } = await bucketWith([]);
    // The SDK sends a stream as aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER);
    // minio-go, Loki's client, signs each chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
    const signed = ["5;chunk-signature=" + "a".repeat(64), "hello", "3;chunk-signature=" + "b".repeat(64), " s3", "0;chunk-signature=" + "c".repeat(64), "", ""].join("\r\n");
    const put = await fetch(`${endpoint}/chunks/signed`, { method: "PUT", body: signed, headers: { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "8" } });
    expect(put.status).toBe(200);
    expect(await (await s3.send(new GetObjectCommand({ Bucket: "chunks", Key: "signed" }))).Body!.transformToString()).toBe("hello s3");
    const payload = Buffer.from("x".repeat(70_000) + "end");
    await s3.send(new PutObjectCommand({ Bucket: "chunks", Key: "streamed", Body: Readable.from([payload.subarray(0, 40_000), payload.subarray(40_000)]), ContentLength: payload.length }));
    const got = await s3.send(new GetObjectCommand({ Bucket: "chunks", Key: "streamed" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(payload)).toBe(true);
  });
});


describe("Cloud Map", () => {
  it("creates namespaces and services, refuses duplicates, and counts the running tasks ECS registers", async () => {
    const { ecs, discovery, cp } = await harness({ paused: true });
    const { CreatePrivateDnsNamespaceCommand, CreateServiceCommand: CreateDiscoveryServiceCommand, ListNamespacesCommand, ListServicesCommand: ListDiscoveryServicesCommand } = await import("@aws-sdk/client-servicediscovery");
    await discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" }));
    expect((await rejection(discovery.send(new CreatePrivateDnsNamespaceCommand({ Name: "loki.internal", Vpc: "vpc-0123456789abcdef0" })))).name).toBe("NamespaceAlreadyExists");
    const ns = (await discovery.send(new ListNamespacesCommand({ Filters: [{ Name: "NAME", Values: ["loki.internal"], Condition: "EQ" }] }))).Namespaces!;
    expect(ns.map((n) => n.Name)).toEqual(["loki.internal"]);
    const created = await discovery.send(new CreateDiscoveryServiceCommand({ Name: "web", NamespaceId: ns[0]!.Id, DnsConfig: { RoutingPolicy: "MULTIVALUE", DnsRecords: [{ Type: "A", TTL: 10 }] } }));
    expect((await rejection(discovery.send(new CreateDiscoveryServiceCommand({ Name: "web", NamespaceId: ns[0]!.Id })))).name).toBe("ServiceAlreadyExists");
    expect((await rejection(discovery.send(new CreateDiscoveryServiceCommand({ Name: "x", NamespaceId: "ns-nope" })))).name).toBe("NamespaceNotFound");

    await ecs.send(new CreateClusterCommand({ clusterName: "logging" }));
    await ecs.send(new RegisterTaskDefinitionCommand(taskDefinitionInput("app")));
    const unknown = await rejection(ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network, serviceRegistries: [{ registryArn: "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-nope" }] })));
    expect(unknown.name).toBe("InvalidParameterException");
    await ecs.send(new CreateServiceCommand({ cluster: "logging", serviceName: "web", taskDefinition: "app", desiredCount: 2, launchType: "FARGATE", networkConfiguration: network, serviceRegistries: [{ registryArn: created.Service!.Arn }] }));
    cp.step(4);
    const listed = await discovery.send(new ListDiscoveryServicesCommand({ Filters: [{ Name: "NAMESPACE_ID", Values: [ns[0]!.Id!], Condition: "EQ" }] }));
    expect(listed.Services!.map((s) => [s.Name, s.InstanceCount])).toEqual([["web", 2]]);
  });
});
