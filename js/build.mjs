// Bundles src/code_editor.js (CodeMirror 6 and its parts) into one minified ESM file,
// agent_magic/ui/code_editor.js, which the anywidget loads. Run: npm ci && npm run build.
// The output depends only on the sources and package-lock.json (no dates, no paths), so
// scripts/check_bundle.sh can rebuild it and compare byte for byte.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(here, "..", "agent_magic", "ui", "code_editor.js");

const banner = `// agent_magic's code editor: built from js/src/code_editor.js by \`npm ci && npm run build\`
// in js/ (do not edit; scripts/check_bundle.sh checks it). Third-party licenses at the end.`;

// Every bundled package's license, once per distinct text, as a trailing comment.
async function licenses(inputs) {
  const packages = new Set();
  for (const path of Object.keys(inputs)) {
    const match = path.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
    if (match) packages.add(match[1]);
  }
  const texts = new Map();
  for (const name of [...packages].sort()) {
    const text = readFileSync(join(here, "node_modules", name, "LICENSE"), "utf8").trim();
    texts.set(text, [...(texts.get(text) || []), name]);
  }
  return [...texts]
    .map(([text, names]) => `/*! ${names.join(", ")}\n\n${text.replaceAll("*/", "* /")}\n*/`)
    .join("\n");
}

const options = {
  entryPoints: [join(here, "src", "code_editor.js")],
  bundle: true,
  format: "esm",
  target: "es2020",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
};
const probe = await build({ ...options, write: false, metafile: true, outfile });
await build({
  ...options,
  outfile,
  banner: { js: banner },
  footer: { js: await licenses(probe.metafile.inputs) },
});
