// Valid Fargate task sizes, from the RegisterTaskDefinition `memory` documentation
// (see shared/reference/aws-api-facts.md §3). cpu in CPU units, memory in MiB.

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

export const FARGATE_SIZES: ReadonlyMap<number, readonly number[]> = new Map([
  [256, [512, 1024, 2048]],
  [512, [1024, 2048, 3072, 4096]],
  [1024, range(2048, 8192, 1024)],
  [2048, range(4096, 16384, 1024)],
  [4096, range(8192, 30720, 1024)],
  [8192, range(16384, 61440, 4096)],
  [16384, range(32768, 122880, 8192)],
]);

export const FARGATE_CPUS = [...FARGATE_SIZES.keys()];

export function isValidFargateSize(cpu: number, memory: number): boolean {
  return FARGATE_SIZES.get(cpu)?.includes(memory) ?? false;
}

/** A short description of the memory values valid for `cpu`, for error messages. */
export function describeFargateMemory(cpu: number): string {
  const mem = FARGATE_SIZES.get(cpu);
  if (!mem) return `cpu must be one of ${FARGATE_CPUS.join(", ")}`;
  if (mem.length <= 4) return `memory for cpu ${cpu} must be one of ${mem.join(", ")}`;
  const step = (mem[1] ?? 0) - (mem[0] ?? 0);
  return `memory for cpu ${cpu} must be ${mem[0]}..${mem[mem.length - 1]} in steps of ${step}`;
}
