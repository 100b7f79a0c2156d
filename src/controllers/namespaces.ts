// The Cloud Map part of the observation cache: per discovery namespace its
// id (looked up once found) and its services by name, read once per
// freshness (one ListServices walk), shared by every stack in the namespace.
// Tags of services that may be deleted are read once per ARN.
import type { Tag } from "@aws-sdk/client-ecs";
import type { DiscoveryGateway } from "../aws/discovery-gateway.ts";

export interface NamespaceView {
  /** Undefined when no namespace of that name exists. */
  id?: string;
  /** Service name → ARN. */
  services: Map<string, string>;
}

interface Entry {
  view?: NamespaceView;
  at: number;
  /** The operator's own creations and deletions, replayed onto a read that began before them. */
  notes: { at: number; apply: (view: NamespaceView) => void }[];
  inFlight?: { started: number; promise: Promise<NamespaceView> };
  failure?: { error: unknown; at: number };
}

export class NamespaceCache {
  private readonly entries = new Map<string, Entry>();
  private readonly tagsByArn = new Map<string, Tag[]>();

  constructor(
    private readonly discovery: DiscoveryGateway,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** The namespace as read at or after `since`. */
  async ensure(name: string, since: number): Promise<NamespaceView> {
    let e = this.entries.get(name);
    if (!e) this.entries.set(name, (e = { at: -Infinity, notes: [] }));
    if (e.failure && e.failure.at >= since) throw e.failure.error;
    if (e.view && e.at >= since) return e.view;
    if (e.inFlight && e.inFlight.started >= since) return e.inFlight.promise;
    const entry = e;
    const started = this.clock();
    const promise = this.read(name).then(
      (view) => {
        // A newer read finished first: keep it.
        if (entry.view && entry.at > started) return entry.view;
        for (const note of entry.notes) if (note.at >= started) note.apply(view);
        entry.notes = entry.notes.filter((n) => n.at >= started);
        entry.view = view;
        entry.at = started;
        delete entry.failure;
        return view;
      },
      (error: unknown) => {
        entry.failure = { error, at: started };
        throw error;
      },
    );
    entry.inFlight = { started, promise: promise.finally(() => delete entry.inFlight) };
    return entry.inFlight.promise;
  }

  private async read(name: string): Promise<NamespaceView> {
    const id = await this.discovery.namespaceId(name);
    return id ? { id, services: await this.discovery.listServices(id) } : { services: new Map() };
  }

  /** Tags of a Cloud Map service (read once per ARN; `fresh` reads them again). */
  async tags(arn: string, fresh = false): Promise<Tag[]> {
    let tags = fresh ? undefined : this.tagsByArn.get(arn);
    if (!tags) {
      tags = await this.discovery.tags(arn);
      this.tagsByArn.set(arn, tags);
    }
    return tags;
  }

  noteCreated(namespace: string, service: string, arn: string, tags: Tag[]): void {
    this.note(namespace, (v) => v.services.set(service, arn));
    this.tagsByArn.set(arn, tags);
  }

  noteDeleted(namespace: string, service: string, arn: string): void {
    this.note(namespace, (v) => v.services.delete(service));
    this.tagsByArn.delete(arn);
  }

  private note(namespace: string, apply: (view: NamespaceView) => void): void {
    const e = this.entries.get(namespace);
    if (!e) return;
    if (e.view) apply(e.view);
    if (e.inFlight) e.notes.push({ at: this.clock(), apply });
  }
}
