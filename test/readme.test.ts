// The README's plan and status transcript is what the commands print: it is
// produced by running them (scripts/readme-transcript.ts), so it cannot go stale.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { demoTranscript, README, withTranscript } from "../scripts/readme-transcript.ts";

describe("README.md", () => {
  it("shows the plan and status transcript the commands print now (npm run readme:transcript rewrites it)", async () => {
    const readme = readFileSync(README, "utf8");
    expect(readme).toBe(withTranscript(readme, await demoTranscript()));
  });
});
