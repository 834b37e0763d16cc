/**
 * The `server` runtime's client (built in): the server steps the game and streams it
 * (docs/game-protocol.md). This module only talks: it sends `game_ready` once the view is ready
 * for each game the server names, forwards the participant's input as `input`, answers
 * `rtt_probe` with `rtt_echo`, and hands `game_status` and `frame` messages to the shell, which
 * draws them. After a reconnect (`welcome`), it sends `game_ready` and the held keys again.
 */

import type { InputPayload } from "../game/keys";
import type { GameShell } from "../game/shell";
import type { FrameMessage, GameStatusMessage, RttProbeMessage } from "../game/types";
import type { GameRuntime } from "../registry";

/** What the page's own delay is rounded to in `rtt_echo.page_delay_ms` (ms). */
const PAGE_DELAY_DECIMALS = 2;
/** How often a timer notes that the page's main thread is free (ms): a probe's wait in the page is
 * never reported as longer than the time since it last ran. */
const FREE_TICK_MS = 50;
/** The most `page_delay_ms` may say (the server refuses more). */
const MAX_PAGE_DELAY_MS = 60_000;

export const serverRuntime: GameRuntime = (shell: GameShell, ctx) => {
  const state = shell.state;
  let readyFor: string | null = null;
  let reconnected = false;
  let seq = 0;

  const maybeReady = (): void => {
    if (!shell.alive || !shell.viewReady || state.game_id === null || state.phase === "ended") return;
    if (readyFor === state.game_id) return;
    readyFor = state.game_id;
    state.ready_sent += 1;
    ctx.send({ type: "game_ready", game_id: state.game_id });
  };

  shell.setInputHandler((payload: InputPayload) => {
    seq += 1;
    ctx.send({ type: "input", game_id: state.game_id, seq, ...payload });
  });

  let lastGame: string | null = null;
  const offChange = shell.onChange((reason) => {
    if (state.game_id !== lastGame) {
      lastGame = state.game_id;
      readyFor = null;
    }
    if (reason === "status" && reconnected) {
      // A new connection: the server needs game_ready and our held keys again.
      reconnected = false;
      readyFor = null;
      maybeReady();
      shell.input.resync();
      return;
    }
    maybeReady();
  });

  // How late messages reach their handler: `lag` is the page's clock at the handler minus the
  // server's time `t` in the message, i.e. the network's one-way time, the wait in this page (a busy
  // main thread: drawing, scripts) and the clocks' offset. The offset and the network's time are
  // about the same for every message, so a probe's lag above the smallest lag of the game's frames
  // and probes so far is the time it waited in this page (frames, 30 a second, find the smallest
  // soon). An event's `timeStamp` does not show that wait: the browser creates the event when the
  // main thread gets to it. The estimate is capped by the time since the main thread last ran a
  // timer (it was busy at most that long), so that a downlink that turns slow, or clocks that drift
  // apart, are not taken for the page's wait: what the page cannot show it waited stays the network's.
  let lastFree = performance.now();
  const freeTimer = setInterval(() => {
    lastFree = performance.now();
  }, FREE_TICK_MS);
  let minLag = Infinity;
  let lagGame: string | null = null;
  const lagOf = (gameId: unknown, t: unknown): number | null => {
    if (typeof t !== "number" || !Number.isFinite(t) || gameId !== state.game_id) return null;
    if (lagGame !== state.game_id) {
      lagGame = state.game_id;
      minLag = Infinity;
    }
    const lag = performance.timeOrigin + performance.now() - t;
    if (lag < minLag) minLag = lag;
    return lag;
  };

  const onRttProbe = (msg: Partial<RttProbeMessage>): void => {
    // Answered at once and nothing else: the server measures the round trip, and subtracts
    // `page_delay_ms` so that its `rtt_ms` is the network's share (the page's is recorded apart).
    if (!shell.alive || state.game_id === null || msg.game_id !== state.game_id) return;
    if (typeof msg.n !== "number" || !Number.isInteger(msg.n)) return;
    const echo: Record<string, unknown> = { type: "rtt_echo", game_id: state.game_id, n: msg.n };
    const lag = lagOf(msg.game_id, msg.t);
    if (lag !== null) {
      const waited = Math.min(lag - minLag, performance.now() - lastFree, MAX_PAGE_DELAY_MS);
      echo.page_delay_ms = Number(Math.max(0, waited).toFixed(PAGE_DELAY_DECIMALS));
    }
    ctx.send(echo);
    state.rtt_echoes += 1;
  };

  const offs = [
    ctx.onMessage("rtt_probe", onRttProbe),
    ctx.onMessage("game_status", (msg: Partial<GameStatusMessage>) => shell.applyStatus(msg)),
    ctx.onMessage("frame", (msg: Partial<FrameMessage>) => {
      lagOf(msg.game_id, msg.t);
      shell.applyFrame(msg);
    }),
    ctx.onMessage("welcome", () => {
      reconnected = true;
    }),
  ];

  return {
    destroy() {
      clearInterval(freeTimer);
      offChange();
      for (const off of offs) off();
    },
  };
};
