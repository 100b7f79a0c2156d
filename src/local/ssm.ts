// SSM Parameter Store: the subset the operator and its users need, with the
// real limits and error names (shared/reference/aws-api-facts.md §4).
import { createHash } from "node:crypto";
import { AwsError } from "./errors.ts";

export interface ParameterVersion {
  version: number;
  value: string;
  type: ParameterType;
  tier: "Standard" | "Advanced";
  description?: string;
  /** SecureString only: the KMS key, `alias/aws/ssm` unless PutParameter named one. */
  keyId?: string;
  lastModified: number;
  labels: string[];
}

type ParameterType = "String" | "StringList" | "SecureString";

export interface ParameterState {
  name: string;
  versions: ParameterVersion[];
  tags: { Key: string; Value: string }[];
}

export interface SsmState {
  parameters: Record<string, ParameterState>;
}

type Input = Record<string, unknown>;

const MAX_VERSIONS = 100;
const STANDARD_LIMIT = 4096;
const ADVANCED_LIMIT = 8192;
/** Standard parameters per account and Region (the Parameter Store quotas; advanced: 100,000). */
const STANDARD_QUOTA = 10_000;
const MAX_HIERARCHY = 15;

const validation = (message: string) => new AwsError("ValidationException", message);
const notFound = (name: string) => new AwsError("ParameterNotFound", `Parameter ${name} not found.`);

function str(input: Input, key: string, required: true): string;
function str(input: Input, key: string, required?: false): string | undefined;
function str(input: Input, key: string, required = false): string | undefined {
  const v = input[key];
  if (v === undefined || v === null) {
    if (required) throw validation(`1 validation error detected: Value null at '${key}' failed to satisfy constraint: Member must not be null`);
    return undefined;
  }
  if (typeof v !== "string") throw validation(`${key} must be a string`);
  return v;
}

function int(input: Input, key: string, min: number, max: number, fallback: number): number {
  const v = input[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    // The message names the member in lowerCamelCase ('maxResults'), as AWS's request validation does.
    throw validation(
      `1 validation error detected: Value '${String(v)}' at '${key[0]!.toLowerCase()}${key.slice(1)}' failed to satisfy constraint: Member must have value ${
        typeof v === "number" && v > max ? `less than or equal to ${max}` : `greater than or equal to ${min}`
      }`,
    );
  }
  return v;
}

function checkName(name: string): void {
  if (name.length === 0 || name.length > 2048 || !/^[a-zA-Z0-9_.\-/]+$/.test(name)) {
    throw validation(`Parameter name: can't be prefixed with "aws" or "ssm" (case-insensitive) and must use only a-zA-Z0-9_.-/: ${name}`);
  }
  if (name.includes("/") && !name.startsWith("/")) throw validation("Parameter name must be a fully qualified name.");
  const bare = name.replace(/^\//, "").toLowerCase();
  if (bare.startsWith("aws") || bare.startsWith("ssm")) throw validation(`No access to reserved parameter name: ${name}.`);
  if (name.split("/").filter(Boolean).length > MAX_HIERARCHY) {
    throw new AwsError("HierarchyLevelLimitExceededException", `Parameter name ${name} has more than ${MAX_HIERARCHY} levels.`);
  }
}

/** A stand-in for KMS ciphertext: opaque, stable for a value, never the plaintext. */
function ciphertext(value: string, version: number): string {
  return `AQICAH${createHash("sha256").update(`${version}:${value}`).digest("base64")}`;
}

function encodeToken(data: object): string {
  return Buffer.from(JSON.stringify(data)).toString("base64url");
}

function decodeToken<T>(token: string | undefined, invalid = () => validation("The nextToken is not valid.")): T | undefined {
  if (token === undefined) return undefined;
  try {
    return JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as T;
  } catch {
    throw invalid();
  }
}

// ---- DescribeParameters filters ----
// The constraints are the SSM model's (botocore ssm/2014-11-06 service-2.json, ParameterStringFilter*,
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ParameterStringFilter.html):
// Key 1-132 chars matching tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType (Label not for DescribeParameters),
// Option 1-10 chars, Values 1-50 items of 1-1024 chars. Options: Equals | BeginsWith, Name also Contains,
// Path Recursive | OneLevel. The error wording is not in the model; it follows getmoto/moto
// (moto/ssm/models.py _validate_parameter_filters, written against real answers).

interface StringFilter {
  Key: string;
  Option: string;
  Values: string[];
}

