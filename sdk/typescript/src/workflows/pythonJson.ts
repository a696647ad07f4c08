/**
 * JSON text as the platform (Python) writes a value this SDK sent it: the platform parses what
 * `JSON.stringify` wrote and measures or hashes its own `json.dumps` of it. A number written
 * without `.` or `e` is a Python int (its digits again); any other is a float, written as
 * Python's `repr` writes it (`1e-07`, `1e+16`, `2.0`).
 */
import { createHash } from "node:crypto";

export interface PythonJsonOptions {
  /** `sort_keys=True`: keys in code point order. */
  sortKeys?: boolean;
  /** `separators=(",", ":")` instead of Python's default `", "` and `": "`. */
  compact?: boolean;
  /** Python's default `ensure_ascii=True`: every character past `~` as `\uXXXX`. */
  ensureAscii?: boolean;
}

const SHORT_ESCAPES: Record<string, string> = {
  '"': '\\"',
  "\\": "\\\\",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
  "\b": "\\b",
  "\f": "\\f",
};

function unicodeEscape(unit: number): string {
  return `\\u${unit.toString(16).padStart(4, "0")}`;
}

function pythonString(text: string, ensureAscii: boolean): string {
  let out = '"';
  // by UTF-16 unit: Python escapes a character past the BMP as its surrogate pair too
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    const unit = text.charCodeAt(index);
    if (char in SHORT_ESCAPES) out += SHORT_ESCAPES[char];
    else if (unit < 0x20 || (ensureAscii && unit > 0x7e)) out += unicodeEscape(unit);
    else out += char;
  }
  return `${out}"`;
}

function pythonNumber(value: number): string {
  const written = JSON.stringify(value); // "null" for NaN and the infinities, as sent
  if (!/[.e]/.test(written)) return written;
  const [mantissa, exponentText] = value.toExponential().split("e");
  const exponent = Number(exponentText);
  // JavaScript writes a float in fixed notation from 1e-6 to 1e21, Python from 1e-4 to 1e16
  if (exponent >= -4 && exponent < 16) return written;
  const sign = exponent < 0 ? "-" : "+";
  return `${mantissa}e${sign}${String(Math.abs(exponent)).padStart(2, "0")}`;
}

function byCodePoint(a: string, b: string): number {
  const left = [...a].map((c) => c.codePointAt(0) ?? 0);
  const right = [...b].map((c) => c.codePointAt(0) ?? 0);
  for (let index = 0; index < Math.min(left.length, right.length); index++) {
    if (left[index] !== right[index]) return left[index] - right[index];
  }
  return left.length - right.length;
}

/** `json.dumps(json.loads(JSON.stringify(value)), ...)` with Python's options. */
export function pythonJson(value: unknown, options: PythonJsonOptions = {}): string {
  const sent: unknown = JSON.parse(JSON.stringify(value) ?? "null");
  const item = options.compact ? "," : ", ";
  const pair = options.compact ? ":" : ": ";
  const ensureAscii = options.ensureAscii ?? true;
  const write = (node: unknown): string => {
    if (node === null) return "null";
    if (typeof node === "boolean") return node ? "true" : "false";
    if (typeof node === "number") return pythonNumber(node);
    if (typeof node === "string") return pythonString(node, ensureAscii);
    if (Array.isArray(node)) return `[${node.map(write).join(item)}]`;
    const keys = Object.keys(node as object);
    if (options.sortKeys) keys.sort(byCodePoint);
    const record = node as Record<string, unknown>;
    const member = (key: string): string =>
      `${pythonString(key, ensureAscii)}${pair}${write(record[key])}`;
    const members = keys.map(member);
    return `{${members.join(item)}}`;
  };
  return write(sent);
}

/** UTF-8, with a lone surrogate encoded as its own three bytes (Python's "surrogatepass"). */
function utf8SurrogatePass(text: string): Buffer {
  const bytes: number[] = [];
  for (const char of text) {
    const point = char.codePointAt(0) ?? 0;
    if (point >= 0xd800 && point <= 0xdfff) {
      bytes.push(0xe0 | (point >> 12), 0x80 | ((point >> 6) & 0x3f), 0x80 | (point & 0x3f));
    } else {
      bytes.push(...Buffer.from(char, "utf8"));
    }
  }
  return Buffer.from(bytes);
}

/**
 * What the platform compares a step's input by on replay (scheduler/flows/protocol.py
 * `input_hash`): the SHA-256 of its canonical JSON, keys sorted, no spaces, non-ASCII as is.
 */
export function inputHash(value: unknown): string {
  const text = pythonJson(value, { sortKeys: true, compact: true, ensureAscii: false });
  return createHash("sha256").update(utf8SurrogatePass(text)).digest("hex");
}
