// The CloudFormation templates: the operator's own (manifests/operator) and the
// prerequisites of one LokiStack (manifests/prerequisites). cfn-lint when it is
// installed; always a structural check against the CloudFormation resource
// specification (test/helpers/cfn.ts); and for the prerequisites, that what it
// builds is what the operator's task definitions and spec validation expect.
import { spawnSync } from "node:child_process";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { LOKI_PORTS } from "../src/resources/components.ts";
import type { ResolvedStack } from "../src/resources/resolve.ts";
import { lokiStackDocument, lokiStackSpec } from "../src/resources/schema.ts";
import { buildTaskDefinition, CONTAINERS, configParameterName } from "../src/resources/task-definition.ts";
import { type Unit, unitsOf } from "../src/resources/units.ts";
import { validateDocument } from "../src/resources/validate.ts";
import { checkTemplate, conditionHolds, type EvalContext, evaluate, loadSpec, loadTemplate, resourceExists, type Template } from "./helpers/cfn.ts";
import { evaluate as evaluatePolicy, type Statement } from "./helpers/iam.ts";
import { type Doc, docWith, NOW, resolved } from "./helpers/specs.ts";

const OPERATOR = "manifests/operator/cloudformation.yaml";
const PREREQUISITES = "manifests/prerequisites/cloudformation.yaml";

// ---- 1. cfn-lint, when it is installed ----

const cfnLintInstalled = spawnSync("cfn-lint", ["--version"], { encoding: "utf8" }).status === 0;
const NO_CFN_LINT = "SKIPPED: cfn-lint is not installed; install it with `pip install cfn-lint` to run this check";
// Said out loud as well as in the skipped tests' names: the default reporter does not list skipped tests.
if (!cfnLintInstalled) console.warn(`templates.test.ts: cfn-lint ${NO_CFN_LINT}`);

describe("cfn-lint", () => {
  for (const file of [OPERATOR, PREREQUISITES]) {
    it.skipIf(!cfnLintInstalled)(cfnLintInstalled ? `passes on ${file}` : `passes on ${file} (${NO_CFN_LINT})`, () => {
      const run = spawnSync("cfn-lint", ["--", file], { encoding: "utf8", cwd: new URL("..", import.meta.url).pathname });
      expect(run.status, `${run.stdout}${run.stderr}`).toBe(0);
    });
  }
});

// ---- 2. the structural check, against the CloudFormation resource specification ----

