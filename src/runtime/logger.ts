// Structured logs: JSON lines by default (CloudWatch-friendly), pretty in a
// terminal. Field names are stable (event, stack, component, unit, drift,
// action); anything that could hold a secret is redacted.
import type { Writable } from "node:stream";
import { pino, type Logger } from "pino";
import pretty from "pino-pretty";

/** Paths pino censors wherever they appear: parameter values and credentials. */
export const REDACT_PATHS = [
  "Value",
  "*.Value",
  "value",
  "*.value",
  "spec",
  "*.spec",
  "credentials",
  "*.credentials",
  "secretAccessKey",
  "*.secretAccessKey",
  "sessionToken",
  "*.sessionToken",
  "authorization",
  "*.authorization",
];

export interface LoggerOptions {
  level?: string;
  /** Pretty lines for a person; defaults to whether stdout is a terminal. */
  pretty?: boolean;
  /** Where lines go (tests pass a memory stream). */
  destination?: Writable;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { app: "lokistack" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  const format = process.env.LOG_FORMAT;
  const wantPretty = options.pretty ?? (format ? format === "pretty" : process.stdout.isTTY === true && !process.env.CI);
  if (wantPretty) {
    return pino(
      base,
      pretty({
        colorize: true,
        singleLine: true,
        translateTime: "HH:MM:ss",
        messageFormat: "{if stack}{stack} · {end}{msg}",
        ignore: "pid,hostname,app,stack,msg",
        destination: options.destination ?? 1,
        sync: true,
      }),
    );
  }
  return pino(base, options.destination ?? process.stdout);
}
