import { describe, expect, it } from "vitest";
import { WriteLimiter } from "../src/aws/write-limiter.ts";

describe("the shared write budget", () => {
  it("spends the burst at once, then waits for the refill", async () => {
    let now = 0;
    const waits: number[] = [];
    const limiter = new WriteLimiter({}, () => now, async (ms) => {
      waits.push(ms);
      now += ms;
    });
    for (let i = 0; i < 10; i++) await limiter.acquire("service");
    expect(waits).toEqual([]);
    await limiter.acquire("service");
    // 5 UpdateService per second: the 11th waits 200 ms.
    expect(waits).toEqual([200]);
    for (let i = 0; i < 5; i++) await limiter.acquire("taskDefinition");
    await limiter.acquire("taskDefinition");
    // RegisterTaskDefinition refills at 1 per second.
    expect(waits.at(-1)).toBe(1000);
  });
});
