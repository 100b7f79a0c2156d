// Plain-text tables for people, as kubectl and flux print them: columns
// padded to their widest cell, two spaces apart, no trailing spaces.

/** One line per row (the header first), each ending in a newline. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ").trimEnd()}\n`).join("");
}
