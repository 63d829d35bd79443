/**
 * One value (a chat id, a user id) as one segment of a REST path. `encodeURIComponent`
 * alone is not enough: `.` and `..` survive encoding and the URL parser resolves them as
 * dot segments (`/v2/groups/../messages` is `/v2/messages`), so such values are refused.
 */

/**
 * Why `value` cannot be a path segment of a platform id, or null when it can: empty, a dot
 * segment, a character that delimits paths, queries or fragments (`/ \ ? #`), or a control
 * character. No platform issues ids like these, so refusing them loses nothing.
 */
export function pathSegmentProblem(value: string): string | null {
  if (value === '') return 'is empty';
  if (value === '.' || value === '..') return 'is a dot segment';
  // eslint-disable-next-line no-control-regex
  const bad = /[/\\?#\u0000-\u001f\u007f-\u009f]/.exec(value);
  if (bad !== null) {
    const char = bad[0];
    const shown = /[/\\?#]/.test(char)
      ? `"${char}"`
      : `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    return `contains ${shown}`;
  }
  return null;
}

/** `value` percent-encoded as one path segment; call `pathSegmentProblem` first. */
export function encodePathSegment(value: string): string {
  return encodeURIComponent(value);
}