describe("structural check against the CloudFormation resource specification", () => {
  it(`finds no problem in ${PREREQUISITES}`, () => {
    expect(checkTemplate(loadTemplate(PREREQUISITES))).toEqual([]);
  });

  it(`finds no problem in ${OPERATOR}`, () => {
    expect(checkTemplate(loadTemplate(OPERATOR))).toEqual([]);
  });

  it("reads the specification installed with @aws-cdk/cfnspec", () => {
    const spec = loadSpec();
    expect(spec.ResourceTypes["AWS::EFS::AccessPoint"]?.Attributes).toHaveProperty("Arn");
    expect(spec.PropertyTypes["AWS::ECS::TaskDefinition.HealthCheck"]?.Properties).toHaveProperty("Command");
  });

  describe("fails on broken templates, naming each problem by its path", () => {
    const withResources = (resources: Record<string, unknown>, extra: Template = {}): Template => ({ Resources: resources, ...extra });
    const bucket = { Type: "AWS::S3::Bucket" };

    it("an unknown resource type", () => {
      expect(checkTemplate(withResources({ Bucket: { Type: "AWS::S3::Bukket" } }))).toEqual(["Resources.Bucket.Type: unknown resource type AWS::S3::Bukket"]);
    });

    it("an unknown property, at any depth, in lists and maps of property types", () => {
      const problems = checkTemplate(
        withResources({
          Bucket: { Type: "AWS::S3::Bucket", Properties: { BucketNam: "x" } },
          TaskDefinition: {
            Type: "AWS::ECS::TaskDefinition",
            Properties: {
              ContainerDefinitions: [{ Name: "loki", Image: "grafana/loki", HealthCheck: { Command: ["CMD", "true"], Foo: 1 } }],
            },
          },
          // A flow mapping whose unquoted commas split a description into keys "ECR" and "S3".
          Group: {
            Type: "AWS::EC2::SecurityGroup",
            Properties: { GroupDescription: "g", SecurityGroupEgress: parse("[{ IpProtocol: tcp, CidrIp: 0.0.0.0/0, Description: AWS APIs, ECR, S3 }]") },
          },
        }),
      );
      expect(problems).toEqual([
        "Resources.Bucket.Properties.BucketNam: unknown property",
        "Resources.TaskDefinition.Properties.ContainerDefinitions[0].HealthCheck.Foo: unknown property",
        "Resources.Group.Properties.SecurityGroupEgress[0].ECR: unknown property",
        "Resources.Group.Properties.SecurityGroupEgress[0].S3: unknown property",
      ]);
    });

    it("looks into both branches of Fn::If, and skips AWS::NoValue", () => {
      const problems = checkTemplate(
        withResources(
          { Bucket: { Type: "AWS::S3::Bucket", Properties: { VersioningConfiguration: { "Fn::If": ["Yes", { Status: "Enabled" }, { Statu: "Suspended" }] }, BucketName: { "Fn::If": ["Yes", "a", { Ref: "AWS::NoValue" }] } } } },
          { Conditions: { Yes: { "Fn::Equals": ["a", "a"] } } },
        ),
      );
      expect(problems).toEqual([
        "Resources.Bucket.Properties.VersioningConfiguration.Fn::If[2].Statu: unknown property",
        "Resources.Bucket.Properties.VersioningConfiguration.Fn::If[2]: missing required property Status",
      ]);
    });

    it("a missing required property, also inside a property type; an intrinsic counts as given", () => {
      const problems = checkTemplate(
        withResources({
          Mount: { Type: "AWS::EFS::MountTarget", Properties: { FileSystemId: "fs-1", SecurityGroups: ["sg-1"] } },
          Point: { Type: "AWS::EFS::AccessPoint", Properties: { FileSystemId: "fs-1", PosixUser: { Uid: "10001" } } },
          Given: { Type: "AWS::EFS::MountTarget", Properties: { FileSystemId: "fs-1", SecurityGroups: ["sg-1"], SubnetId: { "Fn::Select": [0, ["subnet-1"]] } } },
        }),
      );
      expect(problems).toEqual([
        "Resources.Mount.Properties: missing required property SubnetId",
        "Resources.Point.Properties.PosixUser: missing required property Gid",
      ]);
    });

    it("a Ref to nothing; a Ref to a resource inside Conditions", () => {
      const problems = checkTemplate(
        withResources({ Bucket: bucket, Policy: { Type: "AWS::S3::BucketPolicy", Properties: { Bucket: { Ref: "Buckett" }, PolicyDocument: {} } } }, { Conditions: { C: { "Fn::Equals": [{ Ref: "Bucket" }, ""] } } }),
      );
      expect(problems).toEqual([
        "Conditions.C.Fn::Equals[0]: Ref 'Bucket' names a resource; conditions may only use parameters",
        "Resources.Policy.Properties.Bucket: Ref 'Buckett' names no parameter, resource or pseudo parameter",
      ]);
    });

    it("a Fn::GetAtt of an attribute the type does not have, or of no resource", () => {
      const problems = checkTemplate(withResources({ Bucket: bucket }, { Outputs: { A: { Value: { "Fn::GetAtt": ["Bucket", "Nope"] } }, B: { Value: { "Fn::GetAtt": "Buckett.Arn" } } } }));
      expect(problems).toEqual([
        "Outputs.A.Value: Fn::GetAtt names attribute 'Nope', which Bucket (AWS::S3::Bucket) does not have",
        "Outputs.B.Value: Fn::GetAtt names no resource 'Buckett'",
      ]);
    });

    it("a Fn::Sub variable that resolves to nothing; parameters, attributes, pseudo parameters, map keys and ${!Literal} resolve", () => {
      const problems = checkTemplate(
        withResources(
          { Bucket: bucket },
          {
            Parameters: { Name: { Type: "String" } },
            Outputs: {
              Good: { Value: { "Fn::Sub": ["${Name} ${Bucket} ${Bucket.Arn} ${AWS::Region} ${Local} ${!Literal}", { Local: "x" }] } },
              Bad: { Value: { "Fn::Sub": "${Nope} ${Bucket.Nope}" } },
            },
          },
        ),
      );
      expect(problems).toEqual([
        "Outputs.Bad.Value: Fn::Sub variable ${Nope} 'Nope' names no parameter, resource or pseudo parameter",
        "Outputs.Bad.Value: Fn::Sub variable ${Bucket.Nope} names attribute 'Nope', which Bucket (AWS::S3::Bucket) does not have",
      ]);
    });

    it("a condition that does not exist, in Fn::If, a resource's Condition or a condition", () => {
      const problems = checkTemplate(
        withResources(
          { Bucket: { Type: "AWS::S3::Bucket", Condition: "Nope", Properties: { BucketName: { "Fn::If": ["Nada", "a", "b"] } } } },
          { Conditions: { C: { "Fn::Not": [{ Condition: "Never" }] } } },
        ),
      );
      expect(problems).toEqual([
        "Conditions.C.Fn::Not[0]: Condition names no condition 'Never'",
        "Resources.Bucket.Condition: Condition names no condition 'Nope'",
        "Resources.Bucket.Properties.BucketName: Fn::If names no condition 'Nada'",
      ]);
    });

    it("an unused parameter", () => {
      expect(checkTemplate(withResources({ Bucket: bucket }, { Parameters: { Unused: { Type: "String" } } }))).toEqual(["Parameters.Unused: parameter is never used"]);
    });

    it("reports every problem at once", () => {
      const problems = checkTemplate(
        withResources(
          { Bucket: { Type: "AWS::S3::Bukket" }, Policy: { Type: "AWS::S3::BucketPolicy", Properties: { Bucket: { Ref: "Nope" } } } },
          { Parameters: { Unused: { Type: "String" } } },
        ),
      );
      expect(problems).toHaveLength(4);
      expect(problems).toEqual(
        expect.arrayContaining([
          "Resources.Bucket.Type: unknown resource type AWS::S3::Bukket",
          "Resources.Policy.Properties: missing required property PolicyDocument",
          "Resources.Policy.Properties.Bucket: Ref 'Nope' names no parameter, resource or pseudo parameter",
          "Parameters.Unused: parameter is never used",
        ]),
      );
    });
  });
});

