/**
 * The admin dashboard (served at /admin after login; see docs/admin.md).
 *
 * Everything comes from the admin WebSocket (/admin/ws, authenticated by the HttpOnly session
 * cookie): a snapshot about once a second, and the replies to actions. Built with `h()` only: no
 * text the server sends (scene ids, logged errors, pause messages) becomes HTML.
 */

import { clear, h } from "../dom";
import { drawBars } from "./chart";
import type { ActionReply, ExportStatus, GameRow, Snapshot } from "./types";

const root = document.getElementById("admin-root") as HTMLElement;

const status = h("p", { class: "admin-status", "data-testid": "admin-status" }, "Connecting…");
const pausedBanner = h("p", { class: "admin-paused", "data-testid": "arrivals-paused", hidden: true });
const feedback = h("p", { class: "admin-feedback", "data-testid": "action-feedback", role: "status" });

const counts = h("dl", { class: "admin-counts", "data-testid": "participants" });
const scenesBody = h("tbody", { "data-testid": "scenes" });
const roomsBody = h("tbody", { "data-testid": "waiting-rooms" });
const gamesBody = h("tbody", { "data-testid": "games" });
const gamesNote = h("p", { class: "admin-note" });
const outcomesBody = h("tbody", { "data-testid": "outcomes" });
const arrivalsChart = h("canvas", { class: "admin-chart", "data-testid": "arrivals-chart" }) as HTMLCanvasElement;
const completionsChart = h("canvas", { class: "admin-chart", "data-testid": "completions-chart" }) as HTMLCanvasElement;
const errorsList = h("ol", { class: "admin-errors", "data-testid": "errors" });
const actionsList = h("ol", { class: "admin-actions", "data-testid": "actions" });

const pauseMessage = h("input", {
  type: "text",
  maxlength: 500,
  placeholder: "What new participants see (optional)",
  "data-testid": "pause-message",
}) as HTMLInputElement;
const exportButton = h(
  "button",
  { type: "button", "data-testid": "prepare-export", onclick: () => send({ type: "export_data" }) },
  "Prepare the tables",
) as HTMLButtonElement;
const exportStatus = h("p", { class: "admin-note", "data-testid": "export-status" });
const exportLink = h("a", { href: "/admin/download", "data-testid": "download-tables", hidden: true });
const pauseButton = h("button", { type: "button", "data-testid": "pause-arrivals", onclick: () => pauseOrResume() }, "Pause new arrivals");

let socket: WebSocket | null = null;
let latest: Snapshot | null = null;
let retryMs = 1000;

function panel(title: string, ...children: (Node | string)[]): HTMLElement {
  return h("section", { class: "admin-panel" }, h("h2", {}, title), ...children);
}

/** A panel across the whole grid (a table whose last column, the game's End button, must show). */
function widePanel(title: string, ...children: (Node | string)[]): HTMLElement {
  return h("section", { class: "admin-panel admin-wide" }, h("h2", {}, title), ...children);
}

function table(headings: string[], body: HTMLElement): HTMLElement {
  return h("table", {}, h("thead", {}, h("tr", {}, ...headings.map((t) => h("th", {}, t)))), body);
}

function layout(): void {
  clear(root);
  root.append(
    status,
    pausedBanner,
    feedback,
    h(
      "div",
      { class: "admin-grid" },
      panel("Participants", counts),
      panel("Arrivals", h("p", { class: "admin-note" }, "New participants per minute, last hour"), arrivalsChart),
      panel("Completions", h("p", { class: "admin-note" }, "Finished participants per minute, last hour"), completionsChart),
      panel("By scene", table(["Scene", "Participants", "Connected"], scenesBody)),
      panel("Waiting rooms", table(["Scene", "Waiting", "Group size"], roomsBody)),
      panel("Completions by outcome", table(["Outcome", "Participants"], outcomesBody)),
      widePanel("Running games", gamesNote, table(["Game", "Scene", "Players", "Phase", "FPS", "RTT (ms)", ""], gamesBody)),
      panel("New arrivals", h("div", { class: "admin-pause" }, pauseMessage, pauseButton)),
      panel(
        "Data",
        h("p", { class: "admin-note" }, "The tables igym export writes (one Parquet file per record type), made in the background."),
        h("div", { class: "admin-pause" }, exportButton, exportLink),
        exportStatus,
      ),
      panel("Recent errors and warnings", errorsList),
      panel("Admin actions", actionsList),
    ),
  );
}

function row(...cells: (Node | string | number)[]): HTMLElement {
  return h("tr", {}, ...cells.map((c) => h("td", {}, typeof c === "number" ? String(c) : c)));
}

function replaceRows(body: HTMLElement, rows: HTMLElement[], empty: string, columns: number): void {
  clear(body);
  if (rows.length) body.append(...rows);
  else body.append(h("tr", {}, h("td", { colspan: columns, class: "admin-empty" }, empty)));
}

function gameRow(game: GameRow): HTMLElement {
  const rtt = Object.entries(game.rtt_ms ?? {}).map(([pid, ms]) => h("div", {}, `${pid}: ${ms === null ? "–" : ms}`));
  const fps = `${game.measured_fps ?? "–"} / ${game.fps ?? "?"}`;
  const end = h(
    "button",
    {
      type: "button",
      "data-testid": "end-game",
      "data-game-id": game.game_id,
      onclick: () => {
        if (window.confirm(`End game ${game.game_id}? Its players get the scene's partner-left ending.`)) {
          send({ type: "end_game", game_id: game.game_id });
        }
      },
    },
    "End game",
  );
  return h(
    "tr",
    { "data-game-id": game.game_id },
    h("td", {}, game.game_id),
    h("td", {}, game.scene_id),
    h("td", {}, ...game.participant_ids.map((pid) => h("div", {}, pid))),
    h("td", {}, game.phase ?? ""),
    h("td", {}, fps),
    h("td", {}, ...rtt),
    h("td", {}, end),
  );
}

