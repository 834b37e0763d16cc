/**
 * The texts of a game scene: key names and the game's accessible label, the waiting room's clock
 * and count, and the players line; with the parsers of the `game_status` fields they show
 * (docs/game-protocol.md). Pure functions, no DOM.
 */

import type { PlayerInfo, WaitingInfo } from "./types";

const PLAYER_STATUS: Record<string, string> = { connected: "connected", away: "connection lost", bot: "computer player" };

const KEY_NAMES: Record<string, string> = {
  " ": "Space",
  ArrowLeft: "Left arrow",
  ArrowRight: "Right arrow",
  ArrowUp: "Up arrow",
  ArrowDown: "Down arrow",
  Enter: "Enter",
  Escape: "Escape",
  Tab: "Tab",
  Backspace: "Backspace",
  Shift: "Shift",
  Control: "Ctrl",
  Alt: "Alt",
  Meta: "Meta",
};

export function keyLabel(key: string): string {
  return KEY_NAMES[key] ?? (key.length === 1 ? key.toUpperCase() : key);
}

/** "Game: use the keys Left arrow, Right arrow and Space to play". */
export function gameLabel(keys: readonly string[]): string {
  if (keys.length === 0) return "Game";
  const names = keys.map(keyLabel);
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]!}`;
  return `Game: use the ${names.length === 1 ? "key" : "keys"} ${list} to play`;
}

/** "0:07", "12:05": minutes and seconds (whole seconds, rounded down). */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor((Number.isFinite(ms) ? ms : 0) / 1000));
  const minutes = Math.floor(total / 60);
  const seconds = total % 60;
  return `${minutes}:${seconds < 10 ? "0" : ""}${seconds}`;
}

export function nonNegativeInt(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.floor(value) : null;
}

/** A `game_status.waiting` as the client uses it, or null when it is not one. */
export function parseWaiting(value: unknown): WaitingInfo | null {
  if (typeof value !== "object" || value === null) return null;
  const w = value as Record<string, unknown>;
  return {
    count: nonNegativeInt(w.count),
    group_size: nonNegativeInt(w.group_size) ?? 0,
    waited_ms: nonNegativeInt(w.waited_ms) ?? 0,
    timeout_ms: nonNegativeInt(w.timeout_ms) ?? 0,
  };
}

/** "2 of 3 participants here"; without a count, "Waiting for a group of 3"; or "". */
export function waitingCountText(waiting: WaitingInfo | null): string {
  if (!waiting) return "";
  const size = waiting.group_size;
  if (waiting.count !== null) {
    if (size > 0) return `${waiting.count} of ${size} participants here`;
    return `${waiting.count} ${waiting.count === 1 ? "participant" : "participants"} here`;
  }
  return size > 0 ? `Waiting for a group of ${size}` : "";
}

/** The valid entries of `game_status.players`, or null when it is not a list. */
export function parsePlayers(value: unknown): PlayerInfo[] | null {
  if (!Array.isArray(value)) return null;
  const players: PlayerInfo[] = [];
  for (const p of value) {
    if (typeof p !== "object" || p === null) continue;
    const { seat, you, status } = p as Record<string, unknown>;
    if ((typeof seat !== "string" && typeof seat !== "number") || String(seat) === "") continue;
    players.push({
      seat: String(seat),
      you: you === true,
      status: status === "away" || status === "bot" ? status : "connected",
    });
  }
  return players;
}

/**
 * "You: left · Partner: right (connected)": this participant first, then the others in the
 * server's order; several others are "Partner 1", "Partner 2", …
 */
export function playersText(players: readonly PlayerInfo[] | null): string {
  if (!players || players.length === 0) return "";
  const others = players.filter((p) => !p.you);
  const named = others.map((p, i) => {
    const name = others.length === 1 ? "Partner" : `Partner ${i + 1}`;
    return `${name}: ${p.seat} (${PLAYER_STATUS[p.status] ?? p.status})`;
  });
  return [...players.filter((p) => p.you).map((p) => `You: ${p.seat}`), ...named].join(" · ");
}
