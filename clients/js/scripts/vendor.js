// Copies the @noble modules that src/crypto.js imports (and the modules they import) from node_modules/ into
// vendor/, byte for byte, with their licenses, so that a browser can load them without a bundler through an import
// map (README.md). Run after changing the pinned versions: `npm install && npm run vendor`.
// test/vendor.test.js fails when vendor/ and node_modules/ disagree.

import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The modules src/crypto.js imports, as `package/file`. */
export const ENTRIES = ['@noble/ciphers/chacha.js', '@noble/hashes/hkdf.js', '@noble/hashes/sha2.js'];

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']/gm;

/**
 * Every file (as `@scope/pkg/file.js`) that the entries need, following relative imports; bare imports are refused
 * because an import map would have to cover them too.
 * @returns {string[]}
 */
export function vendoredFiles() {
  const seen = new Set();
  const todo = [...ENTRIES];
  while (todo.length > 0) {
    const spec = /** @type {string} */ (todo.pop());
    if (seen.has(spec)) continue;
    seen.add(spec);
    // Comments hold usage examples with bare imports: leave them out.
    const source = readFileSync(join(root, 'node_modules', spec), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    for (const m of source.matchAll(IMPORT)) {
      const target = m[1] ?? m[2];
      if (!target.startsWith('.')) throw new Error(`${spec} imports ${target}: not a relative import`);
      todo.push(posix.normalize(posix.join(posix.dirname(spec), target)));
    }
  }
  return [...seen].sort();
}

/** @returns {Record<string, string>} package name → version, from node_modules */
export function vendoredVersions() {
  /** @type {Record<string, string>} */
  const out = {};
  for (const pkg of new Set(ENTRIES.map((e) => e.split('/').slice(0, 2).join('/')))) {
    out[pkg] = JSON.parse(readFileSync(join(root, 'node_modules', pkg, 'package.json'), 'utf8')).version;
  }
  return out;
}

function main() {
  const files = vendoredFiles();
  const versions = vendoredVersions();
  rmSync(join(root, 'vendor', '@noble'), { recursive: true, force: true });
  for (const file of files) {
    mkdirSync(dirname(join(root, 'vendor', file)), { recursive: true });
    copyFileSync(join(root, 'node_modules', file), join(root, 'vendor', file));
  }
  for (const pkg of Object.keys(versions)) {
    copyFileSync(join(root, 'node_modules', pkg, 'LICENSE'), join(root, 'vendor', pkg, 'LICENSE'));
  }
  writeFileSync(join(root, 'vendor', 'versions.json'), `${JSON.stringify({ versions, files }, null, 2)}\n`);
  console.log(`vendored ${files.length} files of ${Object.entries(versions).map(([p, v]) => `${p}@${v}`).join(', ')}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