// ---- 3. the prerequisites template against what the operator builds ----

const template = loadTemplate(PREREQUISITES);
const ACCOUNT = "123456789012";
const REGION = "eu-west-1";
const STACK = "prod-logs";
const SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1", "subnet-0123456789abcdef2"];
const OPERATOR_SG = "sg-0aaaabbbbccccdddd";

/** Example parameter values, and a made-up physical id for each resource (of the shape the spec schema expects). */
function contextFor(parameters: EvalContext["parameters"] = {}): EvalContext {
  const refs: Record<string, string> = {};
  const attributes: Record<string, string> = {};
  Object.entries(template.Resources as Record<string, { Type: string }>).forEach(([id, r], i) => {
    const hex = (i + 1).toString(16).padStart(17, "0");
    switch (r.Type) {
      case "AWS::EFS::AccessPoint":
        refs[id] = `fsap-${hex}`;
        break;
      case "AWS::EFS::FileSystem":
        refs[id] = `fs-${hex}`;
        attributes[`${id}.Arn`] = `arn:aws:elasticfilesystem:${REGION}:${ACCOUNT}:file-system/${refs[id]}`;
        break;
      case "AWS::S3::Bucket":
        refs[id] = `lokistack-${STACK}-${id.toLowerCase()}-${hex}`;
        attributes[`${id}.Arn`] = `arn:aws:s3:::${refs[id]}`;
        break;
      case "AWS::EC2::SecurityGroup":
        refs[id] = attributes[`${id}.GroupId`] = `sg-${hex}`;
        break;
      case "AWS::IAM::Role":
        refs[id] = `lokistack-${STACK}-${id}-${hex}`;
        attributes[`${id}.Arn`] = `arn:aws:iam::${ACCOUNT}:role/lokistack/${refs[id]}`;
        break;
      default:
        refs[id] = `${id}-${hex}`;
    }
  });
  return {
    parameters: { StackName: STACK, VpcId: "vpc-0123456789abcdef0", Subnets: SUBNETS, IngesterOrdinals: "3", OperatorSecurityGroupId: OPERATOR_SG, ...parameters },
    refs,
    attributes,
    pseudo: { "AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": `lokistack-${STACK}` },
  };
}

