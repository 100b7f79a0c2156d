// SSM parameter tiers through the real SDK client: Standard, Advanced and
// Intelligent-Tiering as PutParameter answers them, and the operator's writes
// through SsmGateway, which must survive a value that grows past 4 KB and shrinks again.
import { DescribeParametersCommand, GetParameterHistoryCommand, PutParameterCommand } from "@aws-sdk/client-ssm";
import { describe, expect, it } from "vitest";
import { SsmGateway } from "../../src/aws/ssm-gateway.ts";
import { harness, rejection } from "../helpers/local.ts";

const small = "x".repeat(100);
const large = "y".repeat(5000);

async function tierOf(ssm: Awaited<ReturnType<typeof harness>>["ssm"], name: string): Promise<string | undefined> {
  const r = await ssm.send(new DescribeParametersCommand({ ParameterFilters: [{ Key: "Name", Values: [name] }] }));
  return r.Parameters?.[0]?.Tier;
}

describe("SSM tiers", () => {
  it("refuses an explicit Standard write on an advanced parameter, whatever the value's size", async () => {
    const { ssm } = await harness();
    await ssm.send(new PutParameterCommand({ Name: "/t/adv", Value: large, Type: "String", Tier: "Advanced" }));
    const err = await rejection(ssm.send(new PutParameterCommand({ Name: "/t/adv", Value: small, Overwrite: true, Tier: "Standard" })));
    expect(err.name).toBe("ValidationException");
    expect(err.message).toMatch(
      /^This parameter uses the advanced-parameter tier\. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier\. If necessary, you can delete the advanced parameter and recreate it as a standard parameter\./,
    );
    expect(err.$metadata?.httpStatusCode).toBe(400);
    // Nothing was written: still one version, still advanced.
    const history = await ssm.send(new GetParameterHistoryCommand({ Name: "/t/adv" }));
    expect(history.Parameters?.map((p) => [p.Version, p.Tier])).toEqual([[1, "Advanced"]]);
  });

  it("upgrades a standard parameter to Advanced on request; Tier omitted keeps an advanced parameter advanced", async () => {
    const { ssm } = await harness();
    expect((await ssm.send(new PutParameterCommand({ Name: "/t/up", Value: small, Type: "String" }))).Tier).toBe("Standard");
    expect((await ssm.send(new PutParameterCommand({ Name: "/t/up", Value: small, Overwrite: true, Tier: "Advanced" }))).Tier).toBe("Advanced");
    expect((await ssm.send(new PutParameterCommand({ Name: "/t/up", Value: "z", Overwrite: true }))).Tier).toBe("Advanced");
    expect(await tierOf(ssm, "/t/up")).toBe("Advanced");
  });

  it("Intelligent-Tiering picks Standard while the value fits, Advanced past 4 KB or with policies, and never goes back", async () => {
    const { ssm } = await harness();
    const put = (Value: string, extra: Record<string, unknown> = {}) =>
      ssm.send(new PutParameterCommand({ Name: "/t/auto", Value, Type: "String", Overwrite: true, Tier: "Intelligent-Tiering", ...extra }));
    expect((await put(small)).Tier).toBe("Standard");
    expect((await put("s".repeat(4096))).Tier).toBe("Standard");
    expect((await put("s".repeat(4097))).Tier).toBe("Advanced");
    expect((await put(small)).Tier).toBe("Advanced");
    expect(await tierOf(ssm, "/t/auto")).toBe("Advanced");

    const policy = JSON.stringify([{ Type: "Expiration", Version: "1.0", Attributes: { Timestamp: "2030-01-01T00:00:00.000Z" } }]);
    expect((await ssm.send(new PutParameterCommand({ Name: "/t/policy", Value: small, Type: "String", Tier: "Intelligent-Tiering", Policies: policy }))).Tier).toBe("Advanced");
    expect((await rejection(ssm.send(new PutParameterCommand({ Name: "/t/policy-std", Value: small, Type: "String", Tier: "Standard", Policies: policy })))).name).toBe("ValidationException");
  });

  it("keeps the 4 KB standard and 8 KB advanced limits", async () => {
    const { ssm } = await harness();
    const std = await rejection(ssm.send(new PutParameterCommand({ Name: "/t/big", Value: large, Type: "String", Tier: "Standard" })));
    expect(std.name).toBe("ValidationException");
    expect(std.message).toContain("Standard tier parameters support a maximum parameter value of 4096 characters.");
    for (const Tier of ["Advanced", "Intelligent-Tiering"] as const) {
      expect((await rejection(ssm.send(new PutParameterCommand({ Name: `/t/huge-${Tier}`, Value: "h".repeat(8193), Type: "String", Tier })))).name).toBe("ValidationException");
    }
    expect((await ssm.send(new PutParameterCommand({ Name: "/t/max", Value: "m".repeat(8192), Type: "String", Tier: "Intelligent-Tiering" }))).Tier).toBe("Advanced");
  });
});

describe("SsmGateway.put", () => {
  it("writes a value grown past 4 KB and shrunk again without error", async () => {
    const { ssm, cp } = await harness();
    const gateway = new SsmGateway(ssm, async () => {});
    expect(await gateway.put("/lokistack/demo/status", small)).toBe(1);
    expect(await tierOf(ssm, "/lokistack/demo/status")).toBe("Standard");
    expect(await gateway.put("/lokistack/demo/status", large)).toBe(2);
    expect(await tierOf(ssm, "/lokistack/demo/status")).toBe("Advanced");
    expect(await gateway.put("/lokistack/demo/status", small)).toBe(3);
    expect(await gateway.put("/lokistack/demo/status", "s", "String")).toBe(4);
    expect((await gateway.get("/lokistack/demo/status"))?.Value).toBe("s");
    expect(cp.calls().errors).toEqual({});
    // A new parameter with a small value stays free.
    await gateway.put("/lokistack/demo/config/querier", small, "SecureString");
    expect(await tierOf(ssm, "/lokistack/demo/config/querier")).toBe("Standard");
  });
});
