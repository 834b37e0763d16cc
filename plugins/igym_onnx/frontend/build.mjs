// Copies the three files of onnxruntime-web that igym-onnx needs (WebAssembly, one thread, no
// WebGPU/WebGL) from node_modules into the Python package, which serves them at /plugins/onnx/ort/.
// The rest of the npm package (over 100 MB) stays here. The output is gitignored; `make build` runs this.
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "node_modules/onnxruntime-web/dist");
const outdir = resolve(here, "../src/igym_onnx/static/ort");
const FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];

const { version } = JSON.parse(readFileSync(resolve(here, "node_modules/onnxruntime-web/package.json"), "utf8"));
const wanted = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8")).dependencies["onnxruntime-web"];
if (version !== wanted) {
  throw new Error(`build.mjs: node_modules has onnxruntime-web ${version}, package.json pins ${wanted}; run npm ci`);
}
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
for (const name of FILES) copyFileSync(resolve(dist, name), resolve(outdir, name));
writeFileSync(resolve(outdir, "VERSION"), `onnxruntime-web ${version}\n`);
console.log(`igym-onnx: copied onnxruntime-web ${version} (${FILES.join(", ")}) to ${outdir}`);