const resourcesOfType = (type: string) => Object.entries(template.Resources as Record<string, { Type: string }>).filter(([, r]) => r.Type === type).map(([id]) => id);
const existing = (type: string, ctx: EvalContext) => resourcesOfType(type).filter((id) => resourceExists(template, id, ctx));
const properties = (id: string, ctx: EvalContext) => evaluate(template, template.Resources[id].Properties, ctx) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const output = (name: string, ctx: EvalContext) => evaluate(template, template.Outputs[name].Value, ctx) as string;
const policy = (role: string, ctx: EvalContext) => (properties(role, ctx).Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement);

/** A spec whose ingester WAL and compactor working directory are on EFS, with 16 ingesters. */
function efsDoc(edit: (d: Doc) => void = () => {}): Doc {
  return docWith((d) => {
    d.metadata.name = STACK;
    d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0", accessPointRoot: "/wal" } };
    d.spec.compactor = { workingDirectory: { volume: "efs", fileSystemId: "fs-0123456789abcdef0" } };
    d.spec.template = { ingester: { replicas: 16 } };
    edit(d);
  });
}
const taskDefinition = (stack: ResolvedStack, unit: Unit) => buildTaskDefinition({ stack, unit, parameterPrefix: "/lokistack", configHash: "0" });
const volume = (stack: ResolvedStack, unit: Unit, name: string) => taskDefinition(stack, unit).volumes?.find((v) => v.name === name)?.efsVolumeConfiguration;

