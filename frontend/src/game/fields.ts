/**
 * Field defaults of render objects (docs/game-protocol.md, "Render objects") and typed getters.
 *
 * A field that is absent has its default; a field that is present, even as null, has that value
 * (null is meaningful for `fill`, `stroke`, `tint`, `frame`, the `width`/`height` of sprites and
 * `tween_ms`). Fields that cannot be null (`x`, `alpha`, …) fall back to the default on null.
 */

import type { RenderObject } from "./objects";

/** The defaults of the common fields and of each object type's own fields. */
export const COMMON_DEFAULTS: Readonly<Record<string, unknown>> = {
  x: 0,
  y: 0,
  angle: 0,
  alpha: 1,
  depth: 0,
  tween_ms: null,
  owner: null,
};

export const TYPE_DEFAULTS: Readonly<Record<string, Readonly<Record<string, unknown>>>> = {
  rect: { width: 0, height: 0, fill: "#ffffff", stroke: null, line_width: 1 },
  circle: { radius: 0, fill: "#ffffff", stroke: null, line_width: 1 },
  line: { points: [], color: "#ffffff", line_width: 2 },
  polygon: { points: [], fill: "#ffffff", stroke: null, line_width: 1 },
  text: {
    text: "",
    font_size: 16,
    font_family: "sans-serif",
    color: "#ffffff",
    align: "left",
    origin_x: 0,
    origin_y: 0,
  },
  sprite: { image: "", frame: null, width: null, height: null, tint: null, flip_x: false },
};

/** The value of `field` on `obj`: the object's own value when present, else the default. */
export function fieldValue(obj: RenderObject, field: string): unknown {
  if (Object.prototype.hasOwnProperty.call(obj, field) && obj[field] !== undefined) return obj[field];
  if (field in COMMON_DEFAULTS) return COMMON_DEFAULTS[field];
  return TYPE_DEFAULTS[obj.object_type]?.[field];
}

/** A finite number field (null or garbage → the default, or `fallback` when that is not a number). */
export function numberField(obj: RenderObject, field: string, fallback = 0): number {
  const value = fieldValue(obj, field);
  if (typeof value === "number" && Number.isFinite(value)) return value;
  const dflt = TYPE_DEFAULTS[obj.object_type]?.[field] ?? COMMON_DEFAULTS[field];
  return typeof dflt === "number" ? dflt : fallback;
}

/** A nullable number field (`width`/`height` of sprites): null when absent or not a number. */
export function optionalNumberField(obj: RenderObject, field: string): number | null {
  const value = fieldValue(obj, field);
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** `points` as `[[x, y], …]`, dropping malformed entries. */
export function pointsField(obj: RenderObject): Array<[number, number]> {
  const value = fieldValue(obj, "points");
  if (!Array.isArray(value)) return [];
  const out: Array<[number, number]> = [];
  for (const p of value) {
    if (Array.isArray(p) && typeof p[0] === "number" && typeof p[1] === "number") out.push([p[0], p[1]]);
  }
  return out;
}