const FILTER_KEY = /^(tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType)$/;
const PARAMETER_TYPES = ["String", "StringList", "SecureString"];
const TIERS = ["Standard", "Advanced", "Intelligent-Tiering"];

/** Model constraints first, all reported in one ValidationException as AWS's request validation does. */
function parameterFilters(input: Input): StringFilter[] {
  const raw = input.ParameterFilters;
  const legacy = input.Filters;
  if (raw !== undefined && raw !== null && legacy !== undefined && legacy !== null) {
    throw validation("You can use either Filters or ParameterFilters in a single request.");
  }
  // The deprecated Filters (Name | Type | KeyId): Name matched as a prefix (boto/boto3#1079), the others exactly.
  const given: Record<string, unknown>[] = Array.isArray(raw)
    ? (raw as Record<string, unknown>[])
    : Array.isArray(legacy)
      ? (legacy as Record<string, unknown>[]).map((f) => ({ ...f, Option: f.Key === "Name" ? "BeginsWith" : "Equals" }))
      : [];
  const errors: string[] = [];
  const at = (i: number, member: string) => `at 'parameterFilters.${i + 1}.member.${member}'`;
  given.forEach((f, i) => {
    const key = f.Key;
    if (typeof key !== "string") errors.push(`Value null ${at(i, "key")} failed to satisfy constraint: Member must not be null`);
    else if (key.length > 132) errors.push(`Value '${key}' ${at(i, "key")} failed to satisfy constraint: Member must have length less than or equal to 132`);
    else if (!FILTER_KEY.test(key)) {
      errors.push(`Value '${key}' ${at(i, "key")} failed to satisfy constraint: Member must satisfy regular expression pattern: tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType`);
    }
    if (typeof f.Option === "string" && (f.Option.length < 1 || f.Option.length > 10)) {
      errors.push(`Value '${f.Option}' ${at(i, "option")} failed to satisfy constraint: Member must have length ${f.Option.length < 1 ? "greater than or equal to 1" : "less than or equal to 10"}`);
    }
    const values = f.Values;
    if (Array.isArray(values)) {
      if (values.length < 1 || values.length > 50) {
        errors.push(`Value '[${values.join(", ")}]' ${at(i, "values")} failed to satisfy constraint: Member must have length ${values.length < 1 ? "greater than or equal to 1" : "less than or equal to 50"}`);
      }
      if (values.some((v) => typeof v !== "string" || v.length < 1 || v.length > 1024)) {
        errors.push(`Value '[${values.join(", ")}]' ${at(i, "values")} failed to satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1]`);
      }
    }
  });
  if (errors.length > 0) throw validation(`${errors.length} validation error${errors.length > 1 ? "s" : ""} detected: ${errors.join("; ")}`);

  const seen = new Set<string>();
  return given.map((f) => {
    const key = f.Key as string;
    const values = (f.Values as string[] | undefined) ?? [];
    const option = typeof f.Option === "string" ? f.Option : key === "Path" ? "OneLevel" : "Equals";
    if (key === "Label") {
      throw new AwsError("InvalidFilterKey", "The following filter key is not valid: Label. Valid filter keys include: [Path, Name, Type, KeyId, Tier].");
    }
    // A tag filter without values matches parameters that carry the tag at all.
    if (values.length === 0 && !key.startsWith("tag:")) {
      throw new AwsError("InvalidFilterValue", `The following filter values are missing : null for filter key ${key}.`);
    }
    if (seen.has(key)) {
      throw new AwsError("InvalidFilterKey", `The following filter is duplicated in the request: ${key}. A request can contain only one occurrence of a specific filter.`);
    }
    seen.add(key);
    if (key === "Path") {
      if (option !== "Recursive" && option !== "OneLevel") {
        throw new AwsError("InvalidFilterOption", `The following filter option is not valid: ${option}. Valid options include: [Recursive, OneLevel].`);
      }
      for (const v of values) {
        if (/^\/(aws|ssm)/i.test(v)) {
          throw validation('Filters for common parameters can\'t be prefixed with "aws" or "ssm" (case-insensitive). When using global parameters, please specify within a global namespace.');
        }
        if (!v.startsWith("/") || v.includes("//") || !/^[a-zA-Z0-9_.\-/]+$/.test(v)) {
          throw validation(
            'The parameter doesn\'t meet the parameter name requirements. The parameter name must begin with a forward slash "/". It can\'t be prefixed with "aws" or "ssm" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol "/". Valid example: /get/parameters2-/by1./path0_.',
          );
        }
      }
      return { Key: key, Option: option, Values: values };
    }
    const allowed = key === "Name" ? ["BeginsWith", "Contains", "Equals"] : ["BeginsWith", "Equals"];
    if (!allowed.includes(option)) {
      throw new AwsError("InvalidFilterOption", `The following filter option is not valid: ${option}. Valid options include: [${allowed.join(", ")}].`);
    }
    const valid = key === "Type" ? PARAMETER_TYPES : key === "Tier" ? TIERS : undefined;
    const bad = valid ? values.find((v) => !valid.includes(v)) : undefined;
    if (bad !== undefined) {
      throw new AwsError("InvalidFilterValue", `The following filter value is not valid: ${bad}. Valid values include: [${valid!.join(", ")}].`);
    }
    return { Key: key, Option: option, Values: values };
  });
}

