// A small IAM policy evaluator for the subset the operator's template uses:
// Allow and Deny statements; Action and Resource with * and ? wildcards;
// conditions StringEquals, StringLike, ArnEquals, ArnLike (and their
// IfExists forms, and ForAllValues:/ForAnyValue: for multivalued keys such as
// aws:TagKeys) and Null, each key ANDed and each value ORed. An explicit
// Deny wins; otherwise a request needs an Allow whose every condition holds,
// and a condition on a key the request does not carry fails (IAM policy
// evaluation logic, "Condition element" and "...IfExists"). Tests only.

import { evaluate as evaluateTemplate, loadTemplate, type EvalContext } from "./cfn.ts";

export interface Statement {
  Sid?: string;
  Effect: "Allow" | "Deny";
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

/** One authorization request: an action on a resource, with the condition keys it carries. */
export interface Request {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export interface Decision {
  allowed: boolean;
  /** The statements that allowed it (all of them, so unused statements can be found). */
  allowedBy: string[];
  deniedBy?: string;
}

const list = <T>(v: T | T[]): T[] => (Array.isArray(v) ? v : [v]);

/** IAM wildcard match: `*` any run of characters, `?` one; actions match case-insensitively. */
export function wildcard(pattern: string, value: string, ignoreCase = false): boolean {
  const re = new RegExp(`^${pattern.split("").map((c) => (c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.+^${}()|[\]\\]/g, "\\$&"))).join("")}$`, ignoreCase ? "i" : "");
  return re.test(value);
}

function conditionHolds(qualified: string, key: string, expected: string[], context: Record<string, string | string[]>): boolean {
  const present = key in context;
  const [set, operator] = qualified.includes(":") ? (qualified.split(":") as [string, string]) : [undefined, qualified];
  if (set !== undefined && set !== "ForAllValues" && set !== "ForAnyValue") throw new Error(`condition set operator ${set} is not modelled`);
  if (operator === "Null") return expected.some((e) => (e === "true") === !present);
  const ifExists = operator.endsWith("IfExists");
  const op = ifExists ? operator.slice(0, -"IfExists".length) : operator;
  // ForAllValues holds for a key the request lacks (every one of no values matches): IAM's documented trap.
  if (!present) return ifExists || set === "ForAllValues";
  const values = list(context[key]!);
  const match = (pattern: string, value: string) => {
    switch (op) {
      case "StringEquals":
      case "ArnEquals":
        return pattern === value;
      case "StringLike":
      case "ArnLike":
        return wildcard(pattern, value);
      default:
        throw new Error(`condition operator ${operator} is not modelled`);
    }
  };
  if (set === "ForAllValues") return values.every((v) => expected.some((e) => match(e, v)));
  return values.some((v) => expected.some((e) => match(e, v)));
}

function applies(s: Statement, r: Request): boolean {
  const context = r.context ?? {};
  return (
    list(s.Action).some((a) => wildcard(a, r.action, true)) &&
    list(s.Resource).some((p) => wildcard(p, r.resource)) &&
    Object.entries(s.Condition ?? {}).every(([operator, keys]) => Object.entries(keys).every(([key, expected]) => conditionHolds(operator, key, list(expected), context)))
  );
}

export function evaluate(statements: readonly Statement[], r: Request): Decision {
  const deny = statements.find((s) => s.Effect === "Deny" && applies(s, r));
  if (deny) return { allowed: false, allowedBy: [], deniedBy: deny.Sid ?? "(unnamed)" };
  const allowedBy = statements.filter((s) => s.Effect === "Allow" && applies(s, r)).map((s) => s.Sid ?? "(unnamed)");
  return { allowed: allowedBy.length > 0, allowedBy };
}

/**
 * The operator template's task-role statements with its intrinsics resolved (test/helpers/cfn.ts)
 * for these parameter values and lease bucket, in us-east-1, account 123456789012.
 */
export function operatorTaskRolePolicy(parameters: EvalContext["parameters"], leaseBucket: string): Statement[] {
  const template = loadTemplate("manifests/operator/cloudformation.yaml");
  return evaluateTemplate(template, template.Resources.TaskRole.Properties.Policies[0].PolicyDocument.Statement, {
    parameters,
    refs: { LeaseBucket: leaseBucket },
    attributes: {},
    pseudo: { "AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012" },
  }) as Statement[];
}
