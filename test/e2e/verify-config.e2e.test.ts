// Every Loki config the operator renders, for every example stack, is one the
// real Loki binary accepts: `loki -verify-config` parses it and runs Loki's own
// validation without starting anything.
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { render } from "../../src/resources/render.ts";
import { findLokiBinary } from "../../src/local/tasks/runner.ts";
import { exampleDoc, resolved } from "../helpers/specs.ts";

const loki = findLokiBinary();
if (!loki) console.warn("verify-config skipped: no Loki binary (set LOKI_BIN or put loki on PATH)");

const examples = readdirSync(new URL("../../manifests/examples", import.meta.url)).map((f) => f.replace(/\.yaml$/, ""));
const dir = mkdtempSync(join(tmpdir(), "lokistack-verify-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!loki)("rendered Loki configs on a real Loki", () => {
  it.each(examples)("%s: every unit's config passes loki -verify-config", async (name) => {
    const { lokiConfig } = render(resolved(exampleDoc(name)));
    const refused: string[] = [];
    for (const [unit, yaml] of Object.entries(lokiConfig)) {
      const file = join(dir, `${unit}.yaml`);
      writeFileSync(file, yaml);
      try {
        await promisify(execFile)(loki!, [`-config.file=${file}`, "-config.expand-env=true", "-verify-config"], { timeout: 60_000 });
      } catch (e) {
        refused.push(`${unit}: ${String((e as { stderr?: string }).stderr ?? e).trim().split("\n").slice(-3).join(" | ")}`);
      }
    }
    expect(Object.keys(lokiConfig).length).toBeGreaterThan(0);
    expect(refused).toEqual([]);
  });
});
