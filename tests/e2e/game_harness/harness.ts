/**
 * Test entry for tests/e2e/test_game_client_logic.py: the game client's modules, bundled by the
 * test with esbuild (splitting on, like the real build, so the Phaser view is a lazily loaded
 * chunk) and exposed as `window.igymTest`. `window.igym` is the small part of the real global
 * that the game renderer uses (`state.game`, `gameObjects()`).
 */

import { colourToCss, parseColour } from "../../../frontend/src/game/colour";
import { COMMON_DEFAULTS, TYPE_DEFAULTS, fieldValue, numberField, pointsField } from "../../../frontend/src/game/fields";
import { KeyInput, isTextEntry, listenKeyboard, normaliseKey } from "../../../frontend/src/game/keys";
import {
  lerpAngle,
  poseAt,
  shortestAngleDelta,
  startMotion,
  tweenDuration,
  wrapAngle,
} from "../../../frontend/src/game/motion";
import { ObjectTable } from "../../../frontend/src/game/objects";
import { getRuntime, registerRuntime } from "../../../frontend/src/registry";
import {
  currentDrawnPose,
  currentGameObjects,
  formatClock,
  gameLabel,
  gymScene,
  parsePlayers,
  parseWaiting,
  playersText,
  waitingCountText,
} from "../../../frontend/src/scenes/gym";
import { Subscriptions } from "../../../frontend/src/subscriptions";

const violations: string[] = [];
document.addEventListener("securitypolicyviolation", (e) => {
  violations.push(`${e.violatedDirective} ${e.blockedURI}`);
});

(window as any).igym = { state: { game: null }, gameObjects: currentGameObjects, gameDrawnPose: currentDrawnPose };
(window as any).igymTest = {
  parseColour,
  colourToCss,
  COMMON_DEFAULTS,
  TYPE_DEFAULTS,
  fieldValue,
  numberField,
  pointsField,
  KeyInput,
  isTextEntry,
  listenKeyboard,
  normaliseKey,
  lerpAngle,
  poseAt,
  shortestAngleDelta,
  startMotion,
  tweenDuration,
  wrapAngle,
  ObjectTable,
  gymScene,
  registerRuntime,
  getRuntime,
  gameLabel,
  formatClock,
  parseWaiting,
  waitingCountText,
  parsePlayers,
  playersText,
  Subscriptions,
  violations,
};
