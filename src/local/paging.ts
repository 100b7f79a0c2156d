// Offset pagination with opaque tokens, as the simulated APIs hand them out.
// Each API names the fields its own way (maxResults/nextToken, MaxResults/NextToken).

export interface Page<T> {
  items: T[];
  /** The token for the next page, when there is one. */
  next?: string;
}

/**
 * One page of `items`. `max` and `token` come straight from the request;
 * `invalid(message)` builds the API's own validation error.
 */
export function pageOf<T>(items: readonly T[], max: unknown, token: unknown, defaultMax: number, invalid: (message: string) => Error): Page<T> {
  const size = max === undefined || max === null ? defaultMax : Number(max);
  if (!Number.isInteger(size) || size < 1 || size > 100) throw invalid("the maximum number of results must be between 1 and 100");
  let start = 0;
  if (typeof token === "string") {
    start = Number(Buffer.from(token, "base64url").toString("utf8"));
    if (!Number.isInteger(start) || start < 0) throw invalid("the pagination token is not valid");
  }
  return {
    items: items.slice(start, start + size),
    ...(start + size < items.length ? { next: Buffer.from(String(start + size)).toString("base64url") } : {}),
  };
}
