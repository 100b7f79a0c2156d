// The `lokistack` command. Every command is a thin shell over the same
// functions the operator uses, so what a person sees is what the daemon does.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, Option } from "commander";
import { stringify } from "yaml";
import { formatIssue, type Issue } from "./resources/issues.ts";
import { DEFAULT_PREFIX, render } from "./resources/render.ts";
import { validateText, type ValidationResult } from "./resources/validate.ts";
import { runLocal, SeedError } from "./local/run.ts";

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

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const program = new Command()
    .name("lokistack")
    .description("Keeps Grafana Loki stacks on Amazon ECS converged to their LokiStack spec.")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError();

  program
    .command("validate")
    .description("Check LokiStack specs; exit 0 when all are valid, 1 listing every error.")
    .requiredOption("-f, --file <files...>", "spec files (YAML or JSON)")
    .action((opts: { file: string[] }) => {
      for (const file of opts.file) {
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
    .description("Print the ECS task definitions, services and Loki configs a spec converges to.")
    .requiredOption("-f, --file <file>", "spec file (YAML or JSON)")
    .addOption(new Option("-o, --output <format>", "output format").choices(["json", "yaml"]).default("json"))
    .option("--prefix <prefix>", "SSM parameter prefix the tasks read their config from", DEFAULT_PREFIX)
    .action((opts: { file: string; output: "json" | "yaml"; prefix: string }) => {
      const result = readSpec(opts.file);
      printIssues(io, opts.file, "warning", result.warnings);
      if (!result.ok) {
        printIssues(io, opts.file, "error", result.errors);
        exitCode = 1;
        return;
      }
      const rendered = render(result.stack, { parameterPrefix: opts.prefix });
      io.stdout(opts.output === "yaml" ? stringify(rendered, { lineWidth: 0 }) : `${JSON.stringify(rendered, null, 2)}\n`);
    });

  program
    .command("local")
    .description("Run the embedded ECS + SSM + S3 control plane on loopback until interrupted.")
    .option("--port <port>", "port on 127.0.0.1 (0 picks a free one)", (v) => Number(v), 4566)
    .option("--state <file>", "load state from FILE and save it there on exit")
    .option("--tick-ms <ms>", "milliseconds between scheduler ticks", (v) => Number(v), 1000)
    .option("--seed <file>", "seed a LokiStack spec: its cluster, bucket and SSM parameter")
    .option("--prefix <prefix>", "SSM prefix for seeded specs", DEFAULT_PREFIX)
    .action(async (opts: { port: number; state?: string; tickMs: number; seed?: string; prefix: string }) => {
      let cp;
      try {
        cp = await runLocal(opts, (line) => io.stdout(`${line}\n`));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === "EADDRINUSE") io.stderr(`port ${opts.port} is in use: pass --port 0 for a free one\n`);
        else if (e instanceof SeedError) io.stderr(`${e.message}\n`);
        else throw e;
        exitCode = 1;
        return;
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
      });
      await cp.stop();
      io.stdout("stopped\n");
    });

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    throw e;
  }
  return exitCode;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
const invokedByBin = process.argv[1]?.endsWith("lokistack") || process.argv[1]?.endsWith("lokistack.js");
if (invokedDirectly || invokedByBin) {
  // The SDK warns that its releases after January 2027 need Node 22; the locked
  // version runs on Node 20, which this project targets, so the warning is noise here.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.exitCode = await runCli(process.argv.slice(2));
}
