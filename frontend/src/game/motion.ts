/**
 * Interpolation maths for object motion between frames (no Phaser, no DOM).
 *
 * When a frame moves an object, the view glides its position and angle from where it is drawn
 * now to the new target over the object's `tween_ms` (null: one frame interval, 0: jump).
 * Angles take the shortest way round (350° → 10° turns +20°, not −340°).
 */

export interface Pose {
  x: number;
  y: number;
  angle: number;
}

export interface Motion {
  from: Pose;
  /** The target; `to.angle` is unwrapped (from.angle + shortest delta), so it may lie outside ±180. */
  to: Pose;
  start: number;
  duration: number;
}

/** The signed shortest turn from `from` to `to` in degrees, in (−180, 180]. */
export function shortestAngleDelta(from: number, to: number): number {
  let d = (to - from) % 360;
  if (d > 180) d -= 360;
  else if (d <= -180) d += 360;
  return d;
}

export function lerp(a: number, b: number, t: number): number {
  return a + (b - a) * t;
}

/** The angle a fraction `t` (0–1) of the shortest way from `from` to `to`. */
export function lerpAngle(from: number, to: number, t: number): number {
  return from + shortestAngleDelta(from, to) * t;
}

/** Degrees into [−180, 180). */
export function wrapAngle(angle: number): number {
  const a = (((angle + 180) % 360) + 360) % 360;
  return a - 180;
}

/** How long a move takes: `tween_ms` null/absent → one frame interval, 0 or less → 0 (jump). */
export function tweenDuration(tweenMs: unknown, fps: number): number {
  if (tweenMs === null || tweenMs === undefined) return fps > 0 ? 1000 / fps : 0;
  if (typeof tweenMs !== "number" || !Number.isFinite(tweenMs) || tweenMs <= 0) return 0;
  return tweenMs;
}

/** A motion from the pose drawn now to `target`, starting at `now`. */
export function startMotion(current: Pose, target: Pose, now: number, duration: number): Motion {
  return {
    from: { ...current },
    to: { x: target.x, y: target.y, angle: current.angle + shortestAngleDelta(current.angle, target.angle) },
    start: now,
    duration,
  };
}

/** The pose of a motion at `now`, and whether it has arrived. */
export function poseAt(m: Motion, now: number): { pose: Pose; done: boolean } {
  const t = m.duration > 0 ? (now - m.start) / m.duration : 1;
  if (t >= 1) return { pose: { ...m.to }, done: true };
  const k = t <= 0 ? 0 : t;
  return {
    pose: {
      x: lerp(m.from.x, m.to.x, k),
      y: lerp(m.from.y, m.to.y, k),
      angle: lerp(m.from.angle, m.to.angle, k),
    },
    done: false,
  };
}