/**
 * Whether a parameter name lies under a path: directly, or at any depth when recursive.
 * Parameters without a leading slash live at the root, "/".
 */
export function underPath(name: string, path: string, recursive: boolean): boolean {
  const full = `/${name.replace(/^\//, "")}`;
  const base = path === "/" ? "/" : `${path.replace(/\/$/, "")}/`;
  return full.startsWith(base) && (recursive || !full.slice(base.length).includes("/"));
}

/** Whether a parameter passes one filter: any of its values, under its option. */
function passes(f: StringFilter, param: ParameterState, v: ParameterVersion): boolean {
  if (f.Key === "Path") return f.Values.some((value) => underPath(param.name, value, f.Option === "Recursive"));
  const subject = f.Key.startsWith("tag:")
    ? param.tags.find((t) => t.Key === f.Key.slice(4))?.Value
    : { Name: param.name, Type: v.type, KeyId: v.keyId, Tier: v.tier, DataType: "text" }[f.Key];
  if (subject === undefined) return false;
  if (f.Values.length === 0) return true;
  return f.Values.some((value) => (f.Option === "BeginsWith" ? subject.startsWith(value) : f.Option === "Contains" ? subject.includes(value) : subject === value));
}

export class SsmService {
  constructor(
    readonly state: SsmState,
    private readonly region: string,
    private readonly account: string,
    private readonly now: () => number,
  ) {}

  handle(action: string, input: Input): unknown {
    switch (action) {
      case "PutParameter":
        return this.putParameter(input);
      case "GetParameter":
        return { Parameter: this.getParameter(str(input, "Name", true), input.WithDecryption === true) };
      case "GetParameters":
        return this.getParameters(input);
      case "GetParametersByPath":
        return this.getParametersByPath(input);
      case "DescribeParameters":
        return this.describeParameters(input);
      case "DeleteParameter":
        this.deleteParameter(str(input, "Name", true));
        return {};
      case "DeleteParameters":
        return this.deleteParameters(input);
      case "GetParameterHistory":
        return this.getParameterHistory(input);
      case "LabelParameterVersion":
        return this.labelParameterVersion(input);
      default:
        throw new AwsError("InvalidAction", `The action ${action} is not valid for this web service.`);
    }
  }

  private arn(name: string): string {
    return `arn:aws:ssm:${this.region}:${this.account}:parameter${name.startsWith("/") ? "" : "/"}${name}`;
  }

