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

/** In a terminal, the few fields worth reading beside the message; the message already names the stack, unit and drift. */
const PRETTY_FIELDS = ["result", "outcome", "reason", "error"] as const;

/** One line for a person: `stack · message key=value …`, no JSON tail. */
export function prettyMessage(log: Record<string, unknown>, messageKey = "msg"): string {
  const fields = PRETTY_FIELDS.filter((k) => log[k] !== undefined && log[k] !== null && log[k] !== "ok").map((k) => {
    const v = typeof log[k] === "string" ? (log[k] as string) : JSON.stringify(log[k]);
    return `${k}=${/\s/.test(v) ? JSON.stringify(v) : v}`;
  });
  return [typeof log.stack === "string" ? `${log.stack} ·` : undefined, String(log[messageKey] ?? ""), ...fields].filter(Boolean).join(" ");
}

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
        translateTime: "HH:MM:ss",
        messageFormat: (log, messageKey) => prettyMessage(log, messageKey),
        // The fields that matter are in the message line; the rest is for JSON logs.
        hideObject: true,
        destination: options.destination ?? 1,
        sync: true,
      }),
    );
  }
  return pino(base, options.destination ?? process.stdout);
}
