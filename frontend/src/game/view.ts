/**
 * The Phaser side of a game scene: draws the object table and rgb_array frames.
 *
 * This module (and Phaser with it) is a separate chunk that `scenes/gym.ts` loads with
 * `import()` when a game scene mounts, so survey pages never download Phaser.
 *
 * - The game keeps the logical canvas size (`canvas.width × canvas.height`) as its world, and
 *   draws at the displayed size times devicePixelRatio: the camera zooms the world onto the
 *   drawing buffer, so shapes and text stay crisp at any window size.
 * - Images load as `<img>` elements (`loader.imageLoadType: "HTMLImageElement"`), not blob: URLs,
 *   which the page's CSP (`img-src 'self' data: https:`) would refuse.
 * - Phaser's own input is off: keys are handled by `game/keys.ts` on the window.
 */

import * as Phaser from "phaser";
import { parseColour } from "./colour";
import { type Motion, type Pose, poseAt, startMotion, tweenDuration } from "./motion";
import { fieldValue, numberField, optionalNumberField, pointsField } from "./fields";
import type { AppliedFrame, RenderObject } from "./objects";
import type { AssetSpec, GameView, GameViewOptions } from "./types";

const MISSING_TEXTURE = "igym-missing";
const FRAME_TEXTURE = "igym-frame";
const WHITE = 0xffffff;

type Drawable =
  | Phaser.GameObjects.Rectangle
  | Phaser.GameObjects.Arc
  | Phaser.GameObjects.Graphics
  | Phaser.GameObjects.Text
  | Phaser.GameObjects.Image;

interface Entry {
  type: string;
  go: Drawable;
  desc: RenderObject;
  motion: Motion | null;
}

/** Fields whose change needs the object's look redrawn (everything but pose/alpha/depth/tween). */
const POSE_FIELDS = new Set(["x", "y", "angle"]);
const CHEAP_FIELDS = new Set(["x", "y", "angle", "alpha", "depth", "tween_ms", "owner", "id"]);

function colourOr(value: unknown, fallback: number): number {
  return parseColour(value) ?? fallback;
}

/** A nullable colour field: null/absent-with-null-default → null (no fill / no stroke). */
function nullableColour(obj: RenderObject, field: string): number | null {
  return parseColour(fieldValue(obj, field));
}

function targetPose(obj: RenderObject): Pose {
  return { x: numberField(obj, "x"), y: numberField(obj, "y"), angle: numberField(obj, "angle") };
}

class GameScene extends Phaser.Scene {
  readonly failed: string[] = [];
  private readonly entries = new Map<string, Entry>();
  private readonly moving = new Set<Entry>();
  private frameImage: Phaser.GameObjects.Image | null = null;
  private frameTexture: Phaser.Textures.CanvasTexture | null = null;
  private textResolution = 1;
  private readonly warnedKeys = new Set<string>();
  /** The participant's seat: their own objects (`owner` equal to it) never wait for a tween. */
  ownSeat: string | null;

  constructor(
    readonly opts: GameViewOptions,
    private readonly onReady: () => void,
  ) {
    super({ key: "igym-game" });
    this.ownSeat = opts.ownSeat;
  }

  preload(): void {
    this.load.on(Phaser.Loader.Events.FILE_LOAD_ERROR, (file: Phaser.Loader.File) => {
      const url = typeof file.src === "string" && file.src ? file.src : String(file.url);
      this.failed.push(url);
      console.error(`igym: the game asset "${file.key}" could not be loaded from ${url}`);
    });
    for (const spec of this.opts.assets) this.queueAsset(spec);
  }

  private queueAsset(spec: AssetSpec): void {
    if (!spec || typeof spec.key !== "string" || typeof spec.url !== "string") {
      console.error("igym: ignoring a malformed game asset spec", spec);
      return;
    }
    switch (spec.type) {
      case "image":
        this.load.image(spec.key, spec.url);
        break;
      case "spritesheet":
        this.load.spritesheet(spec.key, spec.url, {
          frameWidth: Number(spec.frame_width) || 32,
          frameHeight: Number(spec.frame_height) || Number(spec.frame_width) || 32,
        });
        break;
      case "atlas":
        if (typeof spec.atlas_url !== "string") {
          console.error(`igym: the atlas asset "${spec.key}" has no atlas_url`);
          return;
        }
        this.load.atlas(spec.key, spec.url, spec.atlas_url);
        break;
      default:
        console.error(`igym: unknown game asset type "${String(spec.type)}" for "${spec.key}"`);
    }
  }

