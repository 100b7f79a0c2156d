// The IAM evaluator the permission tests rely on, checked against IAM's
// documented evaluation rules, and the operator template's policy read through it.
import { describe, expect, it } from "vitest";
import { evaluate, operatorTaskRolePolicy, wildcard, type Statement } from "./helpers/iam.ts";

describe("the IAM evaluator", () => {
  const owned = { StringEquals: { "aws:ResourceTag/lokistack.io/managed-by": "ecs-lokistack-operator" } };
  const statements: Statement[] = [
    { Sid: "Read", Effect: "Allow", Action: ["ecs:Describe*", "ecs:ListTasks"], Resource: "*" },
    { Sid: "Change", Effect: "Allow", Action: "ecs:UpdateService", Resource: "arn:aws:ecs:us-east-1:123456789012:service/*", Condition: owned },
    { Sid: "Stop", Effect: "Allow", Action: "ecs:StopTask", Resource: "*", Condition: { ArnLike: { "ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/logging" } } },
    { Sid: "NoProd", Effect: "Deny", Action: "ecs:*", Resource: "arn:aws:ecs:*:*:service/prod/*" },
  ];

  it("matches actions case-insensitively with wildcards, and resources exactly with wildcards", () => {
    expect(wildcard("ecs:Describe*", "ECS:describeservices", true)).toBe(true);
    expect(wildcard("arn:aws:s3:::b/lease", "arn:aws:s3:::b/lease2")).toBe(false);
    expect(evaluate(statements, { action: "ecs:DescribeServices", resource: "*" })).toEqual({ allowed: true, allowedBy: ["Read"] });
    expect(evaluate(statements, { action: "ecs:DeleteService", resource: "*" }).allowed).toBe(false);
  });

  it("a condition on a key the request lacks fails; every condition must hold", () => {
    const arn = "arn:aws:ecs:us-east-1:123456789012:service/logging/demo-querier";
    expect(evaluate(statements, { action: "ecs:UpdateService", resource: arn }).allowed).toBe(false);
    expect(evaluate(statements, { action: "ecs:UpdateService", resource: arn, context: { "aws:ResourceTag/lokistack.io/managed-by": "someone" } }).allowed).toBe(false);
    expect(evaluate(statements, { action: "ecs:UpdateService", resource: arn, context: { "aws:ResourceTag/lokistack.io/managed-by": "ecs-lokistack-operator" } }).allowedBy).toEqual(["Change"]);
    expect(evaluate(statements, { action: "ecs:StopTask", resource: "arn:aws:ecs:us-east-1:123456789012:task/other/1", context: { "ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/other" } }).allowed).toBe(false);
  });

  it("an explicit Deny wins over any Allow", () => {
    const d = evaluate(statements, { action: "ecs:DescribeServices", resource: "arn:aws:ecs:us-east-1:123456789012:service/prod/x" });
    expect(d).toMatchObject({ allowed: false, deniedBy: "NoProd" });
  });

  it("ForAllValues needs every value of a multivalued key to match, and holds when the key is absent", () => {
    const s: Statement[] = [{ Sid: "A", Effect: "Allow", Action: "ecs:TagResource", Resource: "*", Condition: { "ForAllValues:StringLike": { "aws:TagKeys": "lokistack.io/*" } } }];
    expect(evaluate(s, { action: "ecs:TagResource", resource: "x", context: { "aws:TagKeys": ["lokistack.io/stack", "lokistack.io/component"] } }).allowed).toBe(true);
    expect(evaluate(s, { action: "ecs:TagResource", resource: "x", context: { "aws:TagKeys": ["lokistack.io/stack", "owner"] } }).allowed).toBe(false);
    expect(evaluate(s, { action: "ecs:TagResource", resource: "x" }).allowed).toBe(true);
  });

  it("IfExists holds when the key is absent; Null tests presence", () => {
    const s: Statement[] = [
      { Sid: "A", Effect: "Allow", Action: "ssm:PutParameter", Resource: "*", Condition: { StringEqualsIfExists: { "ssm:Overwrite": "true" } } },
      { Sid: "B", Effect: "Allow", Action: "ecs:TagResource", Resource: "*", Condition: { Null: { "ecs:CreateAction": "false" } } },
    ];
    expect(evaluate(s, { action: "ssm:PutParameter", resource: "x" }).allowed).toBe(true);
    expect(evaluate(s, { action: "ssm:PutParameter", resource: "x", context: { "ssm:Overwrite": "false" } }).allowed).toBe(false);
    expect(evaluate(s, { action: "ecs:TagResource", resource: "x" }).allowed).toBe(false);
    expect(evaluate(s, { action: "ecs:TagResource", resource: "x", context: { "ecs:CreateAction": "CreateService" } }).allowed).toBe(true);
  });
});

