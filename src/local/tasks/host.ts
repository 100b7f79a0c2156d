// What the real-task runner needs from the machine, and one way to run a
// host command. Real tasks are Linux processes in their own network and mount
// namespaces, so the runner needs root (network namespaces, veth pairs and a
// bridge cannot be made without CAP_NET_ADMIN; switching a container to the
// image's uid needs CAP_SETUID), iproute2, bubblewrap, util-linux and BusyBox
// (the shell image and the shell of Alpine-based Loki images).
import { execFile, execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Runs a host command; rejects with its stderr when it fails. */
export function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { encoding: "utf8", timeout: 30_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(" ")}: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The first executable called `name` on PATH. */
export function onPath(name: string, path = process.env.PATH ?? ""): string | undefined {
  return path
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, name))
    .find(isExecutableFile);
}

export interface HostTools {
  ip: string;
  bwrap: string;
  setpriv: string;
  nsenter: string;
  busybox: string;
}

const TOOLS: { tool: keyof HostTools; why: string; debian: string }[] = [
  { tool: "ip", why: "network namespaces, veth pairs and the task bridge", debian: "iproute2" },
  { tool: "bwrap", why: "each container's mount namespace (its volumes at their containerPath)", debian: "bubblewrap" },
  { tool: "setpriv", why: "running a container as its image's user", debian: "util-linux" },
  { tool: "nsenter", why: "running container health checks inside the task", debian: "util-linux" },
  { tool: "busybox", why: "the shell image and the shell of Alpine-based Loki images", debian: "busybox" },
];

export type HostCheck = { ok: true; tools: HostTools } | { ok: false; missing: string[] };

/** What real tasks need from this machine: root and five tools; each missing one named with its Debian package. */
export function checkHost(): HostCheck {
  const missing: string[] = [];
  if (process.platform !== "linux") missing.push(`Linux (this is ${process.platform}): real tasks are Linux namespaces`);
  else if (process.getuid?.() !== 0) missing.push("root: network namespaces and switching to a container's uid need it (run as root, for example in a container or VM)");
  if (process.platform === "linux" && !existsSync("/proc/self/ns/net")) missing.push("network namespaces (/proc/self/ns/net)");
  const tools: Partial<HostTools> = {};
  for (const { tool, why, debian } of TOOLS) {
    const found = onPath(tool, `${process.env.PATH ?? ""}${delimiter}/usr/sbin${delimiter}/sbin${delimiter}/usr/bin`);
    if (found) tools[tool] = found;
    else missing.push(`${tool} (${why}): apt-get install ${debian}`);
  }
  if (missing.length > 0) return { ok: false, missing };
  const refused = probe(tools as HostTools);
  return refused ? { ok: false, missing: [refused] } : { ok: true, tools: tools as HostTools };
}

/**
 * Root is not always enough (a container without CAP_NET_ADMIN or CAP_SYS_ADMIN, a seccomp
 * profile that forbids unshare): try what a task needs once, a network namespace with a veth
 * pair and a bubblewrap mount namespace, and say what refused.
 */
function probe(tools: HostTools): string | undefined {
  const ns = `lskprobe-${randomBytes(4).toString("hex")}`;
  const attempt = (what: string, command: string, args: string[]) => {
    try {
      execFileSync(command, args, { stdio: ["ignore", "ignore", "pipe"], timeout: 10_000 });
      return undefined;
    } catch (e) {
      const stderr = String((e as { stderr?: Buffer }).stderr ?? "").trim();
      return `permission to create ${what} (${command} ${args.join(" ")}: ${stderr || (e as Error).message}); run as root with CAP_SYS_ADMIN and CAP_NET_ADMIN`;
    }
  };
  try {
    return (
      attempt("network namespaces", tools.ip, ["netns", "add", ns]) ??
      attempt("veth pairs", tools.ip, ["-n", ns, "link", "add", "probe0", "type", "veth", "peer", "name", "probe1"]) ??
      attempt("mount namespaces", tools.bwrap, ["--ro-bind", "/", "/", "--unshare-uts", "true"])
    );
  } finally {
    try {
      execFileSync(tools.ip, ["netns", "delete", ns], { stdio: "ignore" });
    } catch {
      // never created
    }
  }
}