describe("prerequisites template", () => {
  it("takes a StackName and NamespaceName exactly when the spec schema takes them as metadata.name and discovery.namespace", () => {
    const accepts = (parameter: string, value: string) => {
      const p = template.Parameters[parameter];
      return new RegExp(p.AllowedPattern).test(value) && value.length <= (p.MaxLength ?? Infinity) && value.length >= (p.MinLength ?? 0);
    };
    const nameSchema = lokiStackDocument.shape.metadata.shape.name;
    for (const name of ["prod-logs", "a", "1x", "-a", "a-", "A", "a_b", "a.b", "", "x".repeat(63), "x".repeat(64)]) {
      expect(accepts("StackName", name), name).toBe(nameSchema.safeParse(name).success);
    }
    const namespaceSchema = lokiStackSpec.shape.discovery.shape.namespace;
    for (const name of ["loki.internal", "loki.prod.internal", "loki", "Loki.internal", "-a.internal", "a-.internal", "a..b", `${"x".repeat(63)}.internal`, `${"x".repeat(64)}.internal`]) {
      expect(accepts("NamespaceName", name), name).toBe(namespaceSchema.safeParse(name).success);
    }
  });

  it("creates one access point per ingester ordinal, as many as IngesterOrdinals (at most 16, its largest allowed value)", () => {
    expect(resourcesOfType("AWS::EFS::AccessPoint")).toEqual([...Array.from({ length: 16 }, (_, i) => `AccessPoint${i}`), "CompactorAccessPoint"]);
    expect(Math.max(...(template.Parameters.IngesterOrdinals.AllowedValues as number[]))).toBe(16);
    for (const n of [1, 2, 3, 7, 16]) {
      expect(existing("AWS::EFS::AccessPoint", contextFor({ IngesterOrdinals: String(n) }))).toEqual([...Array.from({ length: n }, (_, i) => `AccessPoint${i}`), "CompactorAccessPoint"]);
    }
  });

  it("creates one EFS mount target per subnet, up to 6", () => {
    for (const n of [1, 3, 6]) {
      const subnets = Array.from({ length: n }, (_, i) => `subnet-0123456789abcdef${i}`);
      const ctx = contextFor({ Subnets: subnets });
      const targets = existing("AWS::EFS::MountTarget", ctx);
      expect(targets.map((id) => properties(id, ctx).SubnetId)).toEqual(subnets);
    }
  });

  it("access points run as the grafana/loki user 10001 and expose the directories the operator's task definitions mount", () => {
    const ctx = contextFor({ IngesterOrdinals: "16", AccessPointRoot: "/wal" });
    const stack = resolved(efsDoc());
    const ingesters = unitsOf(stack).filter((u) => u.component === "ingester");
    expect(ingesters).toHaveLength(16);
    for (const unit of ingesters) {
      const point = properties(`AccessPoint${unit.ordinal}`, ctx);
      expect(point.PosixUser).toEqual({ Uid: "10001", Gid: "10001" });
      expect(point.RootDirectory.CreationInfo).toEqual({ OwnerUid: "10001", OwnerGid: "10001", Permissions: "0750" });
      // Without accessPointIds, the operator mounts <accessPointRoot>/<unit> itself: the access point exposes the same directory.
      expect(point.RootDirectory.Path).toBe(volume(stack, unit, "wal")?.rootDirectory);
    }
    const compactor = unitsOf(stack).find((u) => u.component === "compactor")!;
    const point = properties("CompactorAccessPoint", ctx);
    expect(point.PosixUser).toEqual({ Uid: "10001", Gid: "10001" });
    expect(point.RootDirectory.Path).toBe(volume(stack, compactor, "compactor")?.rootDirectory);
  });

  it("lets Loki tasks reach each other on every port their task definitions map (HTTP, gRPC, memberlist over TCP), and EFS on 2049", () => {
    const ctx = contextFor();
    const loki = ctx.refs.LokiSecurityGroup!;
    const efs = ctx.refs.EfsSecurityGroup!;
    type Rule = { group: string; direction: "in" | "out"; protocol: string; from: number; to: number; peer: string };
    const rules: Rule[] = [];
    for (const id of resourcesOfType("AWS::EC2::SecurityGroup")) {
      const p = properties(id, ctx);
      for (const [direction, list] of [["in", p.SecurityGroupIngress ?? []], ["out", p.SecurityGroupEgress ?? []]] as const) {
        for (const r of list) rules.push({ group: ctx.refs[id]!, direction, protocol: r.IpProtocol, from: r.FromPort, to: r.ToPort, peer: r.SourceSecurityGroupId ?? r.DestinationSecurityGroupId ?? r.CidrIp });
      }
    }
    for (const [type, direction] of [["AWS::EC2::SecurityGroupIngress", "in"], ["AWS::EC2::SecurityGroupEgress", "out"]] as const) {
      for (const id of existing(type, ctx)) {
        const r = properties(id, ctx);
        rules.push({ group: r.GroupId, direction, protocol: r.IpProtocol, from: r.FromPort, to: r.ToPort, peer: r.SourceSecurityGroupId ?? r.DestinationSecurityGroupId ?? r.CidrIp });
      }
    }
    const allows = (group: string, direction: "in" | "out", port: number, peer: string) =>
      rules.some((r) => r.group === group && r.direction === direction && r.protocol === "tcp" && r.from <= port && port <= r.to && r.peer === peer);

    const stack = resolved(efsDoc());
    const mapped = unitsOf(stack).flatMap((unit) => taskDefinition(stack, unit).containerDefinitions!.flatMap((c) => c.portMappings ?? []));
    expect(new Set(mapped.map((m) => `${m.containerPort}/${m.protocol}`))).toEqual(new Set(Object.values(LOKI_PORTS).map((p) => `${p}/tcp`)));
    for (const port of Object.values(LOKI_PORTS)) {
      expect(allows(loki, "in", port, loki), `ingress ${port}`).toBe(true);
      expect(allows(loki, "out", port, loki), `egress ${port}`).toBe(true);
    }
    expect(allows(loki, "out", 2049, efs)).toBe(true);
    expect(allows(efs, "in", 2049, loki)).toBe(true);
    expect(allows(loki, "out", 443, "0.0.0.0/0")).toBe(true);
    expect(allows(loki, "in", LOKI_PORTS.http, OPERATOR_SG)).toBe(true);
    // Nothing else: no rule to or from anywhere on other ports.
    expect(rules.filter((r) => r.peer === "0.0.0.0/0").map((r) => `${r.direction} ${r.from}-${r.to}`)).toEqual(["out 443-443"]);

    // Required: without it the operator cannot ask ingesters whether they are ready or to flush.
    expect(template.Parameters.OperatorSecurityGroupId.Default).toBeUndefined();
    const withClients = contextFor({ ClientCidr: "10.0.0.0/16", ClientSecurityGroupId: "sg-0eeeeffff00001111" });
    expect(properties("LokiIngressClientCidr", withClients)).toMatchObject({ CidrIp: "10.0.0.0/16", FromPort: 3100, ToPort: 3100, IpProtocol: "tcp" });
    expect(properties("LokiIngressClientGroup", withClients)).toMatchObject({ SourceSecurityGroupId: "sg-0eeeeffff00001111", FromPort: 3100, ToPort: 3100 });
  });

  it("keeps the chunk bucket private and encrypted, and denies every request without TLS", () => {
    const ctx = contextFor();
    const bucket = template.Resources.ChunkBucket;
    expect(bucket.DeletionPolicy).toBe("Retain");
    expect(bucket.Properties.PublicAccessBlockConfiguration).toEqual({ BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true });
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe("AES256");
    const bucketPolicy = properties("ChunkBucketPolicy", ctx);
    expect(bucketPolicy.Bucket).toBe(ctx.refs.ChunkBucket);
    expect(bucketPolicy.PolicyDocument.Statement).toContainEqual({
      Sid: "DenyInsecureTransport",
      Effect: "Deny",
      Principal: "*",
      Action: "s3:*",
      Resource: [ctx.attributes["ChunkBucket.Arn"], `${ctx.attributes["ChunkBucket.Arn"]}/*`],
      Condition: { Bool: { "aws:SecureTransport": "false" } },
    });
  });

  it("gives the execution role this stack's config parameters (as the task definitions reference them), its log group, and nothing of another stack", () => {
    const ctx = contextFor();
    const statements = policy("ExecutionRole", ctx);
    const stack = resolved(efsDoc());
    for (const unit of unitsOf(stack)) {
      const td = taskDefinition(stack, unit);
      const config = td.containerDefinitions!.find((c) => c.name === CONTAINERS.config)!;
      const valueFrom = config.secrets![0]!.valueFrom!;
      expect(valueFrom).toBe(configParameterName("/lokistack", STACK, unit.name));
      expect(evaluatePolicy(statements, { action: "ssm:GetParameters", resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${valueFrom}` }).allowed).toBe(true);
      // awslogs-create-group: the execution role creates the log group on first start.
      for (const c of td.containerDefinitions!) {
        expect(c.logConfiguration?.options).toMatchObject({ "awslogs-group": stack.logGroup, "awslogs-create-group": "true" });
      }
    }
    expect(evaluatePolicy(statements, { action: "logs:CreateLogGroup", resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${stack.logGroup}` }).allowed).toBe(true);
    expect(evaluatePolicy(statements, { action: "ssm:GetParameters", resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${configParameterName("/lokistack", "other-logs", "other-logs-compactor")}` }).allowed).toBe(false);
    expect(evaluatePolicy(statements, { action: "ssm:GetParameters", resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/lokistack/${STACK}/spec` }).allowed).toBe(false);
    expect(evaluatePolicy(statements, { action: "logs:CreateLogGroup", resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/lokistack/other-logs` }).allowed).toBe(false);

    const role = properties("ExecutionRole", ctx);
    expect(role.ManagedPolicyArns).toEqual(["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]);
    expect(role.AssumeRolePolicyDocument.Statement).toEqual([
      { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole", Condition: { StringEquals: { "aws:SourceAccount": ACCOUNT } } },
    ]);
    expect(properties("TaskRole", ctx).AssumeRolePolicyDocument).toEqual(role.AssumeRolePolicyDocument);
  });

  it("grants kms:Decrypt on the spec's customer managed key only when one is given, only through SSM, only for this stack's configs", () => {
    const key = `arn:aws:kms:${REGION}:${ACCOUNT}:key/0123abcd-0123-abcd-0123-0123456789ab`;
    const parameter = (stack: string) => `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${configParameterName("/lokistack", stack, `${stack}-ingester-0`)}`;
    const decrypt = (statements: Statement[], viaService: string, parameterArn: string) =>
      evaluatePolicy(statements, { action: "kms:Decrypt", resource: key, context: { "kms:ViaService": viaService, "kms:EncryptionContext:PARAMETER_ARN": parameterArn } }).allowed;
    expect(policy("ExecutionRole", contextFor()).some((s) => [s.Action].flat().includes("kms:Decrypt"))).toBe(false);
    const withKey = policy("ExecutionRole", contextFor({ SpecKmsKeyArn: key }));
    expect(decrypt(withKey, `ssm.${REGION}.amazonaws.com`, parameter(STACK))).toBe(true);
    expect(decrypt(withKey, `s3.${REGION}.amazonaws.com`, parameter(STACK))).toBe(false);
    expect(decrypt(withKey, `ssm.${REGION}.amazonaws.com`, parameter("other-logs"))).toBe(false);
  });

  it("gives the task role what Loki needs of the chunk bucket and the WAL file system, and no other bucket", () => {
    const ctx = contextFor();
    const statements = policy("TaskRole", ctx);
    const bucket = ctx.attributes["ChunkBucket.Arn"]!;
    const allowed = (action: string, resource: string) => evaluatePolicy(statements, { action, resource }).allowed;
    expect(allowed("s3:ListBucket", bucket)).toBe(true);
    for (const action of ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]) {
      expect(allowed(action, `${bucket}/fake/chunk`)).toBe(true);
      expect(allowed(action, "arn:aws:s3:::another-bucket/fake/chunk")).toBe(false);
    }
    expect(allowed("s3:DeleteBucket", bucket)).toBe(false);
    for (const action of ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]) expect(allowed(action, ctx.attributes["FileSystem.Arn"]!)).toBe(true);
    expect(allowed("elasticfilesystem:ClientRootAccess", ctx.attributes["FileSystem.Arn"]!)).toBe(false);
  });

  describe("outputs", () => {
    const ctx = contextFor();
    const snippet = parse(output("SpecSnippet", ctx)) as { spec: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const minimal = (name: string, spec: Record<string, unknown>): Doc => ({
      apiVersion: "loki.ecs.dev/v1",
      kind: "LokiStack",
      metadata: { name },
      spec: { size: "1x.small", cluster: "logging", schemas: [{ from: "2024-01-01", version: "v13" }], ...spec },
    });

    it("map 1:1 onto spec fields, named in their descriptions, with the same values as SpecSnippet", () => {
      const at = (path: string) => path.split(".").reduce<any>((o, k) => o?.[k], snippet.spec); // eslint-disable-line @typescript-eslint/no-explicit-any
      const fields: Record<string, string> = {
        StorageS3Bucket: "storage.s3.bucket",
        StorageS3Region: "storage.s3.region",
        DiscoveryNamespace: "discovery.namespace",
        NetworkSubnets: "network.subnets",
        NetworkSecurityGroups: "network.securityGroups",
        IamExecutionRoleArn: "iam.executionRoleArn",
        IamTaskRoleArn: "iam.taskRoleArn",
        IngesterWalFileSystemId: "ingester.wal.fileSystemId",
        IngesterWalAccessPointRoot: "ingester.wal.accessPointRoot",
        IngesterWalAccessPointIds: "ingester.wal.accessPointIds",
        CompactorWorkingDirectoryFileSystemId: "compactor.workingDirectory.fileSystemId",
      };
      for (const [name, field] of Object.entries(fields)) {
        expect(template.Outputs[name].Description, name).toMatch(new RegExp(`^spec\\.${field.replace(/\./g, "\\.")}\\b`));
        const value = at(field);
        expect(output(name, ctx), name).toBe(Array.isArray(value) ? value.join(",") : value);
      }
      expect(snippet.spec.network.subnets).toEqual(SUBNETS);
      expect(snippet.spec.ingester.wal.accessPointIds).toEqual([0, 1, 2].map((i) => ctx.refs[`AccessPoint${i}`]));
      expect(output("OperatorStackRoleArns", ctx).split(",")).toEqual([snippet.spec.iam.executionRoleArn, snippet.spec.iam.taskRoleArn]);
    });

    it("SpecSnippet, merged into a minimal spec, passes the operator's validation, and its ingesters mount their own access points", () => {
      const result = validateDocument(minimal(STACK, snippet.spec), { now: NOW });
      expect(result.ok ? [] : result.errors).toEqual([]);
      if (!result.ok) return;
      const ingesters = unitsOf(result.stack).filter((u) => u.component === "ingester");
      expect(ingesters).toHaveLength(3);
      for (const unit of ingesters) {
        expect(volume(result.stack, unit, "wal")).toMatchObject({
          fileSystemId: ctx.refs.FileSystem,
          transitEncryption: "ENABLED",
          authorizationConfig: { accessPointId: ctx.refs[`AccessPoint${unit.ordinal}`], iam: "ENABLED" },
        });
      }
    });

    it("SpecSnippet with fewer access points than ingesters fails validation: the stack is updated first", () => {
      const fewer = parse(output("SpecSnippet", contextFor({ IngesterOrdinals: "2" }))) as { spec: Record<string, unknown> };
      const result = validateDocument(minimal(STACK, fewer.spec), { now: NOW });
      expect(result.ok ? [] : result.errors.map((e) => e.path)).toEqual(["spec.ingester.wal.accessPointIds"]);
    });

    it("SpecSnippet works for a monolithic stack with one access point", () => {
      const one = parse(output("SpecSnippet", contextFor({ IngesterOrdinals: "1" }))) as { spec: Record<string, unknown> };
      const result = validateDocument(minimal(STACK, { ...one.spec, size: "1x.extra-small", mode: "monolithic" }), { now: NOW });
      expect(result.ok ? [] : result.errors).toEqual([]);
    });
  });

  it("evaluates its conditions for the example values", () => {
    const ctx = contextFor();
    expect(conditionHolds(template, "HasClientCidr", ctx)).toBe(false);
    expect(conditionHolds(template, "CreateNamespace", ctx)).toBe(true);
    expect(resourceExists(template, "Namespace", contextFor({ CreateNamespace: "false" }))).toBe(false);
  });
});