describe("the operator template's task-role policy, read through the evaluator", () => {
  const policy = operatorTaskRolePolicy(
    {
      Prefix: "/lokistack",
      ManagedClusterArns: ["arn:aws:ecs:us-east-1:123456789012:cluster/logging"],
      StackRoleArns: ["arn:aws:iam::123456789012:role/lokistack-execution", "arn:aws:iam::123456789012:role/lokistack-task"],
    },
    "lokistack-operator-lease",
  );

  const cluster = { "ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/logging" };
  const elsewhere = { "ecs:cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/payments" };
  const ownedTag = { "aws:ResourceTag/lokistack.io/managed-by": "ecs-lokistack-operator" };
  const requestTag = { "aws:RequestTag/lokistack.io/managed-by": "ecs-lokistack-operator" };
  const allowed = (action: string, resource: string, context: Record<string, string> = {}) => evaluate(policy, { action, resource, context }).allowed;

  it("changes a service only when it carries the ownership tag and runs in a managed cluster", () => {
    const arn = "arn:aws:ecs:us-east-1:123456789012:service/logging/demo-querier";
    expect(evaluate(policy, { action: "ecs:UpdateService", resource: arn, context: { ...ownedTag, ...cluster } }).allowed).toBe(true);
    expect(allowed("ecs:UpdateService", "arn:aws:ecs:us-east-1:123456789012:service/payments/api", { ...ownedTag, ...elsewhere })).toBe(false);
    expect(evaluate(policy, { action: "ecs:UpdateService", resource: arn, context: {} }).allowed).toBe(false);
    expect(evaluate(policy, { action: "ecs:DeleteService", resource: arn, context: { "aws:ResourceTag/lokistack.io/managed-by": "someone-else" } }).allowed).toBe(false);
  });

  it("tags only on create or what it owns: it can never make someone's service its own", () => {
    const foreign = "arn:aws:ecs:us-east-1:123456789012:service/logging/someone-elses";
    expect(allowed("ecs:TagResource", foreign, { ...requestTag, ...cluster })).toBe(false);
    expect(allowed("ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:service/logging/demo-querier", { ...ownedTag, ...requestTag, ...cluster })).toBe(true);
    // Tag repair must not depend on ecs:cluster, which TagResource requests are not documented to carry.
    expect(allowed("ecs:TagResource", "arn:aws:ecs:us-east-1:123456789012:service/logging/demo-querier", { ...ownedTag, ...requestTag })).toBe(true);
    expect(allowed("ecs:TagResource", "*", { "ecs:CreateAction": "CreateService", ...requestTag })).toBe(true);
    expect(allowed("ecs:TagResource", "*", { "ecs:CreateAction": "RegisterTaskDefinition", ...requestTag })).toBe(true);
    expect(allowed("ecs:TagResource", "*", { "ecs:CreateAction": "CreateService" })).toBe(false);
  });

  it("retags only its own tag keys, on ECS and on Cloud Map", () => {
    const querier = "arn:aws:ecs:us-east-1:123456789012:service/logging/demo-querier";
    expect(evaluate(policy, { action: "ecs:TagResource", resource: querier, context: { ...ownedTag, ...requestTag, "aws:TagKeys": ["lokistack.io/managed-by", "lokistack.io/stack"] } }).allowed).toBe(true);
    expect(evaluate(policy, { action: "ecs:TagResource", resource: querier, context: { ...ownedTag, "aws:RequestTag/owner": "x", "aws:TagKeys": ["owner"] } }).allowed).toBe(false);
    expect(evaluate(policy, { action: "servicediscovery:TagResource", resource: "*", context: { ...requestTag, "aws:TagKeys": ["lokistack.io/managed-by", "owner"] } }).allowed).toBe(false);
  });

  it("uses a customer managed key only through SSM and for parameters under the prefix; encrypts only config", () => {
    const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const via = (parameter: string) => ({ "kms:ViaService": "ssm.us-east-1.amazonaws.com", "kms:EncryptionContext:PARAMETER_ARN": `arn:aws:ssm:us-east-1:123456789012:parameter${parameter}` });
    expect(allowed("kms:Decrypt", key, via("/lokistack/vault/spec"))).toBe(true);
    expect(allowed("kms:Decrypt", key, via("/payments/db-password"))).toBe(false);
    expect(allowed("kms:Decrypt", key, { "kms:EncryptionContext:PARAMETER_ARN": via("/lokistack/vault/spec")["kms:EncryptionContext:PARAMETER_ARN"] })).toBe(false);
    expect(allowed("kms:Encrypt", key, via("/lokistack/vault/config/vault-monolithic"))).toBe(true);
    expect(allowed("kms:GenerateDataKey", key, via("/lokistack/vault/config/vault-monolithic"))).toBe(true);
    expect(allowed("kms:Encrypt", key, via("/lokistack/vault/spec"))).toBe(false);
  });

  it("creates and stops only in the managed clusters", () => {
    expect(allowed("ecs:CreateService", "*", { ...requestTag, ...cluster })).toBe(true);
    expect(allowed("ecs:CreateService", "*", { ...requestTag, ...elsewhere })).toBe(false);
    expect(allowed("ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/logging/abc", cluster)).toBe(true);
    expect(allowed("ecs:StopTask", "arn:aws:ecs:us-east-1:123456789012:task/payments/abc", elsewhere)).toBe(false);
  });

  it("reads every parameter under the prefix but writes only status and config, never a spec", () => {
    const parameter = (name: string) => `arn:aws:ssm:us-east-1:123456789012:parameter/lokistack/demo/${name}`;
    expect(allowed("ssm:GetParameters", parameter("spec"))).toBe(true);
    expect(allowed("ssm:PutParameter", parameter("spec"))).toBe(false);
    expect(allowed("ssm:DeleteParameter", parameter("spec"))).toBe(false);
    expect(allowed("ssm:PutParameter", parameter("status"))).toBe(true);
    expect(allowed("ssm:PutParameter", parameter("config/demo-querier"))).toBe(true);
    expect(allowed("ssm:DeleteParameter", parameter("config/demo-querier"))).toBe(true);
    expect(allowed("ssm:PutParameter", "arn:aws:ssm:us-east-1:123456789012:parameter/other/app")).toBe(false);
  });

  it("grants nothing the operator never calls", () => {
    expect(allowed("ecs:ListServices", "*")).toBe(false);
    expect(allowed("ssm:GetParametersByPath", "arn:aws:ssm:us-east-1:123456789012:parameter/lokistack")).toBe(false);
  });

  it("reads a missing lease as 404: s3:ListBucket on the lease bucket", () => {
    expect(evaluate(policy, { action: "s3:ListBucket", resource: "arn:aws:s3:::lokistack-operator-lease" }).allowed).toBe(true);
    expect(evaluate(policy, { action: "s3:ListBucket", resource: "arn:aws:s3:::someone-elses-bucket" }).allowed).toBe(false);
  });
});
