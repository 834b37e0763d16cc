/**
 * The object table of a game view (docs/game-protocol.md, "frame" and "Render objects").
 *
 * Pure data: no Phaser, no DOM. The table holds the wire description of every object (the dicts
 * the server sent, merged), and `apply(frame)` reports what changed so that a view can update
 * its game objects. An `upd` carries every changed field with its new value, so a field that
 * goes back to its default arrives with the default value (see `fields.ts` for defaults).
 *
 * This module is in the main bundle (the table is kept even before Phaser has loaded);
 * `fields.ts` is only used by the Phaser view, so the two bundles share no module.
 */

export interface RenderObject {
  id: string;
  object_type: string;
  [field: string]: unknown;
}

export interface FrameDelta {
  key?: unknown;
  add?: unknown;
  upd?: unknown;
  rm?: unknown;
}

export interface ObjectUpdate {
  id: string;
  /** The fields this frame changed (without `id`). */
  patch: Record<string, unknown>;
  /** The merged description after the change (the table's own object: do not mutate). */
  object: RenderObject;
  /** True when `object_type` changed: the view must rebuild the object. */
  retyped: boolean;
}

export interface AppliedFrame {
  keyframe: boolean;
  /** Ids that are gone (on a keyframe: every id the table held before). */
  removed: string[];
  /** Objects that are new, in the order of `add` (the table's own objects). */
  added: RenderObject[];
  updated: ObjectUpdate[];
  /** Malformed entries and `upd`/`rm` of unknown ids, skipped. */
  skipped: number;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isRenderObject(value: unknown): value is RenderObject {
  return isObject(value) && typeof value.id === "string" && typeof value.object_type === "string";
}

export class ObjectTable {
  private readonly objects = new Map<string, RenderObject>();

  get size(): number {
    return this.objects.size;
  }

  get(id: string): RenderObject | undefined {
    return this.objects.get(id);
  }

  /** Every object, in insertion order (the table's own objects: do not mutate). */
  all(): RenderObject[] {
    return [...this.objects.values()];
  }

  /** Copies of the descriptions by id (for tests and debugging). */
  snapshot(): Record<string, RenderObject> {
    const out: Record<string, RenderObject> = {};
    for (const [id, obj] of this.objects) out[id] = { ...obj };
    return out;
  }

  clear(): string[] {
    const ids = [...this.objects.keys()];
    this.objects.clear();
    return ids;
  }

  /**
   * Apply one frame's delta. A keyframe drops everything first and keeps only `add`. Otherwise
   * `rm` is applied first, then `add` (an id that exists already is replaced: reported as
   * removed and added), then `upd` (merged into the stored description; unknown ids skipped).
   */
  apply(frame: FrameDelta): AppliedFrame {
    const keyframe = frame.key === true;
    const result: AppliedFrame = { keyframe, removed: [], added: [], updated: [], skipped: 0 };
    if (keyframe) {
      result.removed = this.clear();
    } else if (Array.isArray(frame.rm)) {
      for (const id of frame.rm) {
        if (typeof id === "string" && this.objects.delete(id)) result.removed.push(id);
        else result.skipped += 1;
      }
    } else if (frame.rm !== undefined && frame.rm !== null) {
      result.skipped += 1;
    }

    if (Array.isArray(frame.add)) {
      for (const item of frame.add) {
        if (!isRenderObject(item)) {
          result.skipped += 1;
          continue;
        }
        if (this.objects.has(item.id)) {
          // Re-adding a live id replaces the object.
          const i = result.added.findIndex((o) => o.id === item.id);
          if (i >= 0) result.added.splice(i, 1);
          else result.removed.push(item.id);
        }
        const obj: RenderObject = { ...item };
        this.objects.set(obj.id, obj);
        result.added.push(obj);
      }
    } else if (frame.add !== undefined && frame.add !== null) {
      result.skipped += 1;
    }

    if (Array.isArray(frame.upd)) {
      for (const item of frame.upd) {
        if (!isObject(item) || typeof item.id !== "string") {
          result.skipped += 1;
          continue;
        }
        const obj = this.objects.get(item.id);
        if (!obj) {
          result.skipped += 1;
          continue;
        }
        const patch: Record<string, unknown> = {};
        let retyped = false;
        for (const [field, value] of Object.entries(item)) {
          if (field === "id" || value === undefined) continue;
          if (field === "object_type") {
            if (typeof value !== "string") continue;
            if (value !== obj.object_type) retyped = true;
          }
          patch[field] = value;
          obj[field] = value;
        }
        result.updated.push({ id: obj.id, patch, object: obj, retyped });
      }
    } else if (frame.upd !== undefined && frame.upd !== null) {
      result.skipped += 1;
    }
    return result;
  }
}
