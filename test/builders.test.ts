import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { healthCheckFor, lokiVersionOf } from "../src/resources/image.ts";
import { replayMemoryCeilingMb } from "../src/resources/loki-config.ts";
import { render } from "../src/resources/render.ts";
import { TAGS } from "../src/resources/tags.ts";
import { docWith, exampleDoc, resolved } from "./helpers/specs.ts";

const tag = (tags: { key?: string; value?: string }[] | undefined, key: string) => tags?.find((t) => t.key === key)?.value;

describe("render snapshots", () => {
  it.each(["demo", "small", "monolithic", "efs-wal"])("%s", (name) => {
    expect(render(resolved(exampleDoc(name)))).toMatchSnapshot();
  });
});

describe("a microservices stack with 3 ingesters", () => {
  const stack = resolved(docWith((d) => (d.spec.ingester = { wal: { volume: "efs", fileSystemId: "fs-0123456789abcdef0" } })));
  const out = render(stack);
  const byComponent = (c: string) => out.services.filter((s) => tag(s.tags, TAGS.component) === c);

  it("has exactly one compactor service: desiredCount 1, stop before start", () => {
    const compactors = byComponent("compactor");
    expect(compactors).toHaveLength(1);
    expect(compactors[0]).toMatchObject({
      serviceName: "prod-logs-compactor",
      desiredCount: 1,
      deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 100 },
      availabilityZoneRebalancing: "DISABLED",
    });
  });

  it("has one service per ingester ordinal, each desiredCount 1 and 0/100", () => {
    const ingesters = byComponent("ingester");
    expect(ingesters.map((s) => s.serviceName)).toEqual(["prod-logs-ingester-0", "prod-logs-ingester-1", "prod-logs-ingester-2"]);
    for (const s of ingesters) {
      expect(s.desiredCount).toBe(1);
      expect(s.deploymentConfiguration).toMatchObject({ minimumHealthyPercent: 0, maximumPercent: 100 });
    }
    expect(ingesters.map((s) => tag(s.tags, TAGS.ordinal))).toEqual(["0", "1", "2"]);
  });

  it("gives every ordinal its own WAL directory, EFS root and ring instance id", () => {
    const names = ["prod-logs-ingester-0", "prod-logs-ingester-1", "prod-logs-ingester-2"];
    const configs = names.map((n) => parse(out.lokiConfig[n]!));
    expect(configs.map((c) => c.ingester.wal.dir)).toEqual(names.map((n) => `/loki/wal/${n}`));
    expect(configs.map((c) => c.ingester.lifecycler.id)).toEqual(names);
    expect(configs.map((c) => c.common.ring.instance_id)).toEqual(names);
    expect(configs.every((c) => c.ingester.autoforget_unhealthy === true)).toBe(true);
    const roots = names.map((n) => {
      const td = out.taskDefinitions.find((t) => t.family === n)!;
      return td.volumes!.find((v) => v.name === "wal")!.efsVolumeConfiguration!.rootDirectory;
    });
    expect(roots).toEqual(names.map((n) => `/wal/${n}`));
    expect(new Set(roots).size).toBe(3);
  });

  it("lets stateless components overlap and roll back failed deployments", () => {
    for (const c of ["distributor", "querier", "query-frontend", "index-gateway"]) {
      expect(byComponent(c)[0]!.deploymentConfiguration).toEqual({
        minimumHealthyPercent: 100,
        maximumPercent: 200,
        deploymentCircuitBreaker: { enable: true, rollback: true },
      });
    }
  });

  it("tags every object with its owner, stack, component and a spec hash", () => {
    for (const o of [...out.services, ...out.taskDefinitions]) {
      expect(tag(o.tags, TAGS.managedBy)).toBe("ecs-lokistack-operator");
      expect(tag(o.tags, TAGS.stack)).toBe("prod-logs");
      expect(tag(o.tags, TAGS.component)).toBeTruthy();
      expect(tag(o.tags, TAGS.specHash)).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it("renders a Loki 3 config: v13 tsdb on s3, tsdb_shipper dirs, memberlist through the namespace", () => {
    const c = parse(out.lokiConfig["prod-logs-querier"]!);
    expect(c.schema_config.configs).toEqual([
      { from: "2024-01-01", store: "tsdb", object_store: "s3", schema: "v13", index: { prefix: "index_", period: "24h" } },
    ]);
    expect(c.storage_config.tsdb_shipper).toMatchObject({ active_index_directory: "/loki/index", cache_location: "/loki/cache" });
    expect(c.common.storage.s3).toEqual({ bucketnames: "acme-loki", region: "eu-west-1" });
    expect(c.ingester).toMatchObject({ chunk_idle_period: "1h", max_chunk_age: "2h" });
    expect(c.compactor).toMatchObject({ working_directory: "/loki/compactor", delete_request_store: "s3" });
    expect(c.memberlist.join_members).toContain("dns+prod-logs-ingester-0.loki.internal:7946");
    expect(c.memberlist.join_members).toContain("dns+prod-logs-compactor.loki.internal:7946");
    expect(c.memberlist.join_members).not.toContain("dns+prod-logs-ingester-2.loki.internal:7946");
    expect(c.common.ring.instance_interface_names).not.toContain("lo");
    expect(JSON.stringify(c)).not.toContain("shared_store");
  });

  it("starts each Loki container with its own target and the config from SSM", () => {
    const td = out.taskDefinitions.find((t) => t.family === "prod-logs-compactor")!;
    const loki = td.containerDefinitions!.find((c) => c.name === "loki")!;
    const init = td.containerDefinitions!.find((c) => c.name === "config")!;
    expect(loki.command).toContain("-target=compactor");
    expect(loki.dependsOn).toEqual([{ containerName: "config", condition: "SUCCESS" }]);
    expect(init.secrets).toEqual([{ name: "LOKI_CONFIG", valueFrom: "/lokistack/prod-logs/config/prod-logs-compactor" }]);
    expect(td).toMatchObject({ networkMode: "awsvpc", requiresCompatibilities: ["FARGATE"], cpu: "2048", memory: "4096" });
  });

  it("hands every volume Loki writes to the image's uid before Loki starts: Fargate mounts them root-owned 0755", () => {
    for (const td of out.taskDefinitions) {
      const loki = td.containerDefinitions!.find((c) => c.name === "loki")!;
      const init = td.containerDefinitions!.find((c) => c.name === "config")!;
      const writable = loki.mountPoints!.filter((m) => !m.readOnly).map((m) => m.containerPath!);
      expect(writable.length, td.family).toBeGreaterThan(0);
      expect(init.mountPoints!.map((m) => m.containerPath)).toEqual(expect.arrayContaining(writable));
      expect(init.command![0], td.family).toContain(`&& { chown 10001:10001 ${[...writable].sort().join(" ")} || echo`);
      expect(init.user).toBeUndefined(); // the busybox image's root
    }
  });
});

describe("WAL replay ceiling", () => {
  it("is half the ingester memory with a 512 MiB floor", () => {
    expect(replayMemoryCeilingMb(14336)).toBe(7168);
    expect(replayMemoryCeilingMb(1024)).toBe(512);
    expect(replayMemoryCeilingMb(512)).toBe(512);
    const cfg = parse(render(resolved(docWith(() => {}))).lokiConfig["prod-logs-ingester-0"]!);
    expect(cfg.ingester.wal.replay_memory_ceiling).toBe("7168MB");
    // Ephemeral WAL dies with the task: flush on shutdown.
    expect(cfg.ingester.wal.flush_on_shutdown).toBe(true);
  });
});

describe("monolithic", () => {
  it("is a single -target=all task that can never overlap", () => {
    const out = render(resolved(exampleDoc("monolithic")));
    expect(out.services).toHaveLength(1);
    expect(out.services[0]).toMatchObject({ desiredCount: 1, deploymentConfiguration: { minimumHealthyPercent: 0, maximumPercent: 100 } });
    expect(out.taskDefinitions[0]!.containerDefinitions!.find((c) => c.name === "loki")!.command).toContain("-target=all");
    const cfg = parse(out.lokiConfig["team-logs-monolithic"]!);
    expect(cfg.common.ring.kvstore.store).toBe("inmemory");
    expect(cfg.schema_config.configs.map((s: { store: string }) => s.store)).toEqual(["boltdb-shipper", "tsdb"]);
  });
});

describe("content hashes change when and only when the object does", () => {
  const hashes = (edit: Parameters<typeof docWith>[0]) => {
    const out = render(resolved(docWith(edit)));
    return {
      services: out.services.map((s) => tag(s.tags, TAGS.specHash)),
      taskDefinitions: out.taskDefinitions.map((t) => tag(t.tags, TAGS.specHash)),
    };
  };
  const base = hashes(() => {});

  it("is stable across renders", () => {
    expect(hashes(() => {})).toEqual(base);
  });

  it("an image change touches task definitions only", () => {
    const h = hashes((d) => (d.spec.image = "grafana/loki:3.5.1"));
    expect(h.services).toEqual(base.services);
    h.taskDefinitions.forEach((x, i) => expect(x).not.toBe(base.taskDefinitions[i]));
  });

  it("a Loki config change rolls the task definitions through the config hash", () => {
    const h = hashes((d) => (d.spec.limits = { max_query_series: 1000 }));
    h.taskDefinitions.forEach((x, i) => expect(x).not.toBe(base.taskDefinitions[i]));
    expect(h.services).toEqual(base.services);
  });

  it("scaling ingesters changes no other component's task definition", () => {
    const out = (n: number) => render(resolved(docWith((d) => (d.spec.template = { ingester: { replicas: n } }))));
    const three = out(3);
    const five = out(5);
    for (const td of three.taskDefinitions) {
      expect(tag(five.taskDefinitions.find((t) => t.family === td.family)!.tags, TAGS.specHash)).toBe(tag(td.tags, TAGS.specHash));
    }
  });

  it("a replica change of one component touches only that service", () => {
    const h = hashes((d) => (d.spec.template = { querier: { replicas: 3 } }));
    const changed = h.services.filter((x, i) => x !== base.services[i]);
    expect(changed).toHaveLength(1);
    expect(h.taskDefinitions).toEqual(base.taskDefinitions);
  });
});

describe("Loki settings that follow the mode and the version", () => {
  const configOf = (name: string, edit: (d: ReturnType<typeof exampleDoc>) => void, unit: RegExp) => {
    const doc = exampleDoc(name);
    edit(doc);
    const out = render(resolved(doc));
    return parse(Object.entries(out.lokiConfig).find(([u]) => unit.test(u))![1]);
  };
  it("a single binary's in-memory ring has only itself: no autoforget (it would warn every heartbeat)", () => {
    expect(configOf("monolithic", () => {}, /monolithic$/).ingester.autoforget_unhealthy).toBe(false);
  });
  it("keeps retention's deletion markers in the bucket from Loki 3.7 on, and not before (older Loki refuses the key)", () => {
    const markers = (image: string) => configOf("small", (d) => (d.spec.image = image), /compactor$/).compactor.deletion_marker_object_store_prefix;
    expect(markers("grafana/loki:3.7.0")).toBe("loki-deletion-markers/");
    expect(markers("grafana/loki:4.0.1")).toBe("loki-deletion-markers/");
    expect(markers("grafana/loki:3.6.5")).toBeUndefined();
    expect(markers("grafana/loki@sha256:0123")).toBeUndefined();
  });
  it("lists the store for new index files every 70 s on every component, not Loki's 5 minutes", () => {
    const doc = exampleDoc("small");
    const out = render(resolved(doc));
    for (const text of Object.values(out.lokiConfig)) expect(parse(text).storage_config.tsdb_shipper.resync_interval).toBe("70s");
  });
});

describe("health checks follow the image", () => {
  it("parses versions from tags", () => {
    expect(lokiVersionOf("grafana/loki:3.5.0")).toEqual([3, 5, 0]);
    expect(lokiVersionOf("registry:5000/grafana/loki:v3.7")).toEqual([3, 7, 0]);
    expect(lokiVersionOf("grafana/loki@sha256:abc")).toBeUndefined();
    expect(lokiVersionOf("grafana/loki")).toBeUndefined();
  });
  // The container health check is liveness (ECS replaces an unhealthy task), so it asks for
  // the build info, never /ready: a long WAL replay must not get an ingester killed.
  const buildinfo = "http://localhost:3100/loki/api/v1/status/buildinfo";
  const wget = ["CMD-SHELL", `wget -q -O /dev/null ${buildinfo} || exit 1`];
  const selfCheck = ["CMD", "/usr/bin/loki", "-health", `-health.url=${buildinfo}`];
  it.each([
    ["grafana/loki:2.9.10", wget],
    ["grafana/loki:3.0.0", wget],
    ["grafana/loki:3.4.6", wget],
    ["grafana/loki:3.5.0", wget],
    ["grafana/loki:3.5.12", wget],
    ["grafana/loki:3.6.0", undefined],
    ["grafana/loki:3.6.4", undefined],
    ["grafana/loki:3.6.5", selfCheck],
    ["grafana/loki:3.6.15", selfCheck],
    ["grafana/loki:3.7.0", selfCheck],
    ["grafana/loki:3.7.6", selfCheck],
    ["registry:5000/grafana/loki:v4.0", selfCheck],
    ["grafana/loki@sha256:abc", selfCheck],
  ])("%s: %j", (image, command) => {
    const plan = healthCheckFor(image);
    expect(plan.command).toEqual(command);
    // No command is a warning; so is a guess at the version.
    expect(plan.warning !== undefined).toBe(command === undefined || image.includes("@"));
  });
});
