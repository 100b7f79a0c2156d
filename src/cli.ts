// The `lokistack` command. Every command is a thin shell over the same
// functions the operator uses, so what a person sees is what the daemon does.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { stringify } from "yaml";
import { localEndpointMessage, RegionError, resolveRegion } from "./aws/clients.ts";
import { REAL_TASKS_HOWTO, runLocal, SeedError, type TaskMode } from "./runtime/local.ts";
import { RealTasksUnavailable } from "./local/tasks/runner.ts";
import { formatIssue, type Issue } from "./resources/issues.ts";
import { DEFAULT_PREFIX, render } from "./resources/render.ts";
import { validateText, type ValidationResult } from "./resources/validate.ts";
import { explainError, type ErrorContext } from "./runtime/cli-errors.ts";
import { applyOnceCommand, planCommand, specDeleteCommand, specGetCommand, specPutCommand, statusCommand, type AwsOptions } from "./runtime/commands.ts";
import { DEFAULT_RESYNC, resyncProblem } from "./runtime/daemon.ts";
import { startDemo } from "./runtime/demo.ts";
import { createOperator } from "./runtime/operator.ts";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

function readSpec(file: string): ValidationResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : String(e);
    return { ok: false, errors: [{ path: "(file)", message: `cannot read: ${reason}` }], warnings: [] };
  }
  return validateText(text);
}

function printIssues(io: CliIo, file: string, kind: "error" | "warning", issues: Issue[]): void {
  for (const i of issues) io.stderr(`${file}: ${kind}: ${formatIssue(i)}\n`);
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    process.once("SIGINT", () => resolve("SIGINT"));
    process.once("SIGTERM", () => resolve("SIGTERM"));
  });
}

