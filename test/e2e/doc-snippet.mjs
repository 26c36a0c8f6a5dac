// Loads a code block of the docs as a module, so tests run what a reader copies, not a copy of it.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { ROOT } from "../../scripts/lib/wrangler.mjs";

/**
 * The first ```js block after the heading `heading` in `docs/<file>`, imported as an ES module with
 * `exports` (names the block defines) exported. Throws if the heading or the block is missing.
 */
export async function importDocSnippet(file, heading, exports) {
  const text = await readFile(path.join(ROOT, "docs", file), "utf8");
  const at = text.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`docs/${file}: no heading "${heading}"`);
  const block = /```js\n([\s\S]*?)```/.exec(text.slice(at));
  if (!block) throw new Error(`docs/${file}: no js block after "${heading}"`);
  const source = `${block[1]}\nexport { ${exports.join(", ")} };\n`;
  return import(`data:text/javascript;base64,${Buffer.from(source).toString("base64")}`);
}
