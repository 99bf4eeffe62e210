/**
 * Small hand scanners shared by the detectors. A regular expression that starts on every
 * character of a long run (a space, a newline, a dot) and scans the rest of the run from each one
 * is quadratic; these helpers let a detector find a rare anchor first (`expression`, `{`, `|`)
 * and then look left or right of it once.
 */

/** The characters of the regular-expression class `\s` (ECMAScript WhiteSpace and LineTerminator). */
export function isSpaceCode(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** Index of the first character at or after `i` that is not `\s` (`s.length` if none). */
export function skipSpaces(s: string, i: number): number {
  let j = i;
  while (j < s.length && isSpaceCode(s.charCodeAt(j))) j++;
  return j;
}

/** Index just after the last character before `i` that is not `\s` (0 if none). */
export function skipSpacesBack(s: string, i: number): number {
  let j = i;
  while (j > 0 && isSpaceCode(s.charCodeAt(j - 1))) j--;
  return j;
}

/** ASCII letters, digits and `_` (the class `\w`). */
export function isWordCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95;
}

/** ASCII digits. */
export function isDigitCode(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** ASCII letters. */
export function isLetterCode(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90);
}
