// A small structural checker for CloudFormation templates against the
// CloudFormation resource specification (@aws-cdk/cfnspec, spec/specification.json),
// and a small evaluator of intrinsic functions for tests. Tests only.
//
// The checker reports every problem it finds, each as "<path>: <message>":
// - a resource Type the specification does not know;
// - a property its type does not have (into property types, lists and maps of them);
// - a Required property that is missing (a value given through an intrinsic counts);
// - a Ref to no parameter, resource or pseudo parameter (in Conditions: no parameter);
// - a Fn::GetAtt of no resource, or of an attribute its type does not list;
// - a ${Name} in Fn::Sub that resolves to nothing of these, nor to a key of its variable map;
// - a condition named by Fn::If, Condition or a resource's Condition that does not exist;
// - a DependsOn to no resource; a parameter that nothing uses.
// It does not check primitive value types, allowed values or IAM policy contents (cfn-lint does).
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export type Template = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- free-form template documents

interface PropertySpec {
  Required?: boolean;
  PrimitiveType?: string;
  Type?: string;
  ItemType?: string;
  PrimitiveItemType?: string;
}
interface TypeSpec {
  Properties?: Record<string, PropertySpec>;
  Attributes?: Record<string, unknown>;
}
export interface CfnSpec {
  ResourceSpecificationVersion: string;
  ResourceTypes: Record<string, TypeSpec>;
  PropertyTypes: Record<string, TypeSpec & PropertySpec>;
}

const PSEUDO_PARAMETERS = [
  "AWS::AccountId",
  "AWS::NotificationARNs",
  "AWS::NoValue",
  "AWS::Partition",
  "AWS::Region",
  "AWS::StackId",
  "AWS::StackName",
  "AWS::URLSuffix",
];

const RESOURCE_KEYS = new Set(["Type", "Properties", "Condition", "DependsOn", "DeletionPolicy", "UpdateReplacePolicy", "Metadata", "CreationPolicy", "UpdatePolicy"]);
/** Intrinsic functions that may stand for a property value. */
const VALUE_INTRINSICS = new Set(["Ref", "Fn::GetAtt", "Fn::Sub", "Fn::Join", "Fn::Select", "Fn::Split", "Fn::If", "Fn::FindInMap", "Fn::GetAZs", "Fn::ImportValue", "Fn::Base64", "Fn::Cidr", "Fn::Length", "Fn::ToJsonString"]);

let cachedSpec: CfnSpec | undefined;
export function loadSpec(): CfnSpec {
  cachedSpec ??= JSON.parse(readFileSync(new URL("../../node_modules/@aws-cdk/cfnspec/spec/specification.json", import.meta.url), "utf8")) as CfnSpec;
  return cachedSpec;
}

/** A template of this repository, parsed as plain YAML (long-form intrinsics only). */
export function loadTemplate(relative: string): Template {
  return parse(readFileSync(new URL(`../../${relative}`, import.meta.url), "utf8")) as Template;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** The intrinsic function a value is written with, if it is one object with one such key. */
function intrinsic(v: unknown, names: Set<string>): string | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  return keys.length === 1 && names.has(keys[0]!) ? keys[0] : undefined;
}

const isNoValue = (v: unknown) => isObject(v) && v.Ref === "AWS::NoValue";

