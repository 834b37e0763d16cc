// Builds the igym browser client into the Python package, which serves it at /client/.
//   npm run build -> igym.js (+ .map), igym.css (+ .map), and chunks/*.js: code that igym.js loads
//                    with import() only when needed (Phaser and the game view, for game scenes).
//
// igym.js and igym.css keep their names (the page links them); chunk names carry a content hash.
// The chunks directory is emptied first, so stale chunks do not pile up across builds.
// The build fails if igym.js would import a chunk statically: survey pages must not load game code.
import { build } from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const outdir = resolve(here, "../igym_core/src/igym_core/client");
const chunksDir = resolve(outdir, "chunks");
rmSync(chunksDir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "info",
  // es2022: class fields stay native (es2020 lowers them through a helper that the main bundle and
  // the game chunk would share, turning into a static import of a chunk from igym.js).
  target: "es2022",
};

const [js] = await Promise.all([
  build({
    ...common,
    entryPoints: { igym: resolve(here, "src/main.ts") },
    outdir,
    format: "esm",
    platform: "browser",
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
  }),
  build({
    ...common,
    entryPoints: [resolve(here, "src/styles.css")],
    outfile: resolve(outdir, "igym.css"),
  }),
  // The admin dashboard (/admin): a second entry point, its own script and styles.
  build({
    ...common,
    entryPoints: { admin: resolve(here, "src/admin/main.ts") },
    outdir,
    format: "esm",
    platform: "browser",
  }),
  build({
    ...common,
    entryPoints: [resolve(here, "src/admin/admin.css")],
    outfile: resolve(outdir, "admin.css"),
  }),
]);

// Source maps of chunks keep our sources' text but not the vendored libraries' (Phaser alone is
// 9 MB of source): their mappings stay, so stack traces still name Phaser's files and lines.
for (const path of Object.keys(js.metafile.outputs)) {
  if (!path.endsWith(".js.map") || !path.includes("/chunks/")) continue;
  const file = resolve(path); // metafile paths are relative to the working directory
  const map = JSON.parse(readFileSync(file, "utf8"));
  map.sourcesContent = (map.sourcesContent ?? []).map((text, i) => (map.sources[i].includes("/node_modules/") ? null : text));
  writeFileSync(file, JSON.stringify(map));
}

const main = Object.entries(js.metafile.outputs).find(([path]) => path.endsWith("/igym.js"));
if (!main) throw new Error("build.mjs: esbuild wrote no igym.js");
const staticImports = main[1].imports.filter((i) => i.kind === "import-statement");
if (staticImports.length) {
  throw new Error(
    "build.mjs: igym.js imports chunks statically (a module is shared by the main bundle and a " +
      `lazily loaded one): ${staticImports.map((i) => i.path).join(", ")}`,
  );
}
