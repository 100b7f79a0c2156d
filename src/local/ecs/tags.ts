import { AwsError, invalidParameter } from "../errors.ts";
import type { Tag } from "./model.ts";

const MAX_TAGS = 50;

/** ECS's tag rules: at most 50 user tags, keys 1-128, values 0-256, `aws:` reserved. */
export function checkTags(tags: Tag[], existing: Tag[] = []): void {
  for (const t of tags) {
    if (typeof t.key !== "string" || t.key.length < 1 || t.key.length > 128) throw invalidParameter("Tag keys must be between 1 and 128 characters.");
    if (typeof t.value !== "string" || t.value.length > 256) throw invalidParameter("Tag values must be between 0 and 256 characters.");
    if (t.key.toLowerCase().startsWith("aws:")) throw invalidParameter("Tag keys beginning with 'aws:' are reserved for AWS use.");
  }
  const keys = new Set([...existing.map((t) => t.key), ...tags.map((t) => t.key)].filter((k) => !k.startsWith("aws:")));
  if (keys.size > MAX_TAGS) throw new AwsError("InvalidParameterException", `The number of tags exceeds the limit of ${MAX_TAGS}.`);
}

export function mergeTags(existing: Tag[], added: Tag[]): Tag[] {
  const out = existing.filter((t) => !added.some((a) => a.key === t.key));
  return [...out, ...added];
}