export function checkTemplate(template: Template, spec: CfnSpec = loadSpec()): string[] {
  const problems: string[] = [];
  const report = (path: string, message: string): void => {
    problems.push(`${path}: ${message}`);
  };
  const parameters: Record<string, unknown> = isObject(template.Parameters) ? template.Parameters : {};
  const resources: Record<string, Record<string, unknown>> = isObject(template.Resources) ? (template.Resources as Record<string, Record<string, unknown>>) : {};
  const conditions: Record<string, unknown> = isObject(template.Conditions) ? template.Conditions : {};
  const used = new Set<string>();

  // ---- structure: types and properties ----
  const propertyType = (resourceType: string, name: string) => spec.PropertyTypes[`${resourceType}.${name}`] ?? spec.PropertyTypes[name];

  function checkObject(value: unknown, type: TypeSpec, resourceType: string, path: string): void {
    if (intrinsic(value, VALUE_INTRINSICS)) return checkIntrinsicBranches(value, (b, p) => checkObject(b, type, resourceType, p), path);
    if (!isObject(value)) return report(path, "expected an object");
    const props = type.Properties ?? {};
    for (const [key, v] of Object.entries(value)) {
      const prop = props[key];
      if (!prop) report(`${path}.${key}`, "unknown property");
      else checkValue(v, prop, resourceType, `${path}.${key}`);
    }
    for (const [key, prop] of Object.entries(props)) {
      if (prop.Required && !(key in value)) report(path, `missing required property ${key}`);
    }
  }

  /** A value whose shape the specification gives as PrimitiveType, Type (property type, List or Map) and item types. */
  function checkValue(value: unknown, prop: PropertySpec, resourceType: string, path: string): void {
    if (intrinsic(value, VALUE_INTRINSICS)) return checkIntrinsicBranches(value, (b, p) => checkValue(b, prop, resourceType, p), path);
    if (prop.PrimitiveType) {
      if (prop.PrimitiveType !== "Json" && (isObject(value) || Array.isArray(value))) report(path, `expected a ${prop.PrimitiveType}`);
      return;
    }
    if (prop.Type === "List" || prop.Type === "Map") {
      const entries = prop.Type === "List" ? (Array.isArray(value) ? value.map((v, i) => [`${path}[${i}]`, v] as const) : undefined) : isObject(value) ? Object.entries(value).map(([k, v]) => [`${path}.${k}`, v] as const) : undefined;
      if (!entries) return report(path, `expected a ${prop.Type === "List" ? "list" : "map"}`);
      for (const [p, item] of entries) checkItem(item, prop, resourceType, p);
      return;
    }
    const type = prop.Type ? propertyType(resourceType, prop.Type) : undefined;
    if (!type) return report(path, `the specification has no property type ${prop.Type ?? "(none)"} for ${resourceType}`);
    if (type.Properties) checkObject(value, type, resourceType, path);
    else checkValue(value, type, resourceType, path); // a property type that is itself a primitive, list or map
  }

  function checkItem(item: unknown, prop: PropertySpec, resourceType: string, path: string): void {
    if (prop.PrimitiveItemType) return checkValue(item, { PrimitiveType: prop.PrimitiveItemType }, resourceType, path);
    if (prop.ItemType) return checkValue(item, { Type: prop.ItemType }, resourceType, path);
  }

  /** Fn::If gives one of two values of the expected shape; other intrinsics stand for a value that is not checked here. */
  function checkIntrinsicBranches(value: unknown, check: (branch: unknown, path: string) => void, path: string): void {
    const args = (value as Record<string, unknown>)["Fn::If"];
    if (!Array.isArray(args)) return;
    args.slice(1, 3).forEach((branch, i) => {
      if (!isNoValue(branch)) check(branch, `${path}.Fn::If[${i + 1}]`);
    });
  }

  for (const [name, resource] of Object.entries(resources)) {
    const path = `Resources.${name}`;
    if (!isObject(resource)) {
      report(path, "expected an object");
      continue;
    }
    for (const key of Object.keys(resource)) if (!RESOURCE_KEYS.has(key)) report(`${path}.${key}`, "unknown resource attribute");
    const type = resource.Type;
    if (typeof type !== "string") {
      report(path, "missing Type");
      continue;
    }
    if (type.startsWith("Custom::") || type === "AWS::CloudFormation::CustomResource") continue;
    const typeSpec = spec.ResourceTypes[type];
    if (!typeSpec) {
      report(`${path}.Type`, `unknown resource type ${type}`);
      continue;
    }
    checkObject(resource.Properties ?? {}, typeSpec, type, `${path}.Properties`);
  }

  // ---- references: Ref, Fn::GetAtt, Fn::Sub, conditions ----
  const attributesOf = (resource: string): string[] | "any" | undefined => {
    const type = resources[resource]?.Type;
    if (typeof type !== "string") return undefined;
    if (type.startsWith("Custom::") || type === "AWS::CloudFormation::CustomResource") return "any";
    return Object.keys(spec.ResourceTypes[type]?.Attributes ?? {});
  };
  const checkAttribute = (resource: string, attribute: string, path: string, how: string) => {
    const attributes = attributesOf(resource);
    if (!(resource in resources)) report(path, `${how} names no resource '${resource}'`);
    else if (attributes !== "any" && !attributes?.includes(attribute)) {
      report(path, `${how} names attribute '${attribute}', which ${resource} (${String(resources[resource]!.Type)}) does not have`);
    }
  };
  const checkName = (name: string, path: string, how: string, inConditions: boolean) => {
    used.add(name);
    if (name in parameters || PSEUDO_PARAMETERS.includes(name)) return;
    if (name in resources) {
      if (inConditions) report(path, `${how} '${name}' names a resource; conditions may only use parameters`);
      return;
    }
    report(path, `${how} '${name}' names no parameter, resource or pseudo parameter`);
  };
  const checkConditionName = (name: unknown, path: string, how: string) => {
    if (typeof name !== "string" || !(name in conditions)) report(path, `${how} names no condition '${String(name)}'`);
  };

  function walk(node: unknown, path: string, inConditions: boolean): void {
    if (Array.isArray(node)) return node.forEach((v, i) => walk(v, `${path}[${i}]`, inConditions));
    if (!isObject(node)) return;
    const keys = Object.keys(node);
    const only = keys.length === 1 ? keys[0] : undefined;
    const arg = only ? node[only] : undefined;
    if (only === "Ref") {
      if (typeof arg === "string") checkName(arg, path, "Ref", inConditions);
      else report(path, "Ref takes a name");
      return;
    }
    if (only === "Fn::GetAtt") {
      const [resource, attribute] = typeof arg === "string" ? [arg.slice(0, arg.indexOf(".")), arg.slice(arg.indexOf(".") + 1)] : Array.isArray(arg) ? arg : [];
      if (typeof resource === "string" && typeof attribute === "string") checkAttribute(resource, attribute, path, "Fn::GetAtt");
      else if (typeof resource !== "string") report(path, "Fn::GetAtt takes [resource, attribute]");
      if (Array.isArray(arg)) walk(arg[1], `${path}.Fn::GetAtt[1]`, inConditions);
      return;
    }
    if (only === "Fn::Sub") {
      const [text, variables] = Array.isArray(arg) ? [arg[0], arg[1]] : [arg, {}];
      if (typeof text !== "string") return report(path, "Fn::Sub takes a string");
      const local = isObject(variables) ? variables : {};
      for (const match of text.matchAll(/\$\{([^}]*)\}/g)) {
        const name = match[1]!.trim();
        if (name.startsWith("!") || name in local) continue;
        const dot = name.indexOf(".");
        if (dot > 0 && !PSEUDO_PARAMETERS.includes(name)) checkAttribute(name.slice(0, dot), name.slice(dot + 1), path, `Fn::Sub variable \${${name}}`);
        else checkName(name, path, `Fn::Sub variable \${${name}}`, inConditions);
      }
      for (const [k, v] of Object.entries(local)) walk(v, `${path}.Fn::Sub[1].${k}`, inConditions);
      return;
    }
    if (only === "Fn::If") {
      if (!Array.isArray(arg) || arg.length !== 3) return report(path, "Fn::If takes [condition, value if true, value if false]");
      checkConditionName(arg[0], path, "Fn::If");
      walk(arg[1], `${path}.Fn::If[1]`, inConditions);
      walk(arg[2], `${path}.Fn::If[2]`, inConditions);
      return;
    }
    if (only === "Condition" && inConditions) return checkConditionName(arg, path, "Condition");
    for (const [k, v] of Object.entries(node)) walk(v, `${path}.${k}`, inConditions);
  }

  for (const [name, condition] of Object.entries(conditions)) walk(condition, `Conditions.${name}`, true);
  for (const [name, resource] of Object.entries(resources)) {
    if (!isObject(resource)) continue;
    const path = `Resources.${name}`;
    if (resource.Condition !== undefined) checkConditionName(resource.Condition, `${path}.Condition`, "Condition");
    for (const dep of [resource.DependsOn ?? []].flat()) {
      if (typeof dep !== "string" || !(dep in resources)) report(`${path}.DependsOn`, `names no resource '${String(dep)}'`);
    }
    walk(resource.Properties, `${path}.Properties`, false);
    walk(resource.Metadata, `${path}.Metadata`, false);
  }
  for (const [name, output] of Object.entries(isObject(template.Outputs) ? template.Outputs : {})) {
    if (!isObject(output)) continue;
    if (output.Condition !== undefined) checkConditionName(output.Condition, `Outputs.${name}.Condition`, "Condition");
    if (!("Value" in output)) report(`Outputs.${name}`, "missing Value");
    walk(output, `Outputs.${name}`, false);
  }
  for (const name of Object.keys(parameters)) if (!used.has(name)) report(`Parameters.${name}`, "parameter is never used");
  return problems;
}