function render(snapshot: Snapshot): void {
  latest = snapshot;
  const p = snapshot.participants;
  clear(counts);
  for (const [label, value, id] of [
    ["Arrived", p.arrivals, "arrivals"],
    ["In memory", p.in_memory, "in-memory"],
    ["Connected", p.connected, "connected"],
    ["Finished", p.finished, "finished"],
  ] as const) {
    counts.append(h("dt", {}, label), h("dd", { "data-testid": `count-${id}` }, String(value)));
  }
  replaceRows(
    scenesBody,
    snapshot.scenes.map((s) => {
      const tr = row(s.scene_id, s.participants, s.connected);
      tr.setAttribute("data-scene-id", s.scene_id);
      return tr;
    }),
    "No scenes",
    3,
  );
  replaceRows(
    roomsBody,
    snapshot.waiting_rooms.map((r) => row(r.instance ? `${r.scene_id} #${r.instance + 1}` : r.scene_id, r.waiting, r.group_size)),
    "Nobody is waiting",
    3,
  );
  replaceRows(gamesBody, snapshot.games.map(gameRow), "No game is running", 7);
  gamesNote.textContent =
    snapshot.games_total > snapshot.games.length ? `${snapshot.games.length} of ${snapshot.games_total} games shown.` : "";
  replaceRows(
    outcomesBody,
    Object.entries(snapshot.outcomes)
      .sort((a, b) => b[1] - a[1])
      .map(([outcome, n]) => {
        const tr = row(outcome, n);
        tr.setAttribute("data-outcome", outcome);
        return tr;
      }),
    "Nobody has finished yet",
    2,
  );
  drawBars(arrivalsChart, snapshot.series.arrivals, "#24476b");
  drawBars(completionsChart, snapshot.series.completions, "#2e7d4f");
  clear(errorsList);
  for (const e of snapshot.errors.slice().reverse()) {
    const detail = Object.entries(e.detail)
      .map(([k, v]) => `${k}=${String(v)}`)
      .join(" ");
    errorsList.append(h("li", { class: `admin-${e.level}` }, `${e.at} ${e.level} ${e.event} `, h("span", { class: "admin-detail" }, detail)));
  }
  if (!snapshot.errors.length) errorsList.append(h("li", { class: "admin-empty" }, "None"));
  clear(actionsList);
  for (const a of snapshot.actions) {
    actionsList.append(h("li", {}, `${a.at} ${a.admin_session} ${a.action} ${Object.keys(a.detail).length ? JSON.stringify(a.detail) : ""}`));
  }
  if (!snapshot.actions.length) actionsList.append(h("li", { class: "admin-empty" }, "None"));
  renderExport(snapshot.export);
  pausedBanner.hidden = !snapshot.arrivals_paused;
  pausedBanner.textContent = snapshot.arrivals_paused ? `New arrivals are paused. They see: “${snapshot.pause_message ?? ""}”` : "";
  pauseButton.textContent = snapshot.arrivals_paused ? "Resume new arrivals" : "Pause new arrivals";
  status.textContent = `Live · ${snapshot.at} · up ${Math.round(snapshot.uptime_s)} s · ${snapshot.admins} admin(s) connected · ${snapshot.errors_total} warnings/errors logged`;
}

function megabytes(bytes: number): string {
  return bytes < 1048576 ? `${Math.max(1, Math.round(bytes / 1024))} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

function renderExport(status: ExportStatus): void {
  if (!status.available) {
    exportButton.disabled = true;
    exportLink.hidden = true;
    exportStatus.textContent = "No exporter is installed (igym-parquet): download the raw files (top right).";
    return;
  }
  exportButton.disabled = status.state === "running";
  const ready = status.ready;
  exportLink.hidden = !ready;
  exportLink.textContent = ready ? `Download the tables (.zip, ${ready.files.length} files, ${megabytes(ready.bytes)}, made ${ready.finished_at})` : "";
  if (status.state === "running") exportStatus.textContent = `Being made (started ${status.started_at} by ${status.admin_session})…`;
  else if (status.state === "failed") exportStatus.textContent = `The last export failed: ${status.message ?? ""}`;
  else if (status.state === "ready") exportStatus.textContent = `Made in ${status.duration_s ?? "?"} s. Prepare again for the data up to now.`;
  else exportStatus.textContent = "";
}

function pauseOrResume(): void {
  if (latest?.arrivals_paused) send({ type: "resume_arrivals" });
  else send({ type: "pause_arrivals", message: pauseMessage.value });
}

function send(message: Record<string, unknown>): void {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(message));
    feedback.textContent = "Sent…";
  } else {
    feedback.textContent = "Not connected; try again in a moment.";
  }
}

function connect(): void {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/admin/ws`);
  socket = ws;
  ws.onopen = () => {
    retryMs = 1000;
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as Snapshot | ActionReply;
    if (message.type === "snapshot") render(message);
    else if (message.type === "done") feedback.textContent = `Done: ${message.action ?? ""}`;
    else if (message.type === "error") feedback.textContent = `Refused: ${message.message ?? ""}`;
  };
  ws.onclose = (event) => {
    socket = null;
    if (event.code === 1008) {
      // The session has ended (logged out, expired): back to the login form.
      status.textContent = "Your admin session has ended. Reloading…";
      window.setTimeout(() => location.reload(), 1000);
      return;
    }
    status.textContent = `Disconnected; reconnecting in ${Math.round(retryMs / 1000)} s…`;
    window.setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  };
}

layout();
connect();
