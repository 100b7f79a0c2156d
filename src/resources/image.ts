// What the Loki image can do depends on its version: up to 3.5 it is Alpine
// based (wget exists), 3.6 is distroless with no way to self-check
// (grafana/loki#20149), and 3.7 added `loki -health` (grafana/loki#20313).

/** The uid (and gid) the grafana/loki image runs as (its Dockerfile's USER). */
export const LOKI_USER = 10001;

export type LokiVersion = readonly [major: number, minor: number, patch: number];

/** The semantic version in an image tag such as grafana/loki:3.5.0, if there is one. */
export function lokiVersionOf(image: string): LokiVersion | undefined {
  const withoutDigest = image.split("@")[0] ?? image;
  const lastSlash = withoutDigest.lastIndexOf("/");
  const colon = withoutDigest.indexOf(":", lastSlash + 1);
  if (colon < 0) return undefined;
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(withoutDigest.slice(colon + 1));
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

export interface HealthCheckPlan {
  /** ECS container health check command, or undefined when the image cannot run one. */
  command?: string[];
  warning?: string;
}

export function healthCheckFor(image: string): HealthCheckPlan {
  const v = lokiVersionOf(image);
  const readyByWget = ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:3100/ready || exit 1"];
  const selfCheck = ["CMD", "/usr/bin/loki", "-health"];
  if (!v) {
    return {
      command: selfCheck,
      warning: `cannot tell the Loki version of '${image}'; assuming 3.7 or newer and checking health with 'loki -health'`,
    };
  }
  const [major, minor] = v;
  if (major < 3 || (major === 3 && minor <= 5)) return { command: readyByWget };
  if (major === 3 && minor === 6) {
    return {
      warning:
        "Loki 3.6 images are distroless and have no health command (grafana/loki#20149): tasks run without an ECS health check; use 3.5 or 3.7+",
    };
  }
  return { command: selfCheck };
}
