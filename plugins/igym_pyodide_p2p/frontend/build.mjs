// Copies the files of Pyodide (npm) that the browser loads into the Python package, which serves
// them under content-hashed URLs (igym_pyodide_p2p/assets.py), and downloads micropip's wheel from
// PyPI with pip (pinned and hash-checked in micropip.txt): the npm package ships no package wheels.
// The output (src/igym_pyodide_p2p/static/pyodide/) is gitignored; `make build` runs this.
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { constants, gzipSync } from "node:zlib";

const here = dirname(fileURLToPath(import.meta.url));
const dist = resolve(here, "node_modules/pyodide");
const outdir = resolve(here, "../src/igym_pyodide_p2p/static/pyodide");
// What loadPyodide fetches (the ES module loader and its classic-script twin for classic workers,
// the Emscripten module, the WebAssembly, the standard library, the package lock file).
const FILES = [
  "pyodide.mjs",
  "pyodide.js",
  "pyodide.asm.mjs",
  "pyodide.asm.wasm",
  "python_stdlib.zip",
  "pyodide-lock.json",
];

const { version } = JSON.parse(readFileSync(resolve(dist, "package.json"), "utf8"));
const wanted = JSON.parse(readFileSync(resolve(here, "package.json"), "utf8")).dependencies.pyodide;
if (version !== wanted) {
  throw new Error(`build.mjs: node_modules has pyodide ${version}, package.json pins ${wanted}; run npm ci`);
}
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
for (const name of FILES) copyFileSync(resolve(dist, name), resolve(outdir, name));
// Gzipped twins, served to browsers that accept gzip: 11 MB become 3.9 MB (6.4 MB on the wire with
// python_stdlib.zip, which is compressed already). Made here once: the server spends no CPU on them.
const COMPRESSED = ["pyodide.mjs", "pyodide.js", "pyodide.asm.mjs", "pyodide.asm.wasm", "pyodide-lock.json"];
for (const name of COMPRESSED) {
  const data = readFileSync(resolve(outdir, name));
  writeFileSync(resolve(outdir, `${name}.gz`), gzipSync(data, { level: constants.Z_BEST_COMPRESSION }));
}

const python = process.env.PYTHON || "python3";
const pipArgs = [
  "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--python-version", "3.14",
  "--require-hashes", "-r", resolve(here, "micropip.txt"), "-d", outdir,
];
try {
  execFileSync(python, pipArgs, { stdio: "inherit" });
} catch (error) {
  throw new Error(
    `build.mjs: \`${python} ${pipArgs.join(" ")}\` failed (${error.message}). micropip's wheel comes from ` +
      "PyPI: check the network or pip (set PYTHON to a Python with pip), then run `npm run build` again.",
  );
}
const wheels = readdirSync(outdir).filter((name) => name.startsWith("micropip-") && name.endsWith(".whl"));
if (wheels.length !== 1) throw new Error(`build.mjs: expected one micropip wheel in ${outdir}; found ${wheels}`);
writeFileSync(resolve(outdir, "VERSION"), `pyodide ${version}\n${wheels[0]}\n`);
console.log(`igym-pyodide-p2p: copied pyodide ${version} (${FILES.join(", ")}) and ${wheels[0]} to ${outdir}`);
