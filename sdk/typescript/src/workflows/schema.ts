/**
 * Checking a decoded JSON value against the JSON Schema subset a task's parameters declare:
 * `type`, `enum`, `const`, `anyOf`, `minimum`/`maximum`, `minLength`/`maxLength`, `items`,
 * `properties`/`required`/`additionalProperties: false`. Other keywords are not checked here.
 * The server checks a run's input against the same schemas when the run is started.
 */

/** A JSON Schema, as registered with a task's parameter. */
export type JsonSchema = { [keyword: string]: unknown };

const TYPE_CHECKS: Record<string, (value: unknown) => boolean> = {
  integer: (v) => typeof v === "number" && Number.isInteger(v),
  number: (v) => typeof v === "number" && Number.isFinite(v),
  string: (v) => typeof v === "string",
  boolean: (v) => typeof v === "boolean",
  null: (v) => v === null,
  array: (v) => Array.isArray(v),
  object: (v) => typeof v === "object" && v !== null && !Array.isArray(v),
};

function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}

function describe(schema: JsonSchema): string {
  if (Array.isArray(schema.anyOf)) {
    return (schema.anyOf as JsonSchema[]).map(describe).join(" | ");
  }
  const types = schema.type;
  if (Array.isArray(types)) return types.join(" | ");
  if (types === "array" && schema.items && typeof schema.items === "object") {
    return `array of ${describe(schema.items as JsonSchema)}`;
  }
  return typeof types === "string" ? types : "a value";
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The first way `value` breaks `schema`, as `"<path>: <problem>"`; null when it fits. */
export function checkValue(schema: JsonSchema, value: unknown, path: string): string | null {
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => same(option, value))) {
    return `${path}: expected one of ${schema.enum.map(shown).join(", ")}, got ${shown(value)}`;
  }
  if ("const" in schema && !same(schema.const, value)) {
    return `${path}: expected ${shown(schema.const)}, got ${shown(value)}`;
  }
  if (Array.isArray(schema.anyOf)) {
    const branches = schema.anyOf as JsonSchema[];
    if (!branches.some((branch) => checkValue(branch, value, path) === null)) {
      return `${path}: expected ${describe(schema)}, got ${shown(value)}`;
    }
  }
  if (schema.type !== undefined) {
    const names = Array.isArray(schema.type) ? schema.type : [schema.type];
    const fits = names.some((name) => {
      const test = TYPE_CHECKS[String(name)];
      return test === undefined || test(value);
    });
    if (!fits) return `${path}: expected ${describe(schema)}, got ${shown(value)}`;
  }
  return bounds(schema, value, path) ?? inside(schema, value, path);
}

function bounds(schema: JsonSchema, value: unknown, path: string): string | null {
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) {
      return `${path}: must be >= ${schema.minimum}, got ${shown(value)}`;
    }
    if (typeof schema.maximum === "number" && value > schema.maximum) {
      return `${path}: must be <= ${schema.maximum}, got ${shown(value)}`;
    }
  }
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) {
      return `${path}: must have at least ${schema.minLength} characters`;
    }
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) {
      return `${path}: must have at most ${schema.maxLength} characters`;
    }
  }
  return null;
}

function inside(schema: JsonSchema, value: unknown, path: string): string | null {
  if (Array.isArray(value) && schema.items && typeof schema.items === "object") {
    for (const [index, item] of value.entries()) {
      const problem = checkValue(schema.items as JsonSchema, item, `${path}[${index}]`);
      if (problem) return problem;
    }
  }
  if (TYPE_CHECKS.object(value)) {
    const record = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
    for (const name of (schema.required ?? []) as string[]) {
      if (!(name in record)) return `${path}.${name}: missing`;
    }
    for (const [name, item] of Object.entries(record)) {
      if (name in properties) {
        const problem = checkValue(properties[name], item, `${path}.${name}`);
        if (problem) return problem;
      } else if (schema.additionalProperties === false) {
        return `${path}.${name}: unexpected`;
      }
    }
  }
  return null;
}