  private putParameter(input: Input) {
    const name = str(input, "Name", true);
    checkName(name);
    const value = str(input, "Value", true);
    const overwrite = input.Overwrite === true;
    const tags = (input.Tags as { Key: string; Value: string }[] | undefined) ?? [];
    if (overwrite && tags.length > 0) {
      throw validation(
        "Invalid request: tags and overwrite can't be used together. To create a parameter with tags, please remove overwrite flag. To update tags for an existing parameter, please use AddTagsToResource or RemoveTagsFromResource.",
      );
    }
    const existing = this.state.parameters[name];
    if (existing && !overwrite) {
      throw new AwsError("ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.");
    }
    const type = str(input, "Type") as ParameterType | undefined;
    if (type !== undefined && !PARAMETER_TYPES.includes(type)) {
      throw validation(`1 validation error detected: Value '${type}' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]`);
    }
    if (!existing && type === undefined) throw validation("A parameter type is required when you create a parameter.");
    const latest = existing?.versions.at(-1);
    const tier = this.tier(name, input, latest?.tier, Buffer.byteLength(value, "utf8"));
    const param = existing ?? { name, versions: [], tags };
    if (param.versions.length >= MAX_VERSIONS) {
      const oldest = param.versions[0]!;
      if (oldest.labels.length > 0) {
        throw new AwsError(
          "ParameterMaxVersionLimitExceeded",
          `You attempted to create a new version of ${name} by calling the PutParameter API with the overwrite flag. Version ${oldest.version}, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.`,
        );
      }
      param.versions.shift();
    }
    const version = (latest?.version ?? 0) + 1;
    param.versions.push({
      version,
      value,
      type: type ?? latest!.type,
      tier,
      description: str(input, "Description") ?? latest?.description,
      ...((type ?? latest!.type) === "SecureString" ? { keyId: str(input, "KeyId") ?? latest?.keyId ?? "alias/aws/ssm" } : {}),
      lastModified: this.now(),
      labels: [],
    });
    this.state.parameters[name] = param;
    return { Version: version, Tier: tier };
  }

  /**
   * The tier a PutParameter lands in, or the error SSM answers (the PutParameter API
   * reference, Tier; the user guide's parameter-store-advanced-parameters.html and
   * ps-default-tier.html):
   * - `Standard`: up to 4 KB, no parameter policies, 10,000 per account and Region.
   * - `Advanced`: up to 8 KB. A standard parameter can be upgraded at any time; an
   *   advanced one can never go back to standard (delete and recreate it), so an explicit
   *   `Standard` on it is a ValidationException.
   * - `Intelligent-Tiering`: standard when the request fits it (value within 4 KB, no
   *   policies, the standard quota not reached), advanced otherwise; an advanced
   *   parameter stays advanced, so it never asks for a downgrade.
   * - omitted: the account's default tier setting, Standard unless changed (this model
   *   never changes it); an existing parameter keeps its tier.
   * Error wording as real users quote it: the downgrade from a CloudFormation
   * stack event (Error Code: ValidationException), an older form without the last
   * sentence in hashicorp/terraform-provider-aws (aws_ssm_parameter CustomizeDiff);
   * the 4 KB one and ParameterLimitExceeded from hashicorp/terraform-provider-aws#18521
   * and aws/aws-sdk-net#3157.
   */
  private tier(name: string, input: Input, current: "Standard" | "Advanced" | undefined, bytes: number): "Standard" | "Advanced" {
    const requested = str(input, "Tier");
    if (requested !== undefined && !TIERS.includes(requested)) {
      throw validation(`1 validation error detected: Value '${requested}' at 'tier' failed to satisfy constraint: Member must satisfy enum value set: [Standard, Advanced, Intelligent-Tiering]`);
    }
    const { tier, withPolicies, quotaReached } = this.tierDecision(input, current, bytes);
    if (requested === "Standard" && current === "Advanced") {
      throw validation(
        "This parameter uses the advanced-parameter tier. You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier. If necessary, you can delete the advanced parameter and recreate it as a standard parameter. Be aware that standard parameters have a value limit of 4096 characters.",
      );
    }
    if (bytes > ADVANCED_LIMIT) {
      throw validation(`1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length less than or equal to ${ADVANCED_LIMIT}`);
    }
    if (tier === "Standard" && bytes > STANDARD_LIMIT) {
      throw validation(
        `Standard tier parameters support a maximum parameter value of ${STANDARD_LIMIT} characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier. For more information, see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html`,
      );
    }
    if (tier === "Standard" && withPolicies) {
      // The documented rule ("standard parameters do not support parameter policies");
      // the wording of the answer is not documented, this one is the rule's.
      throw validation(`Parameter ${name} uses the standard-parameter tier, which doesn't support parameter policies. Use the advanced-parameter tier or Intelligent-Tiering.`);
    }
    if (tier === "Standard" && quotaReached()) {
      throw new AwsError(
        "ParameterLimitExceeded",
        `You have reached the maximum number of standard parameters for this AWS account and Region (${STANDARD_QUOTA}). To add more parameters, either delete existing parameters or upgrade to the advanced-parameter tier (charges apply).`,
      );
    }
    return tier;
  }

