/**
 * docs/errors.md documents every error code, and every code it documents exists: operators look
 * codes up there, so a code added without a row (or a line left for a removed code) fails.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { allErrorCodes, lookupCode } from '../src/errors.js';

// Every module of the product, so every one that registers codes has: the CLI loads commands
// and platforms only when they run (docs/performance.md), so no one import reaches them all.
// The entry points are left out: importing one runs it.
const ENTRY_POINTS = new Set(['cli/main.js', 'cli/bundle-main.js', 'fakes/qq/main.js']);
const SRC = fileURLToPath(new URL('../src/', import.meta.url));
for (const file of readdirSync(SRC, { recursive: true, encoding: 'utf8' }).sort()) {
  if (file.endsWith('.js') && !ENTRY_POINTS.has(file))
    await import(new URL(file, `file://${SRC}`).href);
}

const readme = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

/** Codes in the first column of the "Error codes" table: `| `GW_ERR_X` | ...`. */
function documentedCodes(): Map<string, string> {
  const section = readme.split(/^## Error codes$/m)[1]?.split(/^## /m)[0] ?? '';
  const rows = new Map<string, string>();
  for (const match of section.matchAll(/^\|\s*`(GW_ERR_[A-Z0-9_]+)`\s*\|\s*([^|]+?)\s*\|/gm)) {
    rows.set(match[1]!, match[2]!.trim());
  }
  return rows;
}

await test('every registered error code has a row in the README', () => {
  const documented = documentedCodes();
  const missing = allErrorCodes().filter((code) => !documented.has(code));
  assert.deepEqual(missing, []);
});

await test('every error code in the README is registered', () => {
  const unknown = [...documentedCodes().keys()].filter((code) => lookupCode(code) === undefined);
  assert.deepEqual(unknown, []);
});

await test("the README's exit column matches each code's kind", () => {
  const expected: Record<string, string> = { internal: '70', config: '78' };
  for (const [code, exit] of documentedCodes()) {
    const info = lookupCode(code);
    if (!info) continue;
    const want = expected[info.kind] ?? (info.retryable ? '1' : '78');
    assert.equal(exit, want, `${code}: README says exit ${exit}, registry says ${want}`);
  }
});
