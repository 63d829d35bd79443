/**
 * splitText: replies cut at a length limit on grapheme boundaries, preferring line breaks.
 * Property-style: seeded random strings over an alphabet of clusters that break naive cutting
 * (flags, ZWJ families, combining accents, CRLF, astral emoji), with each platform's measure.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { splitText } from '../../src/util/split-text.js';
import { Rng } from '../chaos/prng.js';

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const graphemes = (text: string): string[] => Array.from(segmenter.segment(text), (s) => s.segment);

const codePoints = (text: string): number => Array.from(text).length;
const utf16Units = (text: string): number => text.length;

/** Each entry is one grapheme cluster on its own and next to any other entry. */
const ALPHABET = [
  'a',
  'b',
  '中',
  ' ',
  ' ',
  '\n',
  '\r\n',
  '😀',
  '🇯🇵',
  '🇫🇷',
  '👨‍👩‍👧‍👦',
  '🏳️‍🌈',
  'e\u0301',
  'n\u0303\u0323',
  '👍🏽',
];
const CLUSTERS = new Set(ALPHABET);
const isSpace = (g: string): boolean => g.trim() === '';

const MEASURES = [
  { name: 'code points (QQ, Discord)', measure: codePoints },
  { name: 'UTF-16 units (Telegram)', measure: utf16Units },
];

await test('generated strings: no cluster is cut, no chunk is over the limit, nothing is lost', () => {
  for (const { name, measure } of MEASURES) {
    const rng = new Rng(0x5eed16);
    for (let run = 0; run < 400; run++) {
      const max = rng.int(16, 80);
      const items = Array.from({ length: rng.int(0, 400) }, () => rng.pick(ALPHABET));
      const text = items.join('');
      assert.deepEqual(graphemes(text), items, 'the alphabet is made of whole clusters');
      const chunks = splitText(text, max, measure);
      const where = `${name}, run ${run}, max ${max}: ${JSON.stringify(text)}`;
      for (const chunk of chunks) {
        assert.ok(measure(chunk) <= max, `${where}: chunk of ${measure(chunk)}`);
        assert.notEqual(chunk.trim(), '', `${where}: an empty chunk`);
        for (const g of graphemes(chunk)) {
          assert.ok(CLUSTERS.has(g), `${where}: cut cluster ${JSON.stringify(g)}`);
        }
      }
      // Only whitespace at the cuts may go: every visible cluster arrives once, in order.
      assert.deepEqual(
        chunks.flatMap((c) => graphemes(c)).filter((g) => !isSpace(g)),
        items.filter((g) => !isSpace(g)),
        where,
      );
    }
  }
});

await test('a break is a line break when there is one in the second half of the window', () => {
  for (const { measure } of MEASURES) {
    const rng = new Rng(7);
    for (let run = 0; run < 200; run++) {
      const max = rng.int(16, 60);
      // Lines (with their break) at most half the limit: every window holds a break in its
      // second half, so every cut can and must fall on one.
      const line = (): string => {
        let text = '';
        for (;;) {
          const next = text + rng.pick(['x', '🇯🇵', 'e\u0301', '😀', ' ']);
          if (measure(next) + 1 > max / 2) return text.trim();
          text = next;
          if (rng.chance(0.2)) return text.trim();
        }
      };
      const lines = Array.from({ length: rng.int(1, 30) }, line).filter((l) => l !== '');
      const chunks = splitText(lines.join('\n'), max, measure);
      const rejoined = chunks.flatMap((c) => c.split('\n'));
      assert.deepEqual(rejoined, lines, `max ${max}: every chunk is whole lines`);
    }
  }
});

await test('examples: flags, families and accents stay whole; words before hard cuts', () => {
  assert.deepEqual(splitText('abc', 16), ['abc']);
  assert.deepEqual(splitText('   ', 16), []);
  assert.deepEqual(splitText('aaaaaaaaaa\nbbbbbbbbbb', 16), ['aaaaaaaaaa', 'bbbbbbbbbb']);
  // 16 code points hold 8 flags (2 each); a code-point cut would split the 9th.
  const flags = '🇯🇵'.repeat(9);
  assert.deepEqual(splitText(flags, 17), ['🇯🇵'.repeat(8), '🇯🇵']);
  // A family is 7 code points, 11 UTF-16 units.
  const family = '👨‍👩‍👧‍👦';
  assert.deepEqual(splitText(family.repeat(3), 20), [family.repeat(2), family]);
  assert.deepEqual(splitText(family.repeat(3), 20, utf16Units), [family, family, family]);
  assert.deepEqual(splitText('e\u0301'.repeat(9), 17), ['e\u0301'.repeat(8), 'e\u0301']);
  assert.deepEqual(splitText('hello wonderful world', 16), ['hello wonderful', 'world']);
  // A single cluster larger than the limit is the only thing ever cut, between code points.
  const zalgo = `z${'\u0301'.repeat(40)}`;
  const parts = splitText(zalgo, 16);
  assert.equal(parts.join(''), zalgo);
  assert.ok(parts.every((p) => codePoints(p) <= 16));
});
