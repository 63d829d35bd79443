/**
 * Cutting a long reply into messages a platform accepts: each platform has its limit and its
 * own unit (QQ and Discord count characters, Telegram UTF-16 code units), but all of them
 * must receive whole grapheme clusters: a flag cut between its two regional indicators, a
 * ZWJ family cut at a joiner or an accent cut from its letter arrives as garbage.
 */

/** The length of a piece of text in the platform's unit; must add up over concatenation. */
export type TextMeasure = (text: string) => number;

/** Unicode code points: what QQ and Discord limit. */
export const codePointLength: TextMeasure = (text) => {
  let n = 0;
  for (const _ of text) n++;
  return n;
};

/** UTF-16 code units (`String.length`): what Telegram limits. */
export const utf16Length: TextMeasure = (text) => text.length;

// Made on the first split, not at import: ICU's grapheme rules cost 20-35 ms of CPU, which
// every start (before READY=1) would pay for a reply that may never be long.
let segmenter: Intl.Segmenter | undefined;

/**
 * Splits `text` into chunks of at most `max` (in `measure`'s unit), cutting only between
 * grapheme clusters. A cut goes after the last line break of the window when that break lies
 * in its second half, else after the last whitespace there, else at the last cluster that
 * fits. Chunks lose trailing whitespace; whitespace-only chunks are dropped (platforms refuse
 * empty messages). Only a single cluster longer than `max` (pathological stacks of combining
 * marks) is cut inside, between code points.
 */
export function splitText(
  text: string,
  max: number,
  measure: TextMeasure = codePointLength,
): string[] {
  // Most replies fit: no unit counts more than UTF-16 code units, so a text that short is
  // one chunk, and segmenting it into clusters (most of the cost of a short echo) is skipped.
  if (text.length <= max) {
    const chunk = text.trimEnd();
    return chunk.trim() === '' ? [] : [chunk];
  }
  segmenter ??= new Intl.Segmenter(undefined, { granularity: 'grapheme' });
  const clusters = Array.from(segmenter.segment(text), (s) => s.segment);
  const sizes = clusters.map(measure);
  const chunks: string[] = [];
  const push = (piece: string): void => {
    const chunk = piece.trimEnd();
    if (chunk.trim() !== '') chunks.push(chunk);
  };
  let start = 0;
  while (start < clusters.length) {
    let end = start;
    let size = 0;
    // The cluster index after the last line break / whitespace in the second half, if any.
    let lineCut = -1;
    let spaceCut = -1;
    while (end < clusters.length && size + sizes[end]! <= max) {
      size += sizes[end]!;
      const cluster = clusters[end]!;
      end++;
      if (size >= max / 2) {
        if (cluster.includes('\n')) lineCut = end;
        else if (cluster.trim() === '') spaceCut = end;
      }
    }
    if (end === start) {
      // One cluster larger than the whole limit: the only cut inside a cluster.
      for (const piece of codePointPieces(clusters[start]!, max, measure)) push(piece);
      start++;
      continue;
    }
    if (end < clusters.length) {
      if (lineCut !== -1) end = lineCut;
      else if (spaceCut !== -1) end = spaceCut;
    }
    push(clusters.slice(start, end).join(''));
    start = end;
  }
  return chunks;
}

/** A cluster cut between code points into pieces of at most `max` (at least one point each). */
function codePointPieces(cluster: string, max: number, measure: TextMeasure): string[] {
  const pieces: string[] = [];
  let piece = '';
  for (const point of cluster) {
    if (piece !== '' && measure(piece + point) > max) {
      pieces.push(piece);
      piece = '';
    }
    piece += point;
  }
  if (piece !== '') pieces.push(piece);
  return pieces;
}
