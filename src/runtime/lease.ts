// Leader election on one S3 object with conditional writes, so two replicas
// of the operator never act at once. Created with If-None-Match: *, renewed
// and taken over with If-Match: <etag>. Expiry is judged by this process's own
// monotonic clock since it last saw the ETag change, never by comparing wall
// clocks; a leader stops acting a margin before any follower could take over.
import type { Logger } from "pino";
import { AwsCallError } from "../aws/errors.ts";
import type { S3Gateway } from "../aws/s3-gateway.ts";

export interface LeaseOptions {
  s3: S3Gateway;
  bucket: string;
  key: string;
  /** This replica's identity (task id and a random suffix). */
  holder: string;
  leaseMs?: number;
  /** Stop acting this long before the lease could be taken over. */
  marginMs?: number;
  now?: () => number;
  logger?: Logger;
  onChange?: (leader: boolean) => void;
}

interface LeaseBody {
  holder: string;
  leaseMs: number;
  renewedAt: string;
}

export class LeaderLease {
  readonly leaseMs: number;
  private readonly marginMs: number;
  private readonly now: () => number;
  private etag?: string;
  private leaderUntil = 0;
  private seen?: { etag: string; since: number; holder: string };
  private wasLeader?: boolean;
  private failure?: string;

  constructor(private readonly opts: LeaseOptions) {
    this.leaseMs = opts.leaseMs ?? 15_000;
    this.marginMs = opts.marginMs ?? Math.min(3_000, this.leaseMs / 5);
    this.now = opts.now ?? (() => performance.now());
  }

  /** Renew about three times per lease period. */
  get renewMs(): number {
    return Math.floor(this.leaseMs / 3);
  }

  isLeader(): boolean {
    return this.etag !== undefined && this.now() < this.leaderUntil;
  }

  /** Why the last election step failed (a missing permission, unreachable S3), or undefined. */
  get problem(): string | undefined {
    return this.failure;
  }

  private body(): string {
    const body: LeaseBody = { holder: this.opts.holder, leaseMs: this.leaseMs, renewedAt: new Date().toISOString() };
    return JSON.stringify(body);
  }

  private won(etag: string, startedAt: number): void {
    this.etag = etag;
    // The write landed no earlier than it was sent: count the lease from then.
    this.leaderUntil = startedAt + this.leaseMs - this.marginMs;
  }

  private lost(reason: string): void {
    this.etag = undefined;
    this.leaderUntil = 0;
    this.opts.logger?.warn({ event: "lease", result: "lost", reason }, "lost the lease");
  }

  /** One step of the election: renew if leading, otherwise watch and take over an expired lease. */
  async tick(): Promise<boolean> {
    const { s3, bucket, key } = this.opts;
    try {
      if (this.etag !== undefined) {
        const started = this.now();
        const r = await s3.replace(bucket, key, this.body(), this.etag);
        if (r.ok) this.won(r.etag, started);
        else this.lost(r.reason === "missing" ? "the lease object was deleted" : "another replica replaced the lease");
      } else {
        const current = await s3.get(bucket, key);
        const started = this.now();
        if (!current) {
          const r = await s3.create(bucket, key, this.body());
          if (r.ok) this.won(r.etag, started);
        } else {
          const holder = (JSON.parse(current.body || "{}") as Partial<LeaseBody>).holder ?? "";
          if (!this.seen || this.seen.etag !== current.etag) this.seen = { etag: current.etag, since: started, holder };
          const leaseMs = (JSON.parse(current.body || "{}") as Partial<LeaseBody>).leaseMs ?? this.leaseMs;
          if (started - this.seen.since > leaseMs) {
            const r = await s3.replace(bucket, key, this.body(), current.etag);
            if (r.ok) {
              this.opts.logger?.info({ event: "lease", result: "taken", from: holder }, "took over an expired lease");
              this.won(r.etag, started);
            }
          }
        }
      }
      this.failure = undefined;
    } catch (e) {
      // Unreachable or forbidden S3: a leader keeps acting only until its lease runs out.
      const problem = this.describe(e);
      if (problem !== this.failure) this.opts.logger?.error({ event: "lease", result: "error", error: problem }, "lease check failed");
      this.failure = problem;
    }
    const leader = this.isLeader();
    if (leader !== this.wasLeader) {
      this.wasLeader = leader;
      this.opts.logger?.info({ event: "lease", leader, holder: this.opts.holder }, leader ? "acquired the lease: acting" : "not the leader: standing by");
      this.opts.onChange?.(leader);
    }
    return leader;
  }

  /** What a failed step means for a person: for AccessDenied, the permission the task role lacks. */
  private describe(e: unknown): string {
    const { bucket, key } = this.opts;
    if (!(e instanceof AwsCallError && (e.status === 403 || e.code === "AccessDenied"))) return e instanceof Error ? e.message : String(e);
    if (e.action === "GetObject") {
      return `reading s3://${bucket}/${key} was denied: the task role needs s3:ListBucket on arn:aws:s3:::${bucket} (without it S3 answers 403, not 404, for a lease that does not exist yet) and s3:GetObject on the key`;
    }
    if (e.action === "PutObject") return `writing s3://${bucket}/${key} was denied: the task role needs s3:PutObject on arn:aws:s3:::${bucket}/${key}`;
    return `${e.action} on s3://${bucket}/${key} was denied: the task role needs s3:${e.action} on it`;
  }

  /** Gives the lease up (on shutdown), so a follower can take over at once. */
  async release(): Promise<void> {
    const etag = this.etag;
    this.etag = undefined;
    this.leaderUntil = 0;
    if (etag) {
      await this.opts.s3.deleteIfMatch(this.opts.bucket, this.opts.key, etag).catch(() => false);
      this.opts.logger?.info({ event: "lease", result: "released" }, "released the lease");
    }
    if (this.wasLeader) this.opts.onChange?.(false);
    this.wasLeader = false;
  }
}

/** `s3://bucket/key` → { bucket, key }. */
export function parseLeaseUrl(url: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new Error(`--lease must look like s3://BUCKET/KEY, not ${url}`);
  return { bucket: m[1]!, key: m[2]! };
}
