// One container of a real task: a process in the task's network namespace
// (awsvpc), in a mount namespace of its own (bubblewrap) that shows the
// image's files at /usr/bin, the task's volumes at their containerPath, the
// VPC resolver in /etc/resolv.conf and nothing else of the host but its
// shared libraries, running as the image's user (or the definition's `user`).
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream } from "node:fs";
import type { HostTools } from "./host.ts";
import type { LocalImage } from "./images.ts";

/** Where setpriv is bound inside every container, to drop root after the mounts are made. */
const SETPRIV = "/.lokistack/setpriv";

export interface ContainerSpec {
  name: string;
  netns: string;
  hostname: string;
  image: LocalImage;
  user: { uid: number; gid: number };
  argv: string[];
  env: Record<string, string>;
  mounts: { source: string; target: string; readOnly: boolean }[];
  /** Host files shown at /etc/resolv.conf and /etc/hosts. */
  etc: { resolv: string; hosts: string; passwd: string; group: string };
  workingDirectory?: string;
  logFile: string;
}

export interface ContainerProcess {
  /** Resolves with the container's main process (inside the sandbox) once it runs, or undefined if it never did. */
  readonly pid: Promise<number | undefined>;
  /** The exit code, 128 + signal when a signal ended it (as Docker reports). */
  readonly exited: Promise<number>;
  signal(signal: NodeJS.Signals): void;
}

function sandboxArgs(tools: HostTools, spec: ContainerSpec): string[] {
  const { image } = spec;
  const args = [
    "--die-with-parent",
    "--unshare-uts",
    "--unshare-ipc",
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
  let childPid: number | undefined;
  child.stdio[3]?.on("data", (chunk: Buffer) => {
    status += chunk.toString("utf8");
    const m = /"child-pid"\s*:\s*(\d+)/.exec(status);
    if (m && childPid === undefined) {
      childPid = Number(m[1]);
      resolvePid(childPid);
    }
  });
  const exited = new Promise<number>((resolve) => {
    child.once("error", (e) => {
      log.write(`[lokistack local] cannot start the container: ${e.message}\n`);
      resolvePid(undefined);
      resolve(127);
    });
    child.once("close", (code, signal) => {
      resolvePid(undefined);
      const reported = /"exit-code"\s*:\s*(\d+)/.exec(status);
      log.end();
      resolve(reported ? Number(reported[1]) : (code ?? 128 + (signal === "SIGKILL" ? 9 : 15)));
    });
  });
  return {
    pid,
    exited,
    signal(sig) {
      // The container's own process, not bwrap's monitor: that is what `docker stop` signals.
      if (childPid !== undefined) {
        try {
          process.kill(childPid, sig);
          return;
        } catch {
          // already gone
        }
      }
      child.kill(sig);
    },
  };
}

/** Runs a command inside a running container's namespaces as its user: a health check. Resolves with its exit code (or 124 on timeout). */
export function execInContainer(tools: HostTools, pid: number, user: { uid: number; gid: number }, argv: string[], env: Record<string, string>, timeoutMs: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(tools.nsenter, [`--target=${pid}`, "--mount", "--net", "--uts", "--ipc", "--root", "--wd", "--", ...dropTo(user), ...argv], { env, stdio: "ignore" });
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
