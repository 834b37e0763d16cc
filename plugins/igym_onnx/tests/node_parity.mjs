// Reads {preprocess: [...], select: [...], uniform: [...]} cases as JSON on stdin, runs the browser
// module's functions on them, and writes the results as JSON (test_preprocess.py compares them with Python).
import { readFileSync } from "node:fs";

const moduleUrl = process.argv[2];
const onnx = await import(moduleUrl);
const cases = JSON.parse(readFileSync(0, "utf8"));
// JSON has no -0 (nor bigints): send those as strings.
const plain = (typed) => Array.from(typed, (v) => (typeof v === "bigint" ? v.toString() : Object.is(v, -0) ? "-0" : v));
const out = {
  preprocess: cases.preprocess.map(({ decl, observation, mask_key }) => {
    try {
      const row = onnx.preprocess(decl, observation, mask_key);
      return { ok: true, type: row.constructor.name, values: plain(row), mask: onnx.observationMask(observation, mask_key) && plain(onnx.observationMask(observation, mask_key)) };
    } catch (err) {
      return { ok: false, error: String(err) };
    }
  }),
  select: cases.select.map(({ logits, mask, action, temperature, u }) =>
    onnx.selectAction(Float32Array.from(logits), mask && Uint8Array.from(mask), { action, temperature }, u)),
  uniform: cases.uniform.map(([seed, t]) => onnx.uniform(seed, t)),
};
process.stdout.write(JSON.stringify(out));
