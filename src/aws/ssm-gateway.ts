// SSM Parameter Store calls: paginated reads, and writes that retry
// TooManyUpdates themselves (the SDK does not).
import {
  DeleteParameterCommand,
  DescribeParametersCommand,
  GetParameterCommand,
  GetParametersCommand,
  PutParameterCommand,
  type Parameter,
  type ParameterMetadata,
  type ParameterStringFilter,
  type ParameterType,
  type SSMClient,
} from "@aws-sdk/client-ssm";
import { awsCall, AwsCallError } from "./errors.ts";

/** ParameterStringFilter.Values holds at most 50 items (SSM API reference). */
const DESCRIBE_NAMES_PER_FILTER = 50;

export class SsmGateway {
  constructor(
    private readonly client: SSMClient,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  /**
   * Metadata (name, type, version; never values) of every parameter under
   * `path`, recursively: 50 per page, the cheapest way to see what changed.
   */
  async describeByPath(path: string): Promise<ParameterMetadata[]> {
    return this.describe([{ Key: "Path", Option: "Recursive", Values: [path] }]);
  }

  /** Metadata of the named parameters (50 names per call); missing names are absent. */
  async describeByNames(names: readonly string[]): Promise<ParameterMetadata[]> {
    const out: ParameterMetadata[] = [];
    for (let i = 0; i < names.length; i += DESCRIBE_NAMES_PER_FILTER) {
      out.push(...(await this.describe([{ Key: "Name", Option: "Equals", Values: names.slice(i, i + DESCRIBE_NAMES_PER_FILTER) }])));
    }
    return out;
  }

  private async describe(ParameterFilters: ParameterStringFilter[]): Promise<ParameterMetadata[]> {
    const out: ParameterMetadata[] = [];
    let NextToken: string | undefined;
    do {
      const page = await awsCall("ssm", "DescribeParameters", () => this.client.send(new DescribeParametersCommand({ ParameterFilters, MaxResults: 50, NextToken })));
      out.push(...(page.Parameters ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  /** A parameter (optionally `name:version`), or undefined when it does not exist. */
  async get(name: string): Promise<Parameter | undefined> {
    try {
      const r = await awsCall("ssm", "GetParameter", () => this.client.send(new GetParameterCommand({ Name: name, WithDecryption: true })));
      return r.Parameter;
    } catch (e) {
      if (e instanceof AwsCallError && (e.code === "ParameterNotFound" || e.code === "ParameterVersionNotFound")) return undefined;
      throw e;
    }
  }

  /** Parameters by name in batches of 10; missing names are absent from the map. */
  async getMany(names: readonly string[]): Promise<Map<string, Parameter>> {
    const found = new Map<string, Parameter>();
    for (let i = 0; i < names.length; i += 10) {
      const r = await awsCall("ssm", "GetParameters", () =>
        this.client.send(new GetParametersCommand({ Names: names.slice(i, i + 10), WithDecryption: true })),
      );
      for (const p of r.Parameters ?? []) if (p.Name) found.set(p.Name, p);
    }
    return found;
  }

  /**
   * Writes a value, overwriting. Retries TooManyUpdates. Always Intelligent-Tiering:
   * SSM then keeps a value that fits (4 KB) in the free standard tier and moves a
   * larger one to the advanced tier (8 KB). A parameter once advanced stays
   * advanced, and SSM refuses an explicit `Tier: Standard` on it
   * (ValidationException), so naming Standard would fail every smaller write after
   * one large value; Intelligent-Tiering never asks for a downgrade.
   */
  async put(name: string, value: string, type: ParameterType = "String", keyId?: string): Promise<number> {
    const tier = "Intelligent-Tiering";
    for (let attempt = 1; ; attempt++) {
      try {
        const r = await awsCall("ssm", "PutParameter", () =>
          this.client.send(new PutParameterCommand({ Name: name, Value: value, Type: type, Overwrite: true, Tier: tier, ...(type === "SecureString" && keyId ? { KeyId: keyId } : {}) })),
        );
        return r.Version ?? 0;
      } catch (e) {
        if (!(e instanceof AwsCallError && e.code === "TooManyUpdates") || attempt >= 5) throw e;
        await this.sleep(100 * 2 ** attempt);
      }
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await awsCall("ssm", "DeleteParameter", () => this.client.send(new DeleteParameterCommand({ Name: name })));
    } catch (e) {
      if (!(e instanceof AwsCallError && e.code === "ParameterNotFound")) throw e;
    }
  }
}
