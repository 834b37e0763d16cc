// Builds the igym browser client into the Python package, which serves it at /client/.
//   npm run build            -> igym.js (+ .map) and igym.css (+ .map)
import { build } from "esbuild";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "../igym_core/src/igym_core/client");
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "info",
  target: "es2020",
};

await Promise.all([
  build({
    ...common,
    entryPoints: [resolve(here, "src/main.ts")],
    outfile: resolve(outdir, "igym.js"),
    format: "esm",
    platform: "browser",
  }),
  build({
    ...common,
    entryPoints: [resolve(here, "src/styles.css")],
    outfile: resolve(outdir, "igym.css"),
  }),
]);
