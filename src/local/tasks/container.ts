// One container of a real task: a process in the task's network namespace
// (awsvpc) and in namespaces of its own (bubblewrap): a mount namespace that
// shows the image's files at /usr/bin, the host's shared libraries, the
// task's volumes at their containerPath and the VPC resolver in
// /etc/resolv.conf; a PID namespace in which the container's command is
// PID 1, as in Docker (it gets SIGTERM only if it handles it, and everything
// it started dies with it); and Docker's default capabilities, dropped
// entirely when it runs as the image's non-root user.
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import type { HostTools } from "./host.ts";
import type { LocalImage } from "./images.ts";

/** Where setpriv is bound inside every container, to drop root after the mounts are made. */
const SETPRIV = "/.lokistack/setpriv";

/** Docker's default capability set (moby's oci/caps/defaults.go), which Fargate keeps. */
const DEFAULT_CAPABILITIES = [
  "CAP_CHOWN",
  "CAP_DAC_OVERRIDE",
  "CAP_FSETID",
  "CAP_FOWNER",
  "CAP_MKNOD",
  "CAP_NET_RAW",
  "CAP_SETGID",
  "CAP_SETUID",
  "CAP_SETFCAP",
  "CAP_SETPCAP",
  "CAP_NET_BIND_SERVICE",
  "CAP_SYS_CHROOT",
  "CAP_KILL",
  "CAP_AUDIT_WRITE",
];

export interface ContainerSpec {
  netns: string;
  hostname: string;
  image: LocalImage;
  user: { uid: number; gid: number };
  argv: string[];
  env: Record<string, string>;
  mounts: { source: string; target: string; readOnly: boolean }[];
  /** Host files shown at /etc/resolv.conf, /etc/hosts, /etc/passwd and /etc/group. */
  etc: { resolv: string; hosts: string; passwd: string; group: string };
  workingDirectory?: string;
  logFile: string;
}

export interface ContainerProcess {
  /** Resolves with the container's PID 1 (as the host numbers it) once it runs, or undefined if it never did. */
  readonly pid: Promise<number | undefined>;
  /** The exit code: the command's, or 128 + the signal that ended it (as Docker reports). */
  readonly exited: Promise<number>;
  /** Signals the container's PID 1 while it runs; nothing once it has exited. */
  signal(signal: NodeJS.Signals): void;
}

function sandboxArgs(tools: HostTools, spec: ContainerSpec): string[] {
  const { image } = spec;
  const args = [
    "--die-with-parent",
    "--new-session",
    "--unshare-uts",
    "--unshare-ipc",
    "--unshare-pid",
    "--as-pid-1",
    "--cap-drop", "ALL",
    ...DEFAULT_CAPABILITIES.flatMap((c) => ["--cap-add", c]),
    "--hostname", spec.hostname,
    "--dir", "/usr",
    "--ro-bind", "/usr/lib", "/usr/lib",
    "--ro-bind-try", "/usr/lib64", "/usr/lib64",
    "--ro-bind", image.bin, "/usr/bin",
    ...image.binds.flatMap((b) => ["--ro-bind", b.source, b.target]),
    "--symlink", "usr/bin", "/bin",
    "--symlink", "usr/bin", "/sbin",
    "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64",
    "--dir", "/etc",
    "--ro-bind", spec.etc.resolv, "/etc/resolv.conf",
    "--ro-bind", spec.etc.hosts, "/etc/hosts",
    "--ro-bind", spec.etc.passwd, "/etc/passwd",
    "--ro-bind", spec.etc.group, "/etc/group",
    "--ro-bind-try", "/etc/ssl", "/etc/ssl",
    "--proc", "/proc",
    "--dev", "/dev",
    "--tmpfs", "/tmp",
    "--ro-bind", tools.setpriv, SETPRIV,
  ];
  // Parents before children: a volume at /loki/wal must land inside the one at /loki.
  for (const m of [...spec.mounts].sort((a, b) => a.target.length - b.target.length)) args.push(m.readOnly ? "--ro-bind" : "--bind", m.source, m.target);
  args.push("--chdir", spec.workingDirectory ?? "/");
  return args;
}

function dropTo(user: { uid: number; gid: number }): string[] {
  // A uid change clears the parent-death signal bwrap set; set it again so a
  // container never outlives its task when the control plane dies.
  return [SETPRIV, `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--pdeathsig=SIGKILL", "--"];
}

const SIGNALS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

export function startContainer(tools: HostTools, spec: ContainerSpec): ContainerProcess {
  const log = createWriteStream(spec.logFile, { flags: "a" });
  // bwrap reports the sandboxed child's pid and, later, its exit code as JSON on fd 3.
  const child: ChildProcess = spawn(tools.ip, ["netns", "exec", spec.netns, tools.bwrap, "--json-status-fd", "3", ...sandboxArgs(tools, spec), "--", ...dropTo(spec.user), ...spec.argv], {
    env: spec.env,
    stdio: ["ignore", "pipe", "pipe", "pipe"],
  });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let status = "";
  let resolvePid!: (pid: number | undefined) => void;
  const pid = new Promise<number | undefined>((r) => (resolvePid = r));
  let running: number | undefined;
  let ended = false;
  child.stdio[3]?.on("data", (chunk: Buffer) => {
    status += chunk.toString("utf8");
    const m = /"child-pid"\s*:\s*(\d+)/.exec(status);
    if (m && running === undefined && !ended) {
      running = Number(m[1]);
      resolvePid(running);
    }
  });
  const exited = new Promise<number>((resolve) => {
    child.once("error", (e) => {
      ended = true;
      running = undefined;
      log.write(`[lokistack local] cannot start the container: ${e.message}\n`);
      resolvePid(undefined);
      resolve(127);
    });
    // bwrap exits when the container's PID 1 does; the kernel then kills whatever is left in its PID namespace.
    child.once("close", (code, signal) => {
      ended = true;
      running = undefined;
      resolvePid(undefined);
      const reported = /"exit-code"\s*:\s*(\d+)/.exec(status);
      log.end();
      resolve(reported ? Number(reported[1]) : (code ?? 128 + (SIGNALS[signal ?? "SIGKILL"] ?? 9)));
    });
  });
  return {
    pid,
    exited,
    signal(sig) {
      if (ended) return; // its pid may belong to someone else by now
      if (running === undefined) {
        child.kill(sig); // not in its namespace yet: bwrap dies, and the container with it
        return;
      }
      try {
        process.kill(running, sig);
      } catch {
        // exited a moment ago
      }
    },
  };
}

/** Runs a command inside a running container's namespaces as its user: a health check. Resolves with its exit code (or 124 on timeout). */
export function execInContainer(tools: HostTools, pid: number, user: { uid: number; gid: number }, argv: string[], env: Record<string, string>, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(tools.nsenter, [`--target=${pid}`, "--mount", "--net", "--uts", "--ipc", "--pid", "--root", "--wd", "--", ...dropTo(user), ...argv], { env, stdio: "ignore" });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve(124);
    }, timeoutMs);
    child.once("error", () => {
      clearTimeout(timer);
      resolve(126);
    });
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve(code ?? 137);
    });
  });
}