function withAwsOptions(cmd: Command): Command {
  return cmd
    .option("--endpoint <url>", "AWS-compatible endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    .option("--region <region>", "AWS region (default: $AWS_REGION, then the region of the profile ($AWS_PROFILE, else default), then EC2 instance metadata; us-east-1 against a local --endpoint when none is set)")
    .option("--prefix <prefix>", "SSM prefix of the LokiStack parameters", DEFAULT_PREFIX);
}

/** For commands that ask Loki on the tasks (readiness, the ring, flushes): the operator reaches them directly from their VPC. */
function withLokiOption(cmd: Command): Command {
  return cmd.addOption(new Option("--loki-proxy <url>", "reach Loki on the tasks through this HTTP proxy (`lokistack local` with simulated tasks is one)").env("LOKISTACK_LOKI_PROXY"));
}

/**
 * The region once, up front, from --region or the SDK's default chain, so a
 * missing one is a clear error before anything runs (RegionError, caught in
 * runCli), and a local endpoint's fallback region is said out loud.
 */
async function withRegion<T extends AwsOptions>(opts: T, io: CliIo, context: ErrorContext): Promise<T> {
  const endpoint = opts.endpoint ?? process.env.AWS_ENDPOINT_URL;
  Object.assign(context, { ...(endpoint ? { endpoint } : {}), ...(opts.prefix ? { prefix: opts.prefix } : {}) });
  const { region, source } = await resolveRegion(opts);
  context.region = region;
  if (source === "local-default") io.stderr(`${localEndpointMessage(region)}\n`);
  return { ...opts, region };
}

/** The package's version, from the nearest package.json above this module (src/ in a checkout, dist/src/ in the image). */
function packageVersion(): string {
  for (let dir = new URL(".", import.meta.url); dir.pathname !== "/"; dir = new URL("..", dir)) {
    try {
      return (JSON.parse(readFileSync(new URL("package.json", dir), "utf8")) as { version: string }).version;
    } catch {
      // Not here: one level up.
    }
  }
  return "unknown";
}

/** --resync, checked while the command line is read: before any lease is taken or call made. */
const resync = (v: string) => {
  const problem = resyncProblem(v);
  if (problem) throw new InvalidArgumentError(problem);
  return v;
};

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new CommanderError(1, "lokistack.invalidNumber", `not a whole number: ${v}`);
  return n;
};

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  /** What the command talked to, for the one line that explains an error. */
  const context: ErrorContext = {};
  const program = new Command()
    .name("lokistack")
    .description("Keeps Grafana Loki stacks on Amazon ECS converged to their LokiStack spec.")
    .version(packageVersion(), "-V, --version", "print the version")
    .option("--debug", "on an error, print its stack trace too")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError("(run the command with --help for its usage)");

  program
    .command("validate")
    .description("Check LokiStack specs; exit 0 when all are valid, 1 listing every error.")
    .argument("[files...]", "spec files (YAML or JSON)")
    .option("-f, --file <files...>", "spec files, as arguments of -f")
    .action((args: string[], opts: { file?: string[] }) => {
      const files = [...args, ...(opts.file ?? [])];
      if (files.length === 0) throw new Error("name one or more spec files: lokistack validate FILE...");
      for (const file of files) {
        const result = readSpec(file);
        printIssues(io, file, "warning", result.warnings);
        if (result.ok) io.stdout(`${file}: valid (${result.stack.name})\n`);
        else {
          printIssues(io, file, "error", result.errors);
          exitCode = 1;
        }
      }
    });

  program
    .command("render")
    .description("Print the ECS task definitions and services, the Cloud Map services and the Loki configs a spec converges to.")
    .requiredOption("-f, --file <file>", "spec file (YAML or JSON)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option("--unit <name>", "only this unit: querier, ingester-0, or the full name demo-querier")
    .option("--prefix <prefix>", "SSM parameter prefix the tasks read their config from", DEFAULT_PREFIX)
    .action((opts: { file: string; output: "json" | "yaml"; prefix: string; unit?: string }) => {
      const result = readSpec(opts.file);
      printIssues(io, opts.file, "warning", result.warnings);
      if (!result.ok) {
        printIssues(io, opts.file, "error", result.errors);
        exitCode = 1;
        return;
      }
      let rendered = render(result.stack, { parameterPrefix: opts.prefix });
      if (opts.unit) {
        const units = rendered.services.map((s) => s.serviceName!);
        const name = units.find((u) => u === opts.unit || u === `${result.stack.name}-${opts.unit}`);
        if (!name) throw new Error(`no unit '${opts.unit}' in ${opts.file}: its units are ${units.map((u) => u.slice(result.stack.name.length + 1)).join(", ")}`);
        rendered = {
          taskDefinitions: rendered.taskDefinitions.filter((t) => t.family === name),
          services: rendered.services.filter((s) => s.serviceName === name),
          discoveryServices: rendered.discoveryServices.filter((d) => d.Name === name),
          lokiConfig: { [name]: rendered.lokiConfig[name]! },
        };
      }
      io.stdout(opts.output === "yaml" ? stringify(rendered, { lineWidth: 0 }) : `${JSON.stringify(rendered, null, 2)}\n`);
    });

  withLokiOption(withAwsOptions(program.command("run")))
    .description("Run the operator: reconcile every LokiStack on a schedule until SIGTERM.")
    .option("--resync <cron>", "resync schedule: cron with six fields, seconds first", resync, DEFAULT_RESYNC)
    .option("--lease <url>", "leader election lease object, s3://BUCKET/KEY")
    .option("--no-lease", "run without leader election (only ever one replica)")
    .option("--lease-duration <ms>", "lease duration in milliseconds", int, 15_000)
    .option("--port <port>", "port for /healthz, /readyz and /metrics", int, 8080)
    .option("--host <address>", "address the health server listens on", "0.0.0.0")
    .option("--watch-interval <ms>", "how often spec versions are checked between resyncs", int, 5_000)
    .action(async (opts: AwsOptions & { resync: string; lease?: string | false; leaseDuration: number; port: number; watchInterval: number }) => {
      const { lease, leaseDuration, watchInterval, ...rest } = await withRegion(opts, io, context);
      const operator = createOperator({
        ...rest,
        ...(typeof lease === "string" ? { lease, leaseMs: leaseDuration } : {}),
        watchIntervalMs: watchInterval,
      });
      if (lease === undefined) operator.logger.warn({ event: "start" }, "no --lease: running without leader election; never run two replicas like this");
      await operator.daemon.start();
      const signal = await untilSignal();
      operator.logger.info({ event: "signal", signal }, "shutting down");
      await operator.daemon.stop();
    });

  withLokiOption(withAwsOptions(program.command("plan")))
    .description("Show what a pass would do, like terraform plan; exit 0 (no drift), 2 (drift) or 1 (error).")
    .argument("[name]", "only this stack")
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (name: string | undefined, opts: AwsOptions & { output: "text" | "json" }) => {
      exitCode = await planCommand({ ...(await withRegion(opts, io, context)), ...(name ? { name } : {}) }, io.stdout, io.stderr);
    });

  withLokiOption(withAwsOptions(program.command("apply")))
    .description("Run one repairing pass and exit (1 on any error); the daemon is `lokistack run`.")
    .option("--once", "accepted and ignored: apply always runs one pass")
    .argument("[name]", "only this stack")
    .action(async (name: string | undefined, opts: AwsOptions) => {
      exitCode = await applyOnceCommand({ ...(await withRegion(opts, io, context)), ...(name ? { name } : {}) });
    });

  withAwsOptions(program.command("status"))
    .description("Every stack (or one, with its conditions and units) like flux get: READY, STATUS, AGE, LAST-RECONCILED, MESSAGE.")
    .argument("[name]", "only this stack, with its conditions and each unit's service")
    .addOption(new Option("-o, --output <format>", "output format").choices(["table", "json", "yaml"]).default("table"))
    .option("-w, --watch", "print again whenever it changes, until Ctrl-C")
    .option("--interval <seconds>", "how often --watch looks", int, 2)
    .action(async (name: string | undefined, opts: AwsOptions & { output: "table" | "json" | "yaml"; watch?: boolean; interval: number }) => {
      const { watch, interval, ...rest } = await withRegion(opts, io, context);
      const watching = watch ? { watch: { intervalMs: Math.max(1, interval) * 1000, until: untilSignal() } } : {};
      exitCode = await statusCommand({ ...rest, ...(name ? { name } : {}), ...watching }, io.stdout, io.stderr);
    });

  const spec = program.command("spec").description("Manage LokiStack specs in SSM.");
  withAwsOptions(spec.command("put"))
    .description("Validate a spec, then write it to <prefix>/<name>/spec.")
    .requiredOption("-f, --file <file>", "spec file (YAML or JSON)")
    .option("--secure", "store it as a SecureString (under the AWS managed key aws/ssm unless --kms-key)")
    .option("--kms-key <id>", "store it as a SecureString under this KMS key (id, ARN or alias); its config parameters use the same key")
    .action(async (opts: AwsOptions & { file: string; secure?: boolean; kmsKey?: string }) => {
      exitCode = await specPutCommand(await withRegion(opts, io, context), io.stdout, io.stderr);
    });
  withAwsOptions(spec.command("get"))
    .description("Print a stack's spec as stored in SSM.")
    .argument("<name>", "the stack")
    .option("--decrypt", "print a SecureString spec too")
    .action(async (name: string, opts: AwsOptions & { decrypt?: boolean }) => {
      exitCode = await specGetCommand({ ...(await withRegion(opts, io, context)), name }, io.stdout, io.stderr);
    });
  withAwsOptions(spec.command("delete"))
    .description("Delete a stack's spec; the operator then retains or deletes its services, as its deletionPolicy says.")
    .argument("<name>", "the stack")
    .action(async (name: string, opts: AwsOptions) => {
      exitCode = await specDeleteCommand({ ...(await withRegion(opts, io, context)), name }, io.stdout, io.stderr);
    });

  program
    .command("local")
    .description("Run the embedded ECS + SSM + S3 control plane on loopback until interrupted.")
    .option("--port <port>", "port on 127.0.0.1 (0 picks a free one)", int, 4566)
    .option("--state <file>", "load state from FILE and save it there on exit")
    .option("--tick-ms <ms>", "milliseconds between scheduler ticks", int, 1000)
    .option("--seed <file>", "seed a LokiStack spec: its cluster, bucket and SSM parameter")
    .option("--prefix <prefix>", "SSM prefix for seeded specs", DEFAULT_PREFIX)
    .addOption(new Option("--tasks <mode>", "run tasks as simulated lifecycles or as real processes (needs a Loki binary and root)").choices(["simulated", "real"]).default("simulated"))
    .option("--loki-bin <path>", "the Loki binary for real tasks (default: LOKI_BIN, then loki on PATH)")
    .action(async (opts: { port: number; state?: string; tickMs: number; seed?: string; prefix: string; tasks: TaskMode; lokiBin?: string }) => {
      let cp;
      try {
        cp = await runLocal(opts, (line) => io.stdout(`${line}\n`));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") io.stderr(`port ${opts.port} is in use: pass --port 0 for a free one\n`);
        else if (e instanceof SeedError || e instanceof RealTasksUnavailable) io.stderr(`lokistack local: ${e.message}\n`);
        else throw e;
        exitCode = 1;
        return;
      }
      await untilSignal();
      await cp.stop();
      io.stdout("stopped\n");
    });

  program
    .command("demo")
    .description("The control plane and the operator in one process: converge the demo stack, then chaos.")
    .option("--port <port>", "port on 127.0.0.1 for the control plane (0 picks a free one)", int, 4566)
    .option("--resync <cron>", "resync schedule: cron with six fields, seconds first", resync, "*/2 * * * * *")
    .addOption(new Option("--tasks <mode>", "auto: real Loki processes when a Loki binary and root are there, simulated otherwise").choices(["auto", "simulated", "real"]).default("auto"))
    .option("--loki-bin <path>", "the Loki binary for real tasks (default: LOKI_BIN, then loki on PATH)")
    .action(async (opts: { port: number; resync: string; tasks: TaskMode; lokiBin?: string }) => {
      let demo;
      try {
        demo = await startDemo({ port: opts.port, resync: opts.resync, tasks: opts.tasks, ...(opts.lokiBin ? { lokiBin: opts.lokiBin } : {}) });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "EADDRINUSE") {
          io.stderr(`port ${opts.port} is in use: pass --port 0 for a free one (npm start -- --port 0)\n`);
          exitCode = 1;
          return;
        }
        if (e instanceof RealTasksUnavailable) {
          io.stderr(`lokistack demo: ${e.message}\n${REAL_TASKS_HOWTO}\n`);
          exitCode = 1;
          return;
        }
        throw e;
      }
      const stopped = untilSignal();
      const chaos = demo.chaos();
      try {
        await Promise.race([chaos, stopped]);
        await stopped;
      } finally {
        // Ctrl-C, or a chaos step that failed: everything stops now (the chaos with it).
        await demo.stop();
        await chaos.catch(() => undefined);
      }
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    io.stderr(`lokistack: ${e instanceof RegionError ? e.message : explainError(e, context)}\n`);
    if (program.opts<{ debug?: boolean }>().debug && e instanceof Error) io.stderr(`${e.stack ?? e.message}\n`);
    return 1;
  }
  return exitCode;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const invokedByBin = process.argv[1]?.endsWith("lokistack") || process.argv[1]?.endsWith("lokistack.js");
if (invokedDirectly || invokedByBin) {
  // The SDK warns that its releases after January 2027 need Node 22; the locked
  // version runs on Node 20, which this project targets, so the warning is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  // A reader that went away (`lokistack status | head`) is not an error: stop quietly.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  process.exitCode = await runCli(process.argv.slice(2));
}
