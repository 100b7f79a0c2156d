// The operator's commands for people and CI: plan, apply --once, status, spec
// put. Each runs the same code path as the daemon.
import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { makeClients } from "../aws/clients.ts";
import { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import { EcsGateway } from "../aws/ecs-gateway.ts";
import { SsmGateway } from "../aws/ssm-gateway.ts";
import { WriteLimiter } from "../aws/write-limiter.ts";
import { Reconciler, type StackResult } from "../controllers/reconciler.ts";
import { isStale, parseStatus, type StackStatus } from "../controllers/status.ts";
import { formatIssue } from "../resources/issues.ts";
import { DEFAULT_PREFIX } from "../resources/render.ts";
import { validateText } from "../resources/validate.ts";
import { LokiGateway } from "../loki/gateway.ts";
import { formatPlan, planDocument } from "./plan-view.ts";
import { createLogger } from "./logger.ts";

export interface AwsOptions {
  endpoint?: string;
  region?: string;
  prefix?: string;
  /** An HTTP proxy to reach Loki on the stack's tasks through. */
  lokiProxy?: string;
}

export type Print = (text: string) => void;


function reconcilerFor(opts: AwsOptions, logLevel = "silent"): { reconciler: Reconciler; ssm: SsmGateway } {
  const clients = makeClients({ ...(opts.endpoint ? { endpoint: opts.endpoint } : {}), ...(opts.region ? { region: opts.region } : {}) });
  const ssm = new SsmGateway(clients.ssm);
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const logger = logLevel === "silent" ? createLogger({ pretty: false, destination: sink, level: "silent" }) : createLogger({ level: logLevel });
  const reconciler = new Reconciler({
    prefix: opts.prefix ?? DEFAULT_PREFIX,
    ecs: new EcsGateway(clients.ecs),
    ssm,
    discovery: new DiscoveryGateway(clients.discovery),
    limiter: new WriteLimiter(),
    logger,
    loki: new LokiGateway(opts.lokiProxy ? { proxy: opts.lokiProxy } : {}),
  });
  return { reconciler, ssm };
}

/** `lokistack plan`: exit 0 (no changes), 2 (changes or drift) or 1 (error, Degraded, or no such stack), like terraform plan -detailed-exitcode. */
export async function planCommand(opts: AwsOptions & { name?: string; output?: "text" | "json" }, print: Print, printError: Print): Promise<number> {
  const { reconciler } = reconcilerFor(opts);
  const results = await reconciler.pass({ mode: "plan", ...(opts.name ? { only: [opts.name] } : {}) });
  if (opts.name && results.length === 0) {
    printError(`no stack ${opts.name} under ${opts.prefix ?? DEFAULT_PREFIX} (lokistack status lists the stacks)\n`);
    return 1;
  }
  const doc = planDocument(results);
  print(opts.output === "json" ? `${JSON.stringify(doc, null, 2)}\n` : formatPlan(doc));
  if (results.some(failed)) return 1;
  return results.some((r) => r.drifts.length > 0 || r.planned.length > 0) ? 2 : 0;
}

/** A stack whose pass ended in an error, an invalid spec or Degraded: exit 1. */
const failed = (r: StackResult) => Boolean(r.error) || r.errors.length > 0 || r.outcome.kind === "degraded";

/** `lokistack apply --once`: one repairing pass, logged like the daemon's; exit 1 on any error. */
export async function applyOnceCommand(opts: AwsOptions & { name?: string; logLevel?: string }): Promise<number> {
  const { reconciler } = reconcilerFor(opts, opts.logLevel ?? "info");
  const results = await reconciler.pass({ mode: "apply", ...(opts.name ? { only: [opts.name] } : {}) });
  return results.some(failed) ? 1 : 0;
}

/** `lokistack status [NAME]`: conditions and counts from the status parameters; Stale when no operator refreshed one, Unknown without one. */
export async function statusCommand(opts: AwsOptions & { name?: string; now?: Date }, print: Print): Promise<number> {
  const { ssm } = reconcilerFor(opts);
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const now = opts.now ?? new Date();
  // Names from metadata, values of the statuses only: status never decrypts a spec.
  const stacks = new Map<string, { spec: boolean; status?: StackStatus }>();
  /** Status parameter name → its stack. */
  const statusOf = new Map<string, string>();
  for (const p of await ssm.describeByPath(prefix)) {
    const m = /\/([^/]+)\/(spec|status)$/.exec(p.Name ?? "");
    if (!m || (opts.name && m[1] !== opts.name)) continue;
    const entry = stacks.get(m[1]!) ?? { spec: false };
    if (m[2] === "spec") entry.spec = true;
    else statusOf.set(p.Name!, m[1]!);
    stacks.set(m[1]!, entry);
  }
  for (const [name, p] of await ssm.getMany([...statusOf.keys()])) {
    const status = parseStatus(p.Value);
    if (status) stacks.get(statusOf.get(name)!)!.status = status;
  }
  if (stacks.size === 0) {
    print(opts.name ? `no stack ${opts.name} under ${prefix}\n` : `no stacks under ${prefix}\n`);
    return opts.name ? 1 : 0;
  }
  const flag = (s: StackStatus | undefined, type: string) => s?.conditions.find((c) => c.type === type)?.status ?? "-";
  const rows = [...stacks].sort(([a], [b]) => a.localeCompare(b)).map(([name, { spec, status }]) => [
    name,
    !status ? "Unknown" : isStale(status, now) ? "Stale" : flag(status, "Ready"),
    status ? String(status.observedGeneration) : "-",
    flag(status, "Progressing"),
    flag(status, "Degraded"),
    flag(status, "InvalidSpec"),
    status?.lastReconcileTime ?? (spec ? "never (no status yet)" : "-"),
    status ? Object.entries(status.components).map(([c, n]) => `${c} ${n.running}/${n.desired}`).join(", ") : "",
  ]);
  const header = ["NAME", "READY", "GEN", "PROGRESSING", "DEGRADED", "INVALID", "LAST-RECONCILED", "COMPONENTS (running/desired)"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) print(`${r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()}\n`);
  const one = opts.name ? stacks.get(opts.name)?.status : undefined;
  if (one) {
    print("\n");
    if (isStale(one, now)) print(`Stale: last reconciled ${one.lastReconcileTime ?? "never"}${one.reconciledBy ? ` by ${one.reconciledBy}` : ""}; is the operator running?\n`);
    for (const c of one.conditions) print(`${c.type.padEnd(12)} ${c.status.padEnd(5)} ${c.reason}: ${c.message} (since ${c.lastTransitionTime})\n`);
  }
  return 0;
}

/** `lokistack spec put -f FILE`: validate, then write the spec parameter. Problems go to `printError`, each naming the file. */
export async function specPutCommand(opts: AwsOptions & { file: string; secure?: boolean; kmsKey?: string }, print: Print, printError: Print): Promise<number> {
  const text = readFileSync(opts.file, "utf8");
  const result = validateText(text);
  for (const w of result.warnings) printError(`${opts.file}: warning: ${formatIssue(w)}\n`);
  if (!result.ok) {
    for (const e of result.errors) printError(`${opts.file}: error: ${formatIssue(e)}\n`);
    printError(`${opts.file}: not written: nothing changed in SSM\n`);
    return 1;
  }
  const { ssm } = reconcilerFor(opts);
  const name = `${opts.prefix ?? DEFAULT_PREFIX}/${result.stack.name}/spec`;
  const version = await ssm.put(name, text, opts.secure || opts.kmsKey ? "SecureString" : "String", opts.kmsKey);
  print(`${name}: version ${version}\n`);
  return 0;
}

/** `lokistack spec get NAME`: the spec as stored; a SecureString only with `decrypt`. */
export async function specGetCommand(opts: AwsOptions & { name: string; decrypt?: boolean }, print: Print, printError: Print): Promise<number> {
  const { ssm } = reconcilerFor(opts);
  const name = `${opts.prefix ?? DEFAULT_PREFIX}/${opts.name}/spec`;
  const found = await ssm.get(name);
  if (!found?.Value) {
    printError(`no spec ${opts.name}: ${name} does not exist (lokistack status lists the stacks)\n`);
    return 1;
  }
  if (found.Type === "SecureString" && !opts.decrypt) {
    printError(`${name} is a SecureString (version ${found.Version}): add --decrypt to print it\n`);
    return 1;
  }
  print(found.Value.endsWith("\n") ? found.Value : `${found.Value}\n`);
  return 0;
}

/** `lokistack spec delete NAME`: removes the spec; the operator then retains or deletes the stack's services, as its deletionPolicy says. */
export async function specDeleteCommand(opts: AwsOptions & { name: string }, print: Print, printError: Print): Promise<number> {
  const { ssm } = reconcilerFor(opts);
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
  const name = `${prefix}/${opts.name}/spec`;
  if (!(await ssm.get(name))) {
    printError(`no spec ${opts.name}: ${name} does not exist\n`);
    return 1;
  }
  const policy = parseStatus((await ssm.get(`${prefix}/${opts.name}/status`))?.Value)?.deletionPolicy;
  await ssm.delete(name);
  const next =
    policy === "delete"
      ? "the operator now flushes and deletes every service of the stack, then its status (deletionPolicy: delete)"
      : policy === "retain"
        ? "the operator stops managing the stack and leaves its services running (deletionPolicy: retain)"
        : "the stack has no status yet: no operator has reconciled it";
  print(`${name} deleted; ${next}\n`);
  return 0;
}