  create(): void {
    const g = this.make.graphics({}, false);
    g.fillStyle(0x9aa1ad, 1);
    g.fillRect(0, 0, 32, 32);
    g.lineStyle(2, 0xd6336c, 1);
    g.strokeRect(1, 1, 30, 30);
    g.lineBetween(2, 2, 30, 30);
    g.lineBetween(30, 2, 2, 30);
    g.generateTexture(MISSING_TEXTURE, 32, 32);
    g.destroy();
    this.cameras.main.setBackgroundColor(colourOr(this.opts.background, 0x000000));
    this.onReady();
  }

  override update(): void {
    if (this.moving.size === 0) return;
    const now = performance.now();
    for (const entry of this.moving) {
      if (!entry.motion) {
        this.moving.delete(entry);
        continue;
      }
      const { pose, done } = poseAt(entry.motion, now);
      entry.go.setPosition(pose.x, pose.y);
      entry.go.setAngle(pose.angle);
      if (done) {
        entry.motion = null;
        this.moving.delete(entry);
      }
    }
  }

  // ---- objects ----------------------------------------------------------------------------

  reset(objects: readonly RenderObject[]): void {
    for (const entry of this.entries.values()) entry.go.destroy();
    this.entries.clear();
    this.moving.clear();
    for (const obj of objects) this.add_(obj);
  }

  apply(frame: AppliedFrame): void {
    if (frame.keyframe) {
      this.reset(frame.added);
      return;
    }
    for (const id of frame.removed) this.remove(id);
    for (const obj of frame.added) this.add_(obj);
    const now = performance.now();
    for (const u of frame.updated) {
      const entry = this.entries.get(u.id);
      if (!entry || u.retyped) {
        this.remove(u.id);
        this.add_(u.object);
        continue;
      }
      this.update_(entry, u.patch, now);
    }
  }

  private remove(id: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.go.destroy();
    this.moving.delete(entry);
    this.entries.delete(id);
  }

  private add_(obj: RenderObject): void {
    this.remove(obj.id);
    const go = this.build(obj);
    if (!go) return;
    const entry: Entry = { type: obj.object_type, go, desc: obj, motion: null };
    this.entries.set(obj.id, entry);
    const pose = targetPose(obj);
    go.setPosition(pose.x, pose.y);
    go.setAngle(pose.angle);
    go.setAlpha(numberField(obj, "alpha", 1));
    go.setDepth(numberField(obj, "depth"));
  }

  private update_(entry: Entry, patch: Record<string, unknown>, now: number): void {
    const obj = entry.desc;
    let restyle = false;
    let moved = false;
    for (const field of Object.keys(patch)) {
      if (POSE_FIELDS.has(field)) moved = true;
      else if (!CHEAP_FIELDS.has(field)) restyle = true;
    }
    if (restyle) this.style(entry.go, obj, patch);
    if ("alpha" in patch) entry.go.setAlpha(numberField(obj, "alpha", 1));
    if ("depth" in patch) entry.go.setDepth(numberField(obj, "depth"));
    if (!moved) return;
    const target = targetPose(obj);
    // The participant's own objects are drawn where the frame puts them at once: gliding there over
    // a frame interval would show the effect of their key one frame late.
    const duration =
      this.opts.interpolate && !this.isOwn(obj) ? tweenDuration(fieldValue(obj, "tween_ms"), this.opts.fps) : 0;
    if (duration <= 0) {
      entry.motion = null;
      this.moving.delete(entry);
      entry.go.setPosition(target.x, target.y);
      entry.go.setAngle(target.angle);
      return;
    }
    // Glide from where the object is drawn now (mid-way through a previous move, maybe).
    const current = entry.motion ? poseAt(entry.motion, now).pose : { x: entry.go.x, y: entry.go.y, angle: entry.go.angle };
    entry.motion = startMotion(current, target, now, duration);
    this.moving.add(entry);
  }

