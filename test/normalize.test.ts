import { readFileSync } from "node:fs";
import type { DescribeServicesCommandOutput, DescribeTaskDefinitionCommandOutput } from "@aws-sdk/client-ecs";
import { describe, expect, it } from "vitest";
import {
  canonicalService,
  canonicalTaskDefinition,
  diffCanonical,
  parseCpu,
  parseMemory,
  parseTaskDefinitionRef,
} from "../src/resources/normalize.ts";
import { render } from "../src/resources/render.ts";
import { describedService, describedTaskDefinition } from "./helpers/ecs-describe.ts";
import { exampleDoc, resolved } from "./helpers/specs.ts";

const fixture = <T>(name: string): T => JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as T;
const demo = render(resolved(exampleDoc("demo")));
const desiredTd = (family: string) => demo.taskDefinitions.find((t) => t.family === family)!;
const desiredSvc = (name: string) => demo.services.find((s) => s.serviceName === name)!;

describe("realistic describe outputs normalize to an empty diff", () => {
  it("DescribeTaskDefinition of an ingester ordinal (AWS CLI JSON)", () => {
    const described = fixture<DescribeTaskDefinitionCommandOutput>("describe-task-definition.demo-ingester-0.json");
    const diff = diffCanonical(
      canonicalTaskDefinition(desiredTd("demo-ingester-0")),
      canonicalTaskDefinition(described.taskDefinition!, described.tags),
    );
    expect(diff).toEqual([]);
  });

  it("DescribeServices of the compactor, created before availabilityZoneRebalancing existed", () => {
    const described = fixture<DescribeServicesCommandOutput>("describe-services.demo-compactor.json");
    expect(diffCanonical(canonicalService(desiredSvc("demo-compactor")), canonicalService(described.services![0]!))).toEqual([]);
  });

  it.each(["demo", "small", "monolithic", "efs-wal"])("every object of the %s example", (name) => {
    const out = render(resolved(exampleDoc(name)));
    for (const td of out.taskDefinitions) {
      const d = describedTaskDefinition(td);
      expect(diffCanonical(canonicalTaskDefinition(td), canonicalTaskDefinition(d.taskDefinition!, d.tags))).toEqual([]);
    }
    for (const svc of out.services) {
      expect(diffCanonical(canonicalService(svc), canonicalService(describedService(svc)))).toEqual([]);
    }
  });
});

describe("real drift still shows, with its path", () => {
  const svc = () => describedService(desiredSvc("demo-compactor"));
  const expectedSvc = canonicalService(desiredSvc("demo-compactor"));

  it("a weakened compactor deployment configuration", () => {
    const observed = svc();
    observed.deploymentConfiguration = { ...observed.deploymentConfiguration, minimumHealthyPercent: 100, maximumPercent: 200 };
    expect(diffCanonical(expectedSvc, canonicalService(observed))).toEqual([
      { path: "deploymentConfiguration.maximumPercent", expected: 100, observed: 200 },
      { path: "deploymentConfiguration.minimumHealthyPercent", expected: 0, observed: 100 },
    ]);
  });

  it("a hand-scaled service", () => {
    const observed = { ...svc(), desiredCount: 2 };
    expect(diffCanonical(expectedSvc, canonicalService(observed))).toEqual([{ path: "desiredCount", expected: 1, observed: 2 }]);
  });

  it("a changed ownership tag, while foreign and aws:* tags are ignored", () => {
    const observed = svc();
    observed.tags = observed.tags!.map((t) => (t.key === "lokistack.io/component" ? { ...t, value: "querier" } : t));
    observed.tags.push({ key: "aws:ecs:serviceName", value: "x" }, { key: "owner", value: "someone" });
    expect(diffCanonical(expectedSvc, canonicalService(observed))).toEqual([
      { path: "tags[key=lokistack.io/component].value", expected: "compactor", observed: "querier" },
    ]);
  });

  it("a service pointed at another family; revisions of the same family are not a service diff", () => {
    const other = { ...svc(), taskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/other:1" };
    expect(diffCanonical(expectedSvc, canonicalService(other))).toEqual([
      { path: "taskDefinition", expected: "demo-compactor", observed: "other" },
    ]);
    const revision = { ...svc(), taskDefinition: "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-compactor:12" };
    expect(diffCanonical(expectedSvc, canonicalService(revision))).toEqual([]);
  });

  it("a new image in an out-of-band revision", () => {
    const d = describedTaskDefinition(desiredTd("demo-compactor"));
    d.taskDefinition!.containerDefinitions!.find((c) => c.name === "loki")!.image = "grafana/loki:3.4.0";
    expect(diffCanonical(canonicalTaskDefinition(desiredTd("demo-compactor")), canonicalTaskDefinition(d.taskDefinition!, d.tags))).toEqual([
      { path: "containerDefinitions[loki].image", expected: "grafana/loki:3.5.0", observed: "grafana/loki:3.4.0" },
    ]);
  });

  it("load balancers and service registries attached by the user are not drift", () => {
    const observed = {
      ...describedService(desiredSvc("demo-distributor")),
      loadBalancers: [{ targetGroupArn: "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/push/abc", containerName: "loki", containerPort: 3100 }],
      serviceRegistries: [{ registryArn: "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-abc" }],
    };
    expect(diffCanonical(canonicalService(desiredSvc("demo-distributor")), canonicalService(observed))).toEqual([]);
  });

  it("a stateless service without availabilityZoneRebalancing differs from the desired ENABLED", () => {
    const observed = describedService(desiredSvc("demo-querier"));
    delete observed.availabilityZoneRebalancing;
    expect(diffCanonical(canonicalService(desiredSvc("demo-querier")), canonicalService(observed))).toEqual([
      { path: "availabilityZoneRebalancing", expected: "ENABLED", observed: "DISABLED" },
    ]);
  });
});

describe("value parsing", () => {
  it("reads ECS cpu and memory strings", () => {
    expect(parseCpu("1 vCPU")).toBe(1024);
    expect(parseCpu("0.25 vcpu")).toBe(256);
    expect(parseCpu("512")).toBe(512);
    expect(parseMemory("2GB")).toBe(2048);
    expect(parseMemory("0.5 GB")).toBe(512);
    expect(parseMemory("3072")).toBe(3072);
  });

  it("treats '1 vCPU' / '2GB' and '1024' / '2048' as the same task size", () => {
    const td = desiredTd("demo-querier");
    const vcpu = canonicalTaskDefinition({ ...td, cpu: "0.5 vCPU", memory: "1GB" });
    expect(diffCanonical(canonicalTaskDefinition(td), vcpu)).toEqual([]);
  });

  it("parses task definition references", () => {
    expect(parseTaskDefinitionRef("arn:aws:ecs:us-east-1:123456789012:task-definition/demo-compactor:7")).toEqual({ family: "demo-compactor", revision: 7 });
    expect(parseTaskDefinitionRef("demo-compactor:3")).toEqual({ family: "demo-compactor", revision: 3 });
    expect(parseTaskDefinitionRef("demo-compactor")).toEqual({ family: "demo-compactor" });
  });
});