// ---- evaluation: what a template's intrinsics give for given parameter values ----

export interface EvalContext {
  /** Parameter values; a parameter not given takes its Default. Lists as arrays. */
  parameters: Record<string, string | number | string[]>;
  /** What `Ref` of a resource gives (its physical id). */
  refs: Record<string, string>;
  /** What `Fn::GetAtt` gives, keyed "Resource.Attribute". */
  attributes: Record<string, string>;
  /** Pseudo parameters: AWS::Region, AWS::AccountId, AWS::Partition… */
  pseudo: Record<string, string>;
}

const NO_VALUE = Symbol("AWS::NoValue");

function parameterValue(template: Template, name: string, ctx: EvalContext): string | string[] {
  const given = ctx.parameters[name] ?? template.Parameters?.[name]?.Default;
  if (given === undefined) throw new Error(`no value for parameter ${name}`);
  const type = String(template.Parameters?.[name]?.Type ?? "String");
  if (Array.isArray(given)) return given;
  return type.startsWith("List<") || type === "CommaDelimitedList" ? String(given).split(",") : String(given);
}

function lookup(template: Template, name: string, ctx: EvalContext): unknown {
  if (name === "AWS::NoValue") return NO_VALUE;
  if (name in ctx.pseudo) return ctx.pseudo[name];
  if (template.Parameters && name in template.Parameters) return parameterValue(template, name, ctx);
  if (name in ctx.refs) return ctx.refs[name];
  if (name.includes(".") && name in ctx.attributes) return ctx.attributes[name];
  throw new Error(`no value for ${name}`);
}

