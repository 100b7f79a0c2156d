// The deployment manifests: plain YAML, least privilege, ownership-scoped writes.
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

const template = parse(readFileSync(new URL("../manifests/operator/cloudformation.yaml", import.meta.url), "utf8"));

describe("operator CloudFormation template", () => {
  const statements: { Sid: string; Action: string | string[]; Resource: unknown; Condition?: Record<string, Record<string, unknown>> }[] =
    template.Resources.TaskRole.Properties.Policies[0].PolicyDocument.Statement;
  const actions = (sid: string) => [statements.find((s) => s.Sid === sid)!.Action].flat();

  it("lets the operator change or delete only services carrying its ownership tag", () => {
    const change = statements.find((s) => s.Sid === "ChangeOwnedServices")!;
    expect(actions("ChangeOwnedServices")).toEqual(expect.arrayContaining(["ecs:UpdateService", "ecs:DeleteService"]));
    expect(change.Condition).toEqual({ StringEquals: { "aws:ResourceTag/lokistack.io/managed-by": "ecs-lokistack-operator" }, ArnEquals: { "ecs:cluster": { Ref: "ManagedClusterArns" } } });
    const create = statements.find((s) => s.Sid === "CreateOwnedServices")!;
    expect(create.Condition).toMatchObject({ StringEquals: { "aws:RequestTag/lokistack.io/managed-by": "ecs-lokistack-operator" } });
  });

  // Which actions are granted is proven by calls in test/permissions.test.ts.
  it("names every action in full: no wildcard actions", () => {
    const granted = statements.flatMap((s) => [s.Action].flat());
    expect(granted.some((a) => a.includes("*"))).toBe(false);
  });

  it("declares the CPU architecture the image was built for", () => {
    expect(template.Parameters.CpuArchitecture).toMatchObject({ AllowedValues: ["X86_64", "ARM64"], Default: "X86_64" });
    expect(template.Resources.TaskDefinition.Properties.RuntimePlatform).toEqual({ CpuArchitecture: { Ref: "CpuArchitecture" }, OperatingSystemFamily: "LINUX" });
  });

  it("runs two replicas with leader election and a health check", () => {
    expect(template.Resources.Service.Properties.DesiredCount).toBe(2);
    const container = template.Resources.TaskDefinition.Properties.ContainerDefinitions[0];
    expect(container.Command).toContain("--lease");
    expect(container.HealthCheck.Command.join(" ")).toContain("/healthz");
  });
});
