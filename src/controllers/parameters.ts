// The SSM half of the observation cache: every parameter under the prefix
// (specs, statuses, configs) with its version and value. A refresh reads
// metadata by path (DescribeParameters, 50 a page) and values (GetParameters,
// 10 a call) only for versions it has not seen; the spec watch reads the
// metadata of the known specs by name. The operator's own writes update the
// cache directly, so they are never read back.
import type { ParameterType } from "@aws-sdk/client-ssm";
import type { SsmGateway } from "../aws/ssm-gateway.ts";

export interface CachedParameter {
  name: string;
  version: number;
  type: ParameterType;
  value: string;
  /** A SecureString's KMS key, as DescribeParameters names it (GetParameters does not). */
  keyId?: string;
}

export interface ParameterChanges {
  /** Names whose version is new since the last look (including new names). */
  changed: string[];
  /** Names that no longer exist. */
  removed: string[];
}

export class ParameterCache {
  private readonly entries = new Map<string, CachedParameter>();
  private readonly specPattern: RegExp;

  constructor(
    private readonly ssm: SsmGateway,
    readonly prefix: string,
  ) {
    this.specPattern = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}/([^/]+)/(spec|status)$`);
  }

  get(name: string): CachedParameter | undefined {
    return this.entries.get(name);
  }

  /** Parameters whose name starts with `prefix`. */
  under(prefix: string): CachedParameter[] {
    return [...this.entries.values()].filter((p) => p.name.startsWith(prefix));
  }

  /** Stacks that have a spec or a status. */
  stackNames(): string[] {
    const names = new Set<string>();
    for (const name of this.entries.keys()) {
      const m = this.specPattern.exec(name);
      if (m) names.add(m[1]!);
    }
    return [...names].sort();
  }

  /** The stack a spec or status parameter belongs to, if it is one. */
  stackOf(name: string): string | undefined {
    return this.specPattern.exec(name)?.[1];
  }

  /** Everything under the prefix: metadata by path, values only for new versions. */
  async refresh(): Promise<ParameterChanges> {
    const metadata = await this.ssm.describeByPath(this.prefix);
    const seen = new Set(metadata.map((m) => m.Name!));
    const removed = [...this.entries.keys()].filter((n) => !seen.has(n));
    for (const n of removed) this.entries.delete(n);
    return { changed: await this.fetchChanged(metadata), removed };
  }

  /** The spec watch: only the named parameters, by name. */
  async refreshNames(names: readonly string[]): Promise<ParameterChanges> {
    if (names.length === 0) return { changed: [], removed: [] };
    const metadata = await this.ssm.describeByNames(names);
    const seen = new Set(metadata.map((m) => m.Name!));
    const removed = names.filter((n) => !seen.has(n) && this.entries.has(n));
    for (const n of removed) this.entries.delete(n);
    return { changed: await this.fetchChanged(metadata), removed };
  }

  /** Records a write the operator made, so the next refresh does not read it back. */
  noteWrite(name: string, value: string, version: number, type: ParameterType = "String", keyId?: string): void {
    this.entries.set(name, { name, value, version, type, ...(keyId ? { keyId } : {}) });
  }

  noteDelete(name: string): void {
    this.entries.delete(name);
  }

  private async fetchChanged(metadata: readonly { Name?: string; Version?: number; KeyId?: string }[]): Promise<string[]> {
    const stale = metadata.filter((m) => m.Name && this.entries.get(m.Name)?.version !== m.Version).map((m) => m.Name!);
    const keyIds = new Map(metadata.map((m) => [m.Name, m.KeyId]));
    if (stale.length === 0) return [];
    const values = await this.ssm.getMany(stale);
    for (const name of stale) {
      const p = values.get(name);
      // Deleted between the two reads: the next refresh sees it gone.
      if (!p) continue;
      const keyId = keyIds.get(name);
      this.entries.set(name, { name, value: p.Value ?? "", version: p.Version ?? 0, type: (p.Type as ParameterType | undefined) ?? "String", ...(keyId ? { keyId } : {}) });
    }
    return stale.filter((n) => values.has(n));
  }
}
