// The simulator keeps its own facts from the AWS documentation: nothing under
// src/local imports the operator's code, so a wrong table or assumption in the
// product cannot agree with the same mistake in the simulator. Of the packages,
// only a YAML parser: simulated Loki reads its config as Loki would.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const local = fileURLToPath(new URL("../../src/local", import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

describe("src/local", () => {
  it("imports only itself, Node's built-in modules and a YAML parser", () => {
    const files = sources(local);
    const outside: string[] = [];
    for (const file of files) {
      for (const [, spec] of readFileSync(file, "utf8").matchAll(/^\s*(?:import|export)\b[^;]*?from\s+"([^"]+)"/gm)) {
        const ok = spec!.startsWith("node:") || spec === "yaml" || (spec!.startsWith(".") && !relative(local, resolve(dirname(file), spec!)).startsWith(".."));
        if (!ok) outside.push(`${relative(local, file)} imports ${spec}`);
      }
    }
    expect(files.length).toBeGreaterThan(5);
    expect(outside).toEqual([]);
  });
});