  /** Where object `id` is drawn now (its Phaser object's pose, mid-glide maybe), or null. */
  drawnPose(id: string): Pose | null {
    const entry = this.entries.get(id);
    return entry ? { x: entry.go.x, y: entry.go.y, angle: entry.go.angle } : null;
  }

  private isOwn(obj: RenderObject): boolean {
    const owner = obj.owner;
    return this.ownSeat !== null && owner !== null && owner !== undefined && String(owner) === this.ownSeat;
  }

  private build(obj: RenderObject): Drawable | null {
    let go: Drawable;
    switch (obj.object_type) {
      case "rect":
        go = this.add.rectangle(0, 0, 1, 1);
        break;
      case "circle":
        go = this.add.circle(0, 0, 1);
        break;
      case "line":
      case "polygon":
        go = this.add.graphics();
        break;
      case "text":
        go = this.add.text(0, 0, "");
        (go as Phaser.GameObjects.Text).setResolution(this.textResolution);
        break;
      case "sprite":
        go = this.add.image(0, 0, MISSING_TEXTURE);
        break;
      default:
        if (!this.warnedKeys.has(`type:${obj.object_type}`)) {
          this.warnedKeys.add(`type:${obj.object_type}`);
          console.warn(`igym: unknown render object type "${obj.object_type}" (object "${obj.id}")`);
        }
        return null;
    }
    this.style(go, obj, null);
    return go;
  }

  /** Apply the look of `obj` (`patch`: the fields that changed, or null for everything). */
  private style(go: Drawable, obj: RenderObject, patch: Record<string, unknown> | null): void {
    switch (obj.object_type) {
      case "rect": {
        const r = go as Phaser.GameObjects.Rectangle;
        r.setSize(Math.max(0, numberField(obj, "width")), Math.max(0, numberField(obj, "height")));
        this.shapeStyle(r, obj);
        break;
      }
      case "circle": {
        const c = go as Phaser.GameObjects.Arc;
        c.setRadius(Math.max(0, numberField(obj, "radius")));
        this.shapeStyle(c, obj);
        break;
      }
      case "line": {
        const g = go as Phaser.GameObjects.Graphics;
        g.clear();
        const points = pointsField(obj);
        const width = numberField(obj, "line_width", 2);
        if (points.length >= 2 && width > 0) {
          g.lineStyle(width, colourOr(fieldValue(obj, "color"), WHITE), 1);
          g.beginPath();
          g.moveTo(points[0]![0], points[0]![1]);
          for (let i = 1; i < points.length; i++) g.lineTo(points[i]![0], points[i]![1]);
          g.strokePath();
        }
        break;
      }
      case "polygon": {
        const g = go as Phaser.GameObjects.Graphics;
        g.clear();
        const points = pointsField(obj).map(([x, y]) => new Phaser.Math.Vector2(x, y));
        if (points.length >= 3) {
          const fill = nullableColour(obj, "fill");
          const stroke = nullableColour(obj, "stroke");
          const width = numberField(obj, "line_width", 1);
          if (fill !== null) {
            g.fillStyle(fill, 1);
            g.fillPoints(points, true);
          }
          if (stroke !== null && width > 0) {
            g.lineStyle(width, stroke, 1);
            g.strokePoints(points, true, true);
          }
        }
        break;
      }
      case "text": {
        const t = go as Phaser.GameObjects.Text;
        const all = patch === null;
        if (all || "font_size" in patch || "font_family" in patch || "color" in patch || "align" in patch) {
          const align = String(fieldValue(obj, "align") ?? "left");
          t.setStyle({
            fontFamily: String(fieldValue(obj, "font_family") ?? "sans-serif"),
            fontSize: `${Math.max(1, numberField(obj, "font_size", 16))}px`,
            color: typeof fieldValue(obj, "color") === "string" ? String(fieldValue(obj, "color")) : "#ffffff",
            align: ["left", "center", "right", "justify"].includes(align) ? align : "left",
          });
        }
        if (all || "text" in patch) {
          const text = fieldValue(obj, "text");
          t.setText(text === null || text === undefined ? "" : String(text));
        }
        if (all || "origin_x" in patch || "origin_y" in patch) {
          t.setOrigin(numberField(obj, "origin_x"), numberField(obj, "origin_y"));
        }
        break;
      }
      case "sprite":
        this.spriteStyle(go as Phaser.GameObjects.Image, obj, patch);
        break;
    }
  }