/** Whether a condition of the template holds for the context's parameter values. */
export function conditionHolds(template: Template, name: string, ctx: EvalContext): boolean {
  const condition = template.Conditions?.[name];
  if (condition === undefined) throw new Error(`no condition ${name}`);
  return evaluate(template, condition, ctx) === true;
}

/** Whether a resource exists (it has no Condition, or its Condition holds). */
export function resourceExists(template: Template, name: string, ctx: EvalContext): boolean {
  const condition = template.Resources?.[name]?.Condition;
  return condition === undefined || conditionHolds(template, condition, ctx);
}

/** Evaluates Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Select, Fn::Split, Fn::If and the condition functions. */
export function evaluate(template: Template, node: unknown, ctx: EvalContext): unknown {
  const value = evaluateOrNoValue(template, node, ctx);
  return value === NO_VALUE ? undefined : value;
}

function evaluateOrNoValue(template: Template, node: unknown, ctx: EvalContext): unknown {
  const ev = (n: unknown) => evaluateOrNoValue(template, n, ctx);
  const str = (n: unknown) => {
    const v = ev(n);
    if (typeof v !== "string") throw new Error(`expected a string from ${JSON.stringify(n)}`);
    return v;
  };
  const list = (n: unknown) => {
    const v = ev(n);
    if (!Array.isArray(v)) throw new Error(`expected a list from ${JSON.stringify(n)}`);
    return v as unknown[];
  };
  if (Array.isArray(node)) return node.map(ev).filter((v) => v !== NO_VALUE);
  if (!isObject(node)) return node;
  const keys = Object.keys(node);
  const fn = keys.length === 1 ? keys[0]! : "";
  const arg = node[fn] as unknown;
  const args = Array.isArray(arg) ? arg : [];
  switch (fn) {
    case "Ref":
      return lookup(template, String(arg), ctx);
    case "Fn::GetAtt": {
      const key = Array.isArray(arg) ? `${String(arg[0])}.${String(arg[1])}` : String(arg);
      if (!(key in ctx.attributes)) throw new Error(`no value for Fn::GetAtt ${key}`);
      return ctx.attributes[key];
    }
    case "Fn::Sub": {
      const [text, variables] = Array.isArray(arg) ? [arg[0], arg[1]] : [arg, {}];
      const local = Object.fromEntries(Object.entries(isObject(variables) ? variables : {}).map(([k, v]) => [k, ev(v)]));
      return String(text).replace(/\$\{([^}]*)\}/g, (_m, raw: string) => {
        const name = raw.trim();
        if (name.startsWith("!")) return `\${${name.slice(1)}}`;
        const v = name in local ? local[name] : lookup(template, name, ctx);
        if (typeof v !== "string") throw new Error(`Fn::Sub variable ${name} is not a string`);
        return v;
      });
    }
    case "Fn::Join":
      return list(args[1]).map((v) => String(v)).join(String(args[0]));
    case "Fn::Select": {
      const items = list(args[1]);
      const index = Number(ev(args[0]));
      if (!(index >= 0 && index < items.length)) throw new Error(`Fn::Select index ${index} is out of range`);
      return items[index];
    }
    case "Fn::Split":
      return str(args[1]).split(String(args[0]));
    case "Fn::If":
      return conditionHolds(template, String(args[0]), ctx) ? ev(args[1]) : ev(args[2]);
    case "Fn::Equals":
      return JSON.stringify(ev(args[0])) === JSON.stringify(ev(args[1]));
    case "Fn::Not":
      return ev(args[0]) !== true;
    case "Fn::And":
      return args.every((a) => ev(a) === true);
    case "Fn::Or":
      return args.some((a) => ev(a) === true);
    case "Condition":
      return conditionHolds(template, String(arg), ctx);
    default:
      return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, ev(v)]).filter(([, v]) => v !== NO_VALUE));
  }
}
