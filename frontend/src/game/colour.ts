/** Colours on the wire are `"#rrggbb"` strings; Phaser wants 0xrrggbb integers. */

const HEX6 = /^#([0-9a-fA-F]{6})$/;
const HEX3 = /^#([0-9a-fA-F]{3})$/;

/**
 * `"#rrggbb"` (or the short `"#rgb"`) → `0xrrggbb`. Anything else (null, a name, a typo) → null,
 * which callers treat as "no colour" for nullable fields or fall back to the field's default.
 */
export function parseColour(value: unknown): number | null {
  if (typeof value !== "string") return null;
  const long = HEX6.exec(value.trim());
  if (long) return parseInt(long[1]!, 16);
  const short = HEX3.exec(value.trim());
  if (short) {
    const [r, g, b] = short[1]!.split("");
    return parseInt(`${r}${r}${g}${g}${b}${b}`, 16);
  }
  return null;
}

/** `0xrrggbb` → `"#rrggbb"`. */
export function colourToCss(value: number): string {
  return `#${(value & 0xffffff).toString(16).padStart(6, "0")}`;
}
