// The worker's own check of a run's input: the same schemas the server checks at trigger time.
import assert from "node:assert/strict";
import { test } from "node:test";

import { bindArguments, checkValue } from "../dist/workflows/index.js";

test("values are checked against their schema", () => {
  assert.equal(checkValue({ type: "integer" }, 3, "a"), null);
  assert.equal(checkValue({ type: "integer" }, 3.5, "a"), "a: expected integer, got 3.5");
  assert.equal(checkValue({ type: "integer" }, "3", "a"), 'a: expected integer, got "3"');
  assert.equal(checkValue({ type: "number" }, 3, "x"), null);
  assert.equal(checkValue({ enum: ["a", "b"] }, "c", "k"), 'k: expected one of "a", "b", got "c"');
  assert.equal(checkValue({ type: "integer", minimum: 1 }, 0, "n"), "n: must be >= 1, got 0");
  assert.equal(checkValue({ type: "string", maxLength: 2 }, "abc", "s"), "s: must have at most 2 characters");
  assert.equal(
    checkValue({ type: "array", items: { type: "integer" } }, [1, "2"], "xs"),
    'xs[1]: expected integer, got "2"',
  );
  assert.equal(
    checkValue({ anyOf: [{ type: "integer" }, { type: "null" }] }, "x", "m"),
    'm: expected integer | null, got "x"',
  );
  const point = {
    type: "object",
    properties: { x: { type: "number" } },
    required: ["x"],
    additionalProperties: false,
  };
  assert.equal(checkValue(point, { x: 1 }, "p"), null);
  assert.equal(checkValue(point, {}, "p"), "p.x: missing");
  assert.equal(checkValue(point, { x: 1, y: 2 }, "p"), "p.y: unexpected");
});

test("arguments are bound by position, with defaults", () => {
  const options = {
    name: "scale",
    parameters: [
      { name: "value", schema: { type: "number" } },
      { name: "factor", schema: { type: "integer" }, default: 2 },
    ],
  };
  assert.deepEqual(bindArguments(options, [1.5]), [1.5, 2]);
  assert.deepEqual(bindArguments(options, [1.5, 3]), [1.5, 3]);
  assert.throws(() => bindArguments(options, []), /missing required input 'value'/);
  assert.throws(() => bindArguments(options, [1, 2, 3]), /takes at most 2 inputs, got 3/);
  assert.throws(() => bindArguments(options, [1, "x"]), /factor: expected integer, got "x"/);
  assert.throws(() => bindArguments(options, { value: 1 }), /by position \(a JSON array\)/);
  assert.deepEqual(bindArguments({ name: "free" }, [1, "a"]), [1, "a"]);
});
