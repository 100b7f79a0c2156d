// Container images as local files. A real task runs no registry pull: each
// image name maps to what its root filesystem would hold here, built once per
// control plane under its run directory:
// - grafana/loki:<tag>: the Loki binary at /usr/bin/loki, run as uid 10001
//   (the image's USER). Up to 3.5 the image is Alpine based, so BusyBox's sh
//   and wget are there too; 3.6 and later are distroless: no shell at all.
// - busybox (Docker Hub or ECR Public's library copy): BusyBox, run as root.
// Anything else is refused the way ECS refuses an image it cannot pull.
import { chmodSync, copyFileSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";

export interface LocalImage {
  /** Host directory mounted read-only at /usr/bin. */
  bin: string;
  /** Host files bound read-only over placeholders in `bin`. */
  binds: { source: string; target: string }[];
  user: { uid: number; gid: number };
  /** The image's ENTRYPOINT and CMD, used where the container definition sets none. */
  entryPoint: string[];
  command: string[];
}

export interface ImageSources {
  busybox: string;
  /** The Loki binary; without it Loki images are refused. */
  lokiBin?: string;
}

// The image's USER and the versions with a shell, kept here apart from src/resources/image.ts:
// the simulator never imports the product's facts (test/local/independence.test.ts).
const LOKI_UID = 10001;

/** `grafana/loki:3.5.0`, `docker.io/grafana/loki:3.5.0`, `<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/grafana/loki:3.5.0`. */
function lokiTag(image: string): string | undefined {
  const m = /(?:^|\/)grafana\/loki(?::([^@]+))?(?:@.*)?$/.exec(image);
  return m ? (m[1] ?? "latest") : undefined;
}

function isBusybox(image: string): boolean {
  return /(?:^|\/)(?:library\/)?busybox(?::[^@/]+)?(?:@.*)?$/.test(image);
}

/** Alpine-based Loki images are those before 3.6 (grafana/loki#20149 made 3.6 distroless). */
function lokiHasShell(tag: string): boolean {
  const m = /^v?(\d+)\.(\d+)/.exec(tag);
  if (!m) return false; // latest, main-…: today's images are distroless
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major < 3 || (major === 3 && minor <= 5);
}

export class ImageStore {
  private readonly built = new Map<string, LocalImage>();

  constructor(
    private readonly dir: string,
    private readonly sources: ImageSources,
  ) {}

  /** Known images for error messages. */
  get known(): string {
    return `grafana/loki:<tag>${this.sources.lokiBin ? "" : " (needs a Loki binary)"}, busybox, public.ecr.aws/docker/library/busybox`;
  }

  /** The local image for an image name, or why there is none (as a CannotPullContainerError reason). */
  resolve(image: string): LocalImage | { error: string } {
    const tag = lokiTag(image);
    if (tag !== undefined) {
      if (!this.sources.lokiBin) return { error: `CannotPullContainerError: ${image}: no Loki binary is configured for real tasks (--loki-bin, LOKI_BIN or loki on PATH)` };
      const shell = lokiHasShell(tag);
      return this.image(shell ? "loki-alpine" : "loki-distroless", shell, { source: this.sources.lokiBin, name: "loki" }, LOKI_UID, [["/usr/bin/loki"], ["-config.file=/etc/loki/local-config.yaml"]]);
    }
    if (isBusybox(image)) return this.image("busybox", true, undefined, 0, [[], ["sh"]]);
    return {
      error: `CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref ${image}: not found (real tasks know: ${this.known})`,
    };
  }

  private image(key: string, shell: boolean, binary: { source: string; name: string } | undefined, uid: number, [entryPoint, command]: [string[], string[]]): LocalImage {
    const existing = this.built.get(key);
    if (existing) return existing;
    const bin = join(this.dir, key, "bin");
    mkdirSync(bin, { recursive: true });
    chmodSync(bin, 0o755); // it is the container's /usr/bin: the image's user must reach it whatever our umask
    const binds: LocalImage["binds"] = [];
    if (shell) {
      // BusyBox answers to the name it is called by: one copy, a link per applet.
      const busybox = join(bin, "busybox");
      if (!existsSync(busybox)) copyFileSync(this.sources.busybox, busybox);
      const applets = execFileSync(this.sources.busybox, ["--list"], { encoding: "utf8" }).split("\n").filter((a) => a && a !== "busybox");
      for (const applet of applets) if (!existsSync(join(bin, applet))) symlinkSync("busybox", join(bin, applet));
    }
    if (binary) {
      const target = join(bin, binary.name);
      if (!existsSync(target)) writeFileSync(target, "", { mode: 0o755 });
      binds.push({ source: binary.source, target: `/usr/bin/${binary.name}` });
    }
    const image: LocalImage = { bin, binds, user: { uid, gid: uid }, entryPoint, command };
    this.built.set(key, image);
    return image;
  }
}
