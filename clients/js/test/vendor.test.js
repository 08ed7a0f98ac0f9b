// vendor/ holds byte-identical copies of the pinned @noble modules, for browsers without a bundler (README.md). They
// must match node_modules/ and work on their own.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { vendoredFiles, vendoredVersions } from '../scripts/vendor.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const recorded = JSON.parse(readFileSync(join(root, 'vendor', 'versions.json'), 'utf8'));

test('dependencies are exactly the two pinned @noble packages', () => {
  assert.deepEqual(Object.keys(pkg.dependencies).sort(), ['@noble/ciphers', '@noble/hashes']);
  for (const v of Object.values(pkg.dependencies)) assert.match(/** @type {string} */ (v), /^\d+\.\d+\.\d+$/);
});

test('vendor/ matches the installed versions, file for file (run `npm run vendor` after an upgrade)', () => {
  assert.deepEqual(recorded.versions, vendoredVersions());
  assert.deepEqual(recorded.versions, pkg.dependencies);
  assert.deepEqual(recorded.files, vendoredFiles());
  for (const file of recorded.files) {
    const a = readFileSync(join(root, 'vendor', file));
    const b = readFileSync(join(root, 'node_modules', file));
    assert.ok(a.equals(b), `vendor/${file} differs from node_modules/${file}`);
  }
});

test('the vendored modules load by relative URL and compute the vector keys', async () => {
  const url = (/** @type {string} */ f) => pathToFileURL(join(root, 'vendor', f)).href;
  const { hkdf } = await import(url('@noble/hashes/hkdf.js'));
  const { sha256 } = await import(url('@noble/hashes/sha2.js'));
  const { chacha20poly1305 } = await import(url('@noble/ciphers/chacha.js'));
  const ikm = Uint8Array.from({ length: 32 }, (_, i) => i);
  const salt = Uint8Array.from({ length: 32 }, (_, i) => 0x20 + i);
  const key = hkdf(sha256, ikm, salt, new TextEncoder().encode('movan/v1/client-to-server'), 32);
  assert.equal(Buffer.from(key).toString('hex'), '5b393e88c29a8a9102db92cb04256cdfcae6d236b5ab8e3b1fad88ee5e8905f4');
  const sealed = chacha20poly1305(key, new Uint8Array(12), Uint8Array.of(0, 0, 0, 0x20)).encrypt(
    new TextEncoder().encode('{"proto":"ping"}'),
  );
  assert.equal(Buffer.from(sealed).toString('hex'), '60f2853c33db399a7936a7131f58bfffc6cb621b9c537eab25494152c9bca55f');
});

test('browser code uses no Node built-ins', () => {
  for (const f of ['movan.js', 'src/base64.js', 'src/errors.js', 'src/emitter.js', 'src/crypto.js', 'src/account.js', 'src/sync.js', 'src/game.js']) {
    const src = readFileSync(join(root, f), 'utf8');
    assert.doesNotMatch(src, /from ['"]node:|require\(|\bBuffer\b|\bprocess\./, f);
    for (const m of src.matchAll(/from ['"]([^'"]+)['"]/g)) {
      assert.ok(m[1].startsWith('./') || m[1].startsWith('@noble/'), `${f} imports ${m[1]}`);
    }
  }
});

test('the import map in README.md loads movan.js from vendor/ only, as a page at /demo/ would', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = readme.match(/<script type="importmap">([\s\S]*?)<\/script>/);
  assert.ok(m, 'README.md shows an import map');
  const map = JSON.parse(m[1]);
  // The assumed site: /js/ serves clients/js/, the page is /demo/index.html.
  const site = mkdtempSync(join(tmpdir(), 'movan-site-'));
  try {
    symlinkSync(root, join(site, 'js'), 'dir');
    mkdirSync(join(site, 'demo'));
    const page = pathToFileURL(join(site, 'demo', 'index.html'));
    /** @type {Record<string, string>} */
    const imports = {};
    for (const [k, v] of Object.entries(map.imports)) imports[k] = new URL(/** @type {string} */ (v), page).href;
    const moduleUrl = new URL('../js/movan.js', page).href;
    const code = `
      const m = await import(${JSON.stringify(moduleUrl)});
      const k = m.deriveKeys('AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=', 'ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=');
      const body = new m.Sealer(k.clientToServer).sealBody(new TextEncoder().encode('{"proto":"ping"}'));
      console.log([...body].map((b) => b.toString(16).padStart(2, '0')).join(''));
    `;
    const out = execFileSync(
      process.execPath,
      ['--import', pathToFileURL(join(root, 'test', 'helpers', 'importmap-register.js')).href, '--input-type=module', '-e', code],
      { env: { ...process.env, MOVAN_IMPORT_MAP: JSON.stringify({ imports }), NODE_PATH: '' }, encoding: 'utf8' },
    );
    assert.equal(out.trim(), '60f2853c33db399a7936a7131f58bfffc6cb621b9c537eab25494152c9bca55f');
  } finally {
    rmSync(site, { recursive: true, force: true });
  }
});
