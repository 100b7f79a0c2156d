// What the Loki image can do depends on its version: up to 3.5 it has a
// BusyBox shell and wget, 3.6.0-3.6.4 are distroless with no way to self-check
// (grafana/loki#20149), and 3.6.5 and 3.7 have `loki -health` (grafana/loki#20313,
// backported in #20590).

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

/**
 * Whether the image keeps the compactor's retention deletion markers in object
 * storage when asked (`compactor.deletion_marker_object_store_prefix`, Loki 3.7,
 * grafana/loki#19689), so a replaced compactor task loses none. An image
 * without a version is not assumed to: older Loki refuses an unknown key.
 */
export function keepsMarkersInObjectStore(image: string): boolean {
  const v = lokiVersionOf(image);
  return v !== undefined && (v[0] > 3 || (v[0] === 3 && v[1] >= 7));
}

/** Where those markers go in the bucket (Loki requires the trailing slash). */
export const DELETION_MARKER_PREFIX = "loki-deletion-markers/";

export interface HealthCheckPlan {
  /** ECS container health check command, or undefined when the image cannot run one. */
  command?: string[];
  warning?: string;
}

/**
 * What the container health check asks. ECS replaces a task whose check
 * fails, so the check is liveness: Loki's build info answers as soon as the
 * HTTP server runs, while /ready stays false for as long as an ingester
 * replays its WAL (which may outlast the 300 s start period) or a ring peer is
 * unhealthy. Readiness is the operator's to check (GET /ready of each ordinal).
 */
export const LIVENESS_URL = "http://localhost:3100/loki/api/v1/status/buildinfo";

const byWget = ["CMD-SHELL", `wget -q -O /dev/null ${LIVENESS_URL} || exit 1`];
const bySelfCheck = ["CMD", "/usr/bin/loki", "-health", `-health.url=${LIVENESS_URL}`];

export function healthCheckFor(image: string): HealthCheckPlan {
  const v = lokiVersionOf(image);
  if (!v) {
    return {
      command: bySelfCheck,
      warning: `cannot tell the Loki version of '${image}'; assuming 3.7 or newer and checking health with 'loki -health'`,
    };
  }
  const [major, minor, patch] = v;
  if (major < 3 || (major === 3 && minor <= 5)) return { command: byWget };
  if (major === 3 && minor === 6 && patch < 5) {
    return {
      warning:
        "Loki 3.6.0 to 3.6.4 images are distroless and have no health command (grafana/loki#20149): tasks run without an ECS health check; use 3.5, 3.6.5 or newer",
    };
  }
  return { command: bySelfCheck };
}