  private shapeStyle(s: Phaser.GameObjects.Rectangle | Phaser.GameObjects.Arc, obj: RenderObject): void {
    const fill = nullableColour(obj, "fill");
    const stroke = nullableColour(obj, "stroke");
    const width = numberField(obj, "line_width", 1);
    if (fill !== null) s.setFillStyle(fill, 1);
    else s.setFillStyle();
    if (stroke !== null && width > 0) s.setStrokeStyle(width, stroke, 1);
    else s.setStrokeStyle();
  }

  private spriteStyle(img: Phaser.GameObjects.Image, obj: RenderObject, patch: Record<string, unknown> | null): void {
    const all = patch === null;
    if (all || "image" in patch || "frame" in patch) {
      const key = String(fieldValue(obj, "image") ?? "");
      const rawFrame = fieldValue(obj, "frame");
      const frame = typeof rawFrame === "string" || typeof rawFrame === "number" ? rawFrame : undefined;
      const texture = this.textures.exists(key) ? this.textures.get(key) : null;
      if (texture && (frame === undefined || texture.has(String(frame)))) {
        img.setTexture(key, frame);
      } else {
        const what = texture ? `frame ${String(frame)} of "${key}"` : `"${key}"`;
        if (!this.warnedKeys.has(what)) {
          this.warnedKeys.add(what);
          console.warn(`igym: sprite "${obj.id}" uses ${what}, which is not loaded: drawing a placeholder`);
        }
        img.setTexture(MISSING_TEXTURE);
      }
    }
    const w = optionalNumberField(obj, "width");
    const h = optionalNumberField(obj, "height");
    const fw = img.frame.realWidth || 1;
    const fh = img.frame.realHeight || 1;
    if (w !== null && h !== null) img.setDisplaySize(w, h);
    else if (w !== null) img.setScale(w / fw);
    else if (h !== null) img.setScale(h / fh);
    else img.setScale(1);
    const tint = nullableColour(obj, "tint");
    if (tint !== null) img.setTint(tint);
    else img.clearTint();
    img.setFlipX(fieldValue(obj, "flip_x") === true);
  }

  // ---- rgb_array --------------------------------------------------------------------------

  showImage(bitmap: ImageBitmap): void {
    const bw = bitmap.width;
    const bh = bitmap.height;
    if (!this.frameTexture || this.frameTexture.width !== bw || this.frameTexture.height !== bh) {
      this.frameImage?.destroy();
      this.frameImage = null;
      if (this.frameTexture) this.textures.remove(FRAME_TEXTURE);
      this.frameTexture = this.textures.createCanvas(FRAME_TEXTURE, bw, bh);
      if (!this.frameTexture) {
        bitmap.close();
        return;
      }
      const { width, height } = this.opts;
      const scale = Math.min(width / bw, height / bh);
      this.frameImage = this.add.image(width / 2, height / 2, FRAME_TEXTURE).setScale(scale).setDepth(-1e9);
    }
    const ctx2d = this.frameTexture.getContext();
    ctx2d.clearRect(0, 0, bw, bh);
    ctx2d.drawImage(bitmap, 0, 0);
    bitmap.close();
    this.frameTexture.refresh();
  }

  // ---- size -------------------------------------------------------------------------------

  fitCamera(zoom: number): void {
    const cam = this.cameras.main;
    cam.setSize(this.scale.width, this.scale.height);
    cam.setZoom(zoom);
    cam.centerOn(this.opts.width / 2, this.opts.height / 2);
    // Text is drawn to its own texture: match the zoom so it stays sharp.
    const resolution = Math.min(4, Math.max(1, Math.round(zoom * 4) / 4));
    if (resolution !== this.textResolution) {
      this.textResolution = resolution;
      for (const entry of this.entries.values()) {
        if (entry.go instanceof Phaser.GameObjects.Text) entry.go.setResolution(resolution);
      }
    }
  }

