// The operator's commands for people and CI: plan, apply --once, status, spec
// put. Each runs the same code path as the daemon.
import { readFileSync } from "node:fs";
import type { Service } from "@aws-sdk/client-ecs";
import { stringify } from "yaml";
import { Writable } from "node:stream";
import { makeClients } from "../aws/clients.ts";
import { DiscoveryGateway } from "../aws/discovery-gateway.ts";
import { EcsGateway } from "../aws/ecs-gateway.ts";
import { SsmGateway } from "../aws/ssm-gateway.ts";
import { WriteLimiter } from "../aws/write-limiter.ts";
import { Reconciler, type StackResult } from "../controllers/reconciler.ts";
import { parseStatus, type StackStatus } from "../controllers/status.ts";
import { formatIssue } from "../resources/issues.ts";
import { DEFAULT_PREFIX, specParameterName, statusParameterName } from "../resources/render.ts";
import { validateText } from "../resources/validate.ts";
import { LokiGateway } from "../loki/gateway.ts";
import { formatPlan, planDocument } from "./plan-view.ts";
import { formatDetail, formatSummaries, summarize } from "./status-view.ts";
import { createLogger } from "./logger.ts";

export interface AwsOptions {
  endpoint?: string;
  region?: string;
  prefix?: string;
  /** An HTTP proxy to reach Loki on the stack's tasks through. */
  lokiProxy?: string;
}

export type Print = (text: string) => void;

function reconcilerFor(opts: AwsOptions, logLevel = "silent"): { reconciler: Reconciler; ssm: SsmGateway; ecs: EcsGateway } {
  const clients = makeClients({ ...(opts.endpoint ? { endpoint: opts.endpoint } : {}), ...(opts.region ? { region: opts.region } : {}) });
  const ssm = new SsmGateway(clients.ssm);
  const ecs = new EcsGateway(clients.ecs);
  const sink = new Writable({ write: (_c, _e, done) => done() });
  const logger = logLevel === "silent" ? createLogger({ pretty: false, destination: sink, level: "silent" }) : createLogger({ level: logLevel });
  const reconciler = new Reconciler({
    prefix: opts.prefix ?? DEFAULT_PREFIX,
    ecs,
    ssm,
    discovery: new DiscoveryGateway(clients.discovery),
    limiter: new WriteLimiter(),
    logger,
    loki: new LokiGateway(opts.lokiProxy ? { proxy: opts.lokiProxy } : {}),
  });
  return { reconciler, ssm, ecs };
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

export interface StatusOptions extends AwsOptions {
  name?: string;
  now?: () => Date;
  output?: "table" | "json" | "yaml";
  /** Print again whenever what is shown changes, until `until` settles. */
  watch?: { intervalMs: number; until: Promise<unknown> };
}

/**
 * `lokistack status [NAME]`, like `flux get`: a row per stack from the status
 * parameters (never a spec's value); for one stack also its conditions and each
 * unit's service as ECS reports it now. Exit 1 for a stack that does not exist.
 */
export async function statusCommand(opts: StatusOptions, print: Print, printError: Print): Promise<number> {
  const { ssm, ecs } = reconcilerFor(opts);
  const now = opts.now ?? (() => new Date());
  let shown: string | undefined;
  let stopped = false;
  void opts.watch?.until.then(() => (stopped = true));
  for (;;) {
    const view = await statusView(opts, ssm, ecs, now());
    if (view === undefined && opts.name) {
      printError(`no stack ${opts.name} under ${opts.prefix ?? DEFAULT_PREFIX} (lokistack status lists the stacks)\n`);
      return 1;
    }
    // Printed again when what it says changed, not when only the ages moved on.
    const key = view?.key ?? "";
    if (key !== shown) print(`${shown !== undefined ? "\n" : ""}${view?.text ?? `no stacks under ${opts.prefix ?? DEFAULT_PREFIX}\n`}`);
    shown = key;
    if (!opts.watch) return 0;
    await Promise.race([new Promise((r) => setTimeout(r, opts.watch!.intervalMs)), opts.watch.until]);
    if (stopped) return 0;
  }
}

/** What status prints now and what it says apart from ages, or undefined when there is no stack (no such stack) to show. */
async function statusView(opts: StatusOptions, ssm: SsmGateway, ecs: EcsGateway, now: Date): Promise<{ text: string; key: string } | undefined> {
  const prefix = opts.prefix ?? DEFAULT_PREFIX;
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
  if (stacks.size === 0) return undefined;
  const sorted = [...stacks].sort(([a], [b]) => a.localeCompare(b));
  const summaries = sorted.map(([name, { spec, status }]) => summarize(name, spec, status, now));
  const one = opts.name ? stacks.get(opts.name)?.status : undefined;
  // One stack: its units as ECS has them now (a read the operator's status cannot replace).
  const services = one?.cluster && one.inventory.services.length > 0 ? await ecs.describeServices(one.cluster, one.inventory.services) : new Map<string, Service>();
  const key = JSON.stringify([summaries.map(({ since: _s, lastReconcileTime: _l, ...rest }) => rest), [...services.values()].map((s) => [s.serviceName, s.desiredCount, s.runningCount, s.pendingCount, s.taskDefinition, s.status])]);
  if (opts.output === "json" || opts.output === "yaml") {
    const doc = {
      formatVersion: 1,
      stacks: sorted.map(([, { status }], i) => ({
        ...summaries[i]!,
        ...(status ? { conditions: status.conditions, components: status.components } : {}),
        ...(one && status === one ? { units: [...services.values()].map((s) => ({ name: s.serviceName, desired: s.desiredCount, running: s.runningCount, pending: s.pendingCount, taskDefinition: s.taskDefinition, rollout: s.deployments?.find((d) => d.status === "PRIMARY")?.rolloutState ?? null })) } : {}),
      })),
    };
    return { text: opts.output === "json" ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc, { lineWidth: 0 }), key };
  }
  return { text: formatSummaries(summaries, now) + (one ? formatDetail(one, services, now) : ""), key };
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
  const name = specParameterName(opts.prefix ?? DEFAULT_PREFIX, result.stack.name);
  const version = await ssm.put(name, text, opts.secure || opts.kmsKey ? "SecureString" : "String", opts.kmsKey);
  print(`${name}: version ${version}\n`);
  return 0;
}

/** `lokistack spec get NAME`: the spec as stored; a SecureString only with `decrypt`. */
export async function specGetCommand(opts: AwsOptions & { name: string; decrypt?: boolean }, print: Print, printError: Print): Promise<number> {
  const { ssm } = reconcilerFor(opts);
  const name = specParameterName(opts.prefix ?? DEFAULT_PREFIX, opts.name);
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
  const name = specParameterName(prefix, opts.name);
  if (!(await ssm.get(name))) {
    printError(`no spec ${opts.name}: ${name} does not exist\n`);
    return 1;
  }
  const policy = parseStatus((await ssm.get(statusParameterName(prefix, opts.name)))?.Value)?.deletionPolicy;
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
