// A validation finding: where it is and what would be valid. Errors block a
// spec; warnings are surfaced (as status conditions later) but do not.

export type PathSegment = string | number;

export interface Issue {
  /** Dotted path into the document, such as `spec.template.compactor.replicas`. */
  path: string;
  message: string;
  /** A stable CamelCase code for warnings that become status conditions. */
  reason?: string;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*$/;

export function formatPath(segments: readonly PathSegment[]): string {
  let out = "";
  for (const s of segments) {
    if (typeof s === "number") out += `[${s}]`;
    else if (IDENT.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out || "(document)";
}

export function formatIssue(i: Issue): string {
  return `${i.path}: ${i.message}`;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The known key closest to `key`, if it is close enough to be a likely typo. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = norm(k) === norm(key) ? 0 : editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  const tolerance = Math.max(2, Math.floor(key.length / 3));
  if (bestDistance <= tolerance) return best;
  // A truncated name ("replica" for "replicationFactor") is as likely a slip as a typo.
  return key.length >= 4 ? known.find((k) => k.toLowerCase().startsWith(key.toLowerCase())) : undefined;
}

/** "unknown field 'x' (did you mean 'y'?)", or the list of valid fields when none is close. */
export function unknownKeyMessage(key: string, known: readonly string[]): string {
  const near = nearestKey(key, known);
  if (near) return `unknown field '${key}' (did you mean '${near}'?)`;
  if (known.length === 0) return `unknown field '${key}'`;
  return `unknown field '${key}' (valid fields: ${[...known].sort().join(", ")})`;
}