  /** The tier a PutParameter of `input` asks for, before tier() checks whether SSM accepts it. */
  private tierDecision(input: Input, current: "Standard" | "Advanced" | undefined, bytes: number) {
    const requested = str(input, "Tier");
    const policies = str(input, "Policies")?.trim();
    const withPolicies = policies !== undefined && policies !== "" && policies !== "[]";
    let reached: boolean | undefined;
    const quotaReached = () =>
      (reached ??= current === undefined && Object.values(this.state.parameters).filter((p) => p.versions.at(-1)?.tier === "Standard").length >= STANDARD_QUOTA);
    const tier: "Standard" | "Advanced" =
      requested === "Advanced"
        ? "Advanced"
        : requested === "Intelligent-Tiering"
          ? current === "Advanced" || bytes > STANDARD_LIMIT || withPolicies || quotaReached()
            ? "Advanced"
            : "Standard"
          : requested === "Standard"
            ? "Standard"
            : (current ?? "Standard");
    return { tier, withPolicies, quotaReached };
  }

  /** The tier a PutParameter would land in, were SSM to accept it: for the KMS operation it implies. */
  tierOf(input: Input): "Standard" | "Advanced" {
    const current = this.state.parameters[str(input, "Name") ?? ""]?.versions.at(-1)?.tier;
    return this.tierDecision(input, current, Buffer.byteLength(str(input, "Value") ?? "", "utf8")).tier;
  }

  private resolve(selectorName: string): { param: ParameterState; version: ParameterVersion; selector?: string } {
    const m = /^(.*?)(?::([^:/]+))?$/.exec(selectorName)!;
    const name = m[1]!;
    const selector = m[2];
    const param = this.state.parameters[name];
    if (!param) throw notFound(selectorName);
    if (selector === undefined) return { param, version: param.versions.at(-1)! };
    const version = /^\d+$/.test(selector)
      ? param.versions.find((v) => v.version === Number(selector))
      : param.versions.find((v) => v.labels.includes(selector));
    if (!version) {
      throw new AwsError("ParameterVersionNotFound", `Systems Manager could not find version ${selector} of ${name}. Verify the version and try again.`);
    }
    return { param, version, selector: `:${selector}` };
  }

  private describe(param: ParameterState, v: ParameterVersion, decrypt: boolean, selector?: string) {
    return {
      Name: param.name,
      Type: v.type,
      Value: v.type === "SecureString" && !decrypt ? ciphertext(v.value, v.version) : v.value,
      Version: v.version,
      LastModifiedDate: v.lastModified,
      ARN: this.arn(param.name),
      DataType: "text",
      ...(selector ? { Selector: selector } : {}),
    };
  }

  private getParameter(name: string, decrypt: boolean) {
    const { param, version, selector } = this.resolve(name);
    return this.describe(param, version, decrypt, selector);
  }

  private getParameters(input: Input) {
    const names = input.Names;
    if (!Array.isArray(names) || names.length < 1 || names.length > 10) {
      throw validation("1 validation error detected: Value at 'names' failed to satisfy constraint: Member must have length less than or equal to 10 and greater than or equal to 1");
    }
    const found: ReturnType<SsmService["describe"]>[] = [];
    const invalid: string[] = [];
    for (const n of names as string[]) {
      try {
        found.push(this.getParameter(n, input.WithDecryption === true));
      } catch (e) {
        if (e instanceof AwsError && (e.code === "ParameterNotFound" || e.code === "ParameterVersionNotFound")) invalid.push(n);
        else throw e;
      }
    }
    found.sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
    return { Parameters: found, InvalidParameters: invalid };
  }

  /**
   * Like AWS, each page scans a window of the account's parameters and returns
   * those under the path, so a page can be short or empty and still carry a NextToken.
   */
  private getParametersByPath(input: Input) {
    const path = str(input, "Path", true);
    if (!path.startsWith("/")) throw validation("The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\".");
    const max = int(input, "MaxResults", 1, 10, 10);
    const recursive = input.Recursive === true;
    const decrypt = input.WithDecryption === true;
    const token = decodeToken<{ path: string; at: number }>(str(input, "NextToken"));
    if (token && token.path !== path) throw validation("The nextToken is not valid.");
    const names = Object.keys(this.state.parameters).sort();
    const start = token?.at ?? 0;
    const window = names.slice(start, start + max);
    const page = window.filter((n) => underPath(n, path, recursive));
    const next = start + max;
    return {
      Parameters: page.map((n) => {
        const p = this.state.parameters[n]!;
        return this.describe(p, p.versions.at(-1)!, decrypt);
      }),
      ...(next < names.length ? { NextToken: encodeToken({ path, at: next }) } : {}),
    };
  }