  destroyAll(): void {
    this.entries.clear();
    this.moving.clear();
  }
}

/** Create the Phaser game in `options.parent`; resolves once the assets are loaded. */
export function createGameView(options: GameViewOptions): Promise<GameView> {
  return new Promise<GameView>((resolve, reject) => {
    let game: Phaser.Game | null = null;
    let destroyed = false;
    let settled = false;
    let cssSize: [number, number] = [options.width, options.height];

    const scene = new GameScene(options, () => {
      if (!game || settled) return;
      settled = true;
      const rendererType = game.renderer instanceof Phaser.Renderer.Canvas.CanvasRenderer ? "canvas" : "webgl";
      const view: GameView = {
        rendererType,
        get failedAssets() {
          return scene.failed;
        },
        reset: (objects) => {
          if (!destroyed) scene.reset(objects);
        },
        apply: (frame) => {
          if (!destroyed) scene.apply(frame);
        },
        setOwnSeat: (seat) => {
          scene.ownSeat = seat;
        },
        drawnPose: (id) => (destroyed ? null : scene.drawnPose(id)),
        showImage: (bitmap) => {
          if (destroyed) bitmap.close();
          else scene.showImage(bitmap);
        },
        resize: (w, h) => {
          cssSize = [w, h];
          if (!destroyed && game) fit(game, scene, w, h);
        },
        destroy: () => {
          if (destroyed || !game) return;
          destroyed = true;
          destroyGame(game, scene);
        },
      };
      fit(game, scene, cssSize[0], cssSize[1]);
      resolve(view);
    });

    try {
      game = new Phaser.Game({
        type: Phaser.AUTO,
        parent: options.parent,
        width: options.width,
        height: options.height,
        backgroundColor: colourOr(options.background, 0x000000),
        banner: false,
        autoFocus: false,
        disableContextMenu: false,
        input: { keyboard: false, mouse: false, touch: false, gamepad: false },
        audio: { noAudio: true },
        scale: { mode: Phaser.Scale.NONE, autoRound: false },
        loader: { imageLoadType: "HTMLImageElement" },
        antialias: true,
        scene,
      });
    } catch (err) {
      settled = true;
      reject(err);
      return;
    }
    options.signal?.addEventListener("abort", () => {
      if (settled || !game) return;
      settled = true;
      destroyed = true;
      destroyGame(game, scene);
      reject(new DOMException("The game scene was left before it was ready", "AbortError"));
    });
  });
}

function fit(game: Phaser.Game, scene: GameScene, cssWidth: number, cssHeight: number): void {
  const dpr = Math.min(3, Math.max(1, window.devicePixelRatio || 1));
  const w = Math.max(1, Math.round(cssWidth * dpr));
  const h = Math.max(1, Math.round(cssHeight * dpr));
  if (game.scale.width !== w || game.scale.height !== h) game.scale.resize(w, h);
  const canvas = game.canvas;
  canvas.style.width = `${cssWidth}px`;
  canvas.style.height = `${cssHeight}px`;
  scene.fitCamera(Math.min(w / scene.opts.width, h / scene.opts.height));
}

/**
 * Phaser destroys a game at its next step; a hidden page has no steps, so finish it ourselves,
 * and free the WebGL context at once rather than when the garbage collector gets to it.
 */
function destroyGame(game: Phaser.Game, scene: GameScene): void {
  scene.destroyAll();
  const gl = (game.renderer as { gl?: WebGLRenderingContext } | null)?.gl ?? null;
  game.destroy(true, false);
  window.setTimeout(() => {
    const internals = game as unknown as { pendingDestroy: boolean; runDestroy(): void };
    try {
      if (internals.pendingDestroy) internals.runDestroy();
    } catch (err) {
      console.debug("igym: finishing the Phaser game's destruction failed", err);
    }
    try {
      gl?.getExtension("WEBGL_lose_context")?.loseContext();
    } catch {
      // the context is gone already
    }
  }, 250);
}