  /**
   * ParameterMetadata for the parameters that pass every filter, by name. AWS may answer short or
   * empty pages before the end; these pages are full, and NextToken appears exactly when more
   * parameters match. MaxResults is 1-50 (SSM model); AWS documents no default, it answers 10
   * (seek-oss/aec#332, aquasecurity/cloudsploit#147), and so does this.
   */
  private describeParameters(input: Input) {
    const filters = parameterFilters(input);
    const max = int(input, "MaxResults", 1, 50, 10);
    // InvalidNextToken: "The specified token isn't valid." (SSM model, DescribeParameters errors).
    const token = decodeToken<{ after: string }>(str(input, "NextToken"), () => new AwsError("InvalidNextToken", "The specified token isn't valid."));
    // Shared: nothing is shared with the local account.
    if (input.Shared === true) return { Parameters: [] };
    const matching = Object.keys(this.state.parameters)
      .sort()
      .filter((n) => token === undefined || n > token.after)
      .filter((n) => {
        const p = this.state.parameters[n]!;
        return filters.every((f) => passes(f, p, p.versions.at(-1)!));
      });
    const page = matching.slice(0, max);
    return {
      Parameters: page.map((n) => {
        const p = this.state.parameters[n]!;
        const v = p.versions.at(-1)!;
        return {
          Name: p.name,
          ARN: this.arn(p.name),
          Type: v.type,
          ...(v.keyId ? { KeyId: v.keyId } : {}),
          LastModifiedDate: v.lastModified,
          LastModifiedUser: `arn:aws:iam::${this.account}:root`,
          ...(v.description ? { Description: v.description } : {}),
          Version: v.version,
          Tier: v.tier,
          Policies: [],
          DataType: "text",
        };
      }),
      ...(matching.length > max ? { NextToken: encodeToken({ after: page.at(-1)! }) } : {}),
    };
  }

  private deleteParameter(name: string): void {
    if (!this.state.parameters[name]) throw notFound(name);
    delete this.state.parameters[name];
  }

  private deleteParameters(input: Input) {
    const names = (input.Names as string[] | undefined) ?? [];
    const deleted = names.filter((n) => this.state.parameters[n]);
    for (const n of deleted) delete this.state.parameters[n];
    return { DeletedParameters: deleted, InvalidParameters: names.filter((n) => !deleted.includes(n)) };
  }

  private getParameterHistory(input: Input) {
    const name = str(input, "Name", true);
    const param = this.state.parameters[name];
    if (!param) throw notFound(name);
    const max = int(input, "MaxResults", 1, 50, 50);
    const start = decodeToken<{ at: number }>(str(input, "NextToken"))?.at ?? 0;
    const page = param.versions.slice(start, start + max);
    const decrypt = input.WithDecryption === true;
    return {
      Parameters: page.map((v) => ({
        ...this.describe(param, v, decrypt),
        ARN: undefined,
        Labels: v.labels,
        Tier: v.tier,
        ...(v.description ? { Description: v.description } : {}),
      })),
      ...(start + max < param.versions.length ? { NextToken: encodeToken({ at: start + max }) } : {}),
    };
  }

  private labelParameterVersion(input: Input) {
    const name = str(input, "Name", true);
    const param = this.state.parameters[name];
    if (!param) throw notFound(name);
    const wanted = input.ParameterVersion;
    const version = wanted === undefined ? param.versions.at(-1)! : param.versions.find((v) => v.version === wanted);
    if (!version) throw new AwsError("ParameterVersionNotFound", `Systems Manager could not find version ${String(wanted)} of ${name}.`);
    const labels = (input.Labels as string[] | undefined) ?? [];
    const invalid = labels.filter((l) => l.length > 100 || /^\d/.test(l) || /^(aws|ssm)/i.test(l) || !/^[a-zA-Z0-9_.-]+$/.test(l));
    const valid = labels.filter((l) => !invalid.includes(l));
    if (new Set([...version.labels, ...valid]).size > 10) {
      throw new AwsError("ParameterVersionLabelLimitExceeded", "A parameter version can have maximum 10 labels.");
    }
    for (const v of param.versions) v.labels = v.labels.filter((l) => !valid.includes(l));
    version.labels = [...new Set([...version.labels, ...valid])];
    return { InvalidLabels: invalid, ParameterVersion: version.version };
  }
}
