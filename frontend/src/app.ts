/**
 * The page shell (study title, progress, connection banner, card) and the scene lifecycle:
 * mounting renderers for `scene` messages, drafts, submits and subscriptions.
 */

import { PageEvents } from "./page_events";
import { Connection, clientClockMs, socketUrl, type ConnectionStatus } from "./connection";
import { clear, h } from "./dom";
import { getSceneRenderer, type SceneContext, type SubmitResult } from "./registry";
import { Subscriptions } from "./subscriptions";
import type { Answers, BootData, SceneMessage } from "./types";

const DRAFT_DEBOUNCE_MS = 300;
/** Close reasons of a `hello` the server refused (docs/protocol.md); the page shows the server's message. */
const ADMISSION_REFUSALS = new Set([
  "url_params",
  "too_many_new_participants",
  "server_full",
  "entry_refused",
  "arrivals_paused", // the admin dashboard paused new arrivals; the message is the researcher's
  // A recruitment platform's preview (MTurk before the HIT is accepted): its text, no study.
  "preview",
]);
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024;

export interface ClientState {
  /** True while the socket is open and the server has welcomed us. */
  connected: boolean;
  /** "connecting" | "connected" | "reconnecting" | "superseded" | "failed" */
  status: ConnectionStatus["state"];
  position: number | null;
  total: number | null;
  instance: number | null;
  kind: string | null;
  scene_id: string | null;
  participant_id: string | null;
  /** Round-trip time of the last heartbeat, in ms. */
  rtt_ms: number | null;
}

interface Mounted {
  position: number;
  instance: number;
  kind: string;
  sceneId: string;
  root: HTMLElement;
  alive: boolean;
  destroy: (() => void) | undefined;
  /** `ctx.onMessage`; keeps the latest message of a stateful type for late subscribers. */
  subscriptions: Subscriptions;
  draftTimer: number | undefined;
  /** Latest answers given to saveDraft (re-sent after a reconnect). */
  lastDraft: Answers | null;
  draftUnsent: boolean;
}

type PendingSubmit = (result: SubmitResult) => void;

const LOST_BEFORE_ANSWER =
  "The connection was interrupted before your answers were saved. They are still here: " +
  "please press the button again once the connection is back.";
const NOT_CONNECTED =
  "You are not connected to the study server right now. Your answers are kept: " +
  "please try again in a moment.";

export class App {
  readonly state: ClientState = {
    connected: false,
    status: "connecting",
    position: null,
    total: null,
    instance: null,
    kind: null,
    scene_id: null,
    participant_id: null,
    rtt_ms: null,
  };

  private readonly conn: Connection;
  /** Tab hidden, window blurred, full screen: recorded by the server (page_events.ts). */
  private readonly pageEvents = new PageEvents((message) => this.conn.send(message));
  private mounted: Mounted | null = null;
  private remountNextScene = false;
  /** A `saving` or `unavailable` panel is shown in place of the scene until the next scene. */
  private waitingPanel: "saving" | "unavailable" | null = null;
  private readonly pendingSubmits = new Map<number, PendingSubmit>();

  // shell elements
  private readonly progressText: HTMLElement;
  private readonly progressBar: HTMLElement;
  private readonly progressFill: HTMLElement;
  private readonly progress: HTMLElement;
  private readonly banner: HTMLElement;
  private readonly card: HTMLElement;
  private readonly sceneHost: HTMLElement;
  private readonly panelHost: HTMLElement;

  constructor(
    private readonly boot: BootData,
    container: HTMLElement,
  ) {
    this.progressText = h("span", { class: "igym-progress-text" });
    this.progressFill = h("span", { class: "igym-progress-fill" });
    this.progressBar = h(
      "span",
      {
        class: "igym-progress-bar",
        role: "progressbar",
        "aria-label": "Study progress",
        "aria-valuemin": 0,
      },
      this.progressFill,
    );
    this.progress = h("div", { class: "igym-progress", hidden: true }, this.progressText, this.progressBar);
    this.banner = h("div", { class: "igym-banner", role: "status", "aria-live": "polite" });
    this.sceneHost = h("div", { class: "igym-scene-host" });
    this.panelHost = h("div", { class: "igym-panel-host" });
    this.card = h("main", { class: "igym-card", id: "igym-main" }, this.panelHost, this.sceneHost);

    clear(container);
    container.classList.add("igym-app");
    container.append(
      h(
        "header",
        { class: "igym-header" },
        h("div", { class: "igym-header-inner" }, h("p", { class: "igym-study-title" }, boot.title || ""), this.progress),
      ),
      this.banner,
      this.card,
    );
    this.showLoading();

    this.conn = new Connection({
      url: socketUrl(boot.ws_path),
      experimentId: boot.experiment_id,
      maxMessageBytes:
        typeof boot.max_message_bytes === "number" && boot.max_message_bytes > 0
          ? boot.max_message_bytes
          : DEFAULT_MAX_MESSAGE_BYTES,
      onMessage: (msg) => this.handleMessage(msg),
      onStatus: (status) => this.handleStatus(status),
      onDisconnect: () => this.handleDisconnect(),
    });

    // A reload or navigation within the debounce window must not lose the last keystrokes.
    window.addEventListener("pagehide", () => this.flushDraft());
  }

  start(): void {
    this.pageEvents.start();
    this.conn.connect();
  }

  // ---- server messages --------------------------------------------------------------------

  private handleMessage(msg: Record<string, any>): void {
    switch (msg.type) {
      case "welcome":
        this.state.participant_id = typeof msg.participant_id === "string" ? msg.participant_id : null;
        this.pageEvents.flush();
        break;
      case "scene":
        this.handleScene(msg as SceneMessage);
        return; // never delivered to subscribers: it replaces the renderer
      case "ack":
        this.settleSubmit(msg.seq, { ok: true });
        break;
      case "rejected":
        this.settleSubmit(msg.seq, {
          ok: false,
          errors: isPlainObject(msg.errors) ? (msg.errors as Record<string, string>) : {},
          message: typeof msg.message === "string" ? msg.message : "",
        });
        break;
      case "error":
        this.handleError(msg);
        break;
      case "pong":
        if (typeof msg.t === "number") this.state.rtt_ms = Math.max(0, clientClockMs() - msg.t);
        break;
      case "superseded":
        break;
      case "saving":
        this.showSaving(typeof msg.message === "string" ? msg.message : "");
        return;
    }
    this.dispatch(msg);
  }

  private handleError(msg: Record<string, any>): void {
    const code = String(msg.code);
    if (code === "unavailable") {
      this.showUnavailable(typeof msg.message === "string" ? msg.message : "");
      return;
    }
    if (code === "stale_position") {
      console.debug("igym: the server ignored a message for an old step (stale_position)");
    } else {
      console.error(`igym: server error "${code}": ${String(msg.message ?? "")}`, msg);
    }
    if (typeof msg.seq === "number" && this.pendingSubmits.has(msg.seq)) {
      this.settleSubmit(msg.seq, {
        ok: false,
        errors: {},
        message:
          code === "stale_position"
            ? "This step was already completed."
            : code === "too_early"
              ? tooEarlyMessage(msg.retry_after_ms)
              : "Your answers could not be sent. Please try again.",
      });
    }
  }

  private dispatch(msg: Record<string, any>): void {
    this.mounted?.subscriptions.dispatch(msg);
  }

  private settleSubmit(seq: unknown, result: SubmitResult): void {
    if (typeof seq !== "number") return;
    const resolve = this.pendingSubmits.get(seq);
    if (!resolve) return;
    this.pendingSubmits.delete(seq);
    resolve(result);
  }

  // ---- connection status ------------------------------------------------------------------

  private handleStatus(status: ConnectionStatus): void {
    this.state.status = status.state;
    this.state.connected = status.state === "connected";
    switch (status.state) {
      case "connecting":
        break;
      case "connected":
        this.setBanner(null);
        // Still saving after a reconnect: the server says so (or sends the scene) right away.
        if (this.waitingPanel === "saving") break;
        clear(this.panelHost);
        this.sceneHost.hidden = false;
        this.waitingPanel = null;
        break;
      case "reconnecting":
        // Refused for now (the study cannot save data): the panel says so; reconnecting is the retry.
        this.setBanner(this.waitingPanel === "unavailable" ? null : "Connection lost — reconnecting…");
        break;
      case "superseded":
        this.setBanner(null);
        this.showSuperseded(status.message);
        break;
      case "failed":
        this.setBanner(null);
        this.showFailed(status.code, status.message, status.reason);
        break;
    }
  }

  private handleDisconnect(): void {
    this.state.connected = false;
    const pending = [...this.pendingSubmits.values()];
    this.pendingSubmits.clear();
    for (const resolve of pending) resolve({ ok: false, errors: {}, message: LOST_BEFORE_ANSWER });
  }

  private setBanner(text: string | null): void {
    clear(this.banner);
    this.banner.classList.toggle("is-visible", text !== null);
    if (text !== null) this.banner.append(h("span", { class: "igym-banner-text" }, text));
  }

  private showPanel(panel: HTMLElement): void {
    clear(this.panelHost);
    this.panelHost.append(panel);
    this.sceneHost.hidden = true;
    const heading = panel.querySelector("h1");
    if (heading) focusQuietly(heading);
  }

  private showSuperseded(message: string): void {
    const button = h(
      "button",
      {
        type: "button",
        class: "igym-button",
        onclick: () => {
          // This window takes the session back; whatever the other window did, show the
          // scene the server sends now.
          this.unmount();
          clear(this.panelHost);
          this.sceneHost.hidden = false;
          this.showLoading();
          this.remountNextScene = true;
          this.conn.connect();
        },
      },
      "Continue in this window",
    );
    this.showPanel(
      h(
        "section",
        { class: "igym-panel igym-panel--superseded", "aria-labelledby": "igym-superseded-title" },
        h("h1", { id: "igym-superseded-title", tabindex: -1 }, "Study open in another window"),
        h(
          "p",
          { class: "igym-superseded-message" },
          message ||
            "This study is now open in another tab or window, so this page has stopped. " +
              "You can continue here instead; the other window will then stop.",
        ),
        h("div", { class: "igym-actions" }, button),
      ),
    );
  }

  private showFailed(code: number, serverMessage: string, reason = ""): void {
    if (ADMISSION_REFUSALS.has(reason) && serverMessage) {
      // The server refused to start this participant (the close reason is the error code): its
      // message says why and what to do; this is not a technical fault.
      // A link without a parameter the study requires (entry_refused) is not worth retrying.
      const badLink = reason === "entry_refused";
      this.showPanel(
        h(
          "section",
          {
            // A preview is not a fault: no error styling.
            class: reason === "preview" ? "igym-panel" : "igym-panel igym-panel--error",
            role: "alert",
            "data-refusal": reason,
            "data-igym-refused": "",
          },
          h(
            "h1",
            { tabindex: -1 },
            reason === "preview"
              ? "Preview"
              : badLink
                ? "This study link cannot be used"
                : reason === "arrivals_paused"
                  ? "The study is not taking new participants right now"
                : "The study could not start",
          ),
          h("p", {}, serverMessage),
          badLink || reason === "preview"
            ? null
            : h("p", { class: "igym-muted" }, "If this keeps happening, please contact the researcher."),
        ),
      );
      return;
    }
    const why =
      code === 1009
        ? "The study server closed the connection because a message was too large"
        : "The study server closed the connection because of a technical problem";
    this.showPanel(
      h(
        "section",
        { class: "igym-panel igym-panel--error", role: "alert" },
        h("h1", { tabindex: -1 }, "The connection to the study was closed"),
        h("p", {}, `${why} (code ${code}).`),
        serverMessage ? h("p", { class: "igym-muted" }, serverMessage) : null,
        h("p", {}, "Please reload the page. If this keeps happening, please contact the researcher."),
        h(
          "div",
          { class: "igym-actions" },
          h("button", { type: "button", class: "igym-button", onclick: () => window.location.reload() }, "Reload the page"),
        ),
      ),
    );
  }

  /** The participant's scene is over but their data is not saved yet: the server retries and
   * sends the next scene when it is. Nothing to do for the participant but wait. */
  private showSaving(message: string): void {
    this.unmount();
    clear(this.sceneHost); // the finished scene must not show again behind the panel
    this.pendingSubmits.clear();
    this.remountNextScene = true;
    this.waitingPanel = "saving";
    this.showWaitingPanel(
      "igym-panel--saving",
      "Saving your progress",
      message || "We could not save your progress yet. Please keep this page open; we are trying again.",
    );
  }

  private showUnavailable(message: string): void {
    this.waitingPanel = "unavailable";
    this.showWaitingPanel(
      "igym-panel--unavailable",
      "Please wait a moment",
      message || "This study cannot take new participants right now. Please keep this page open.",
    );
  }

  private showWaitingPanel(kind: string, title: string, message: string): void {
    this.showPanel(
      h(
        "section",
        { class: `igym-panel ${kind}`, role: "status", "aria-live": "polite" },
        h("h1", { tabindex: -1 }, title),
        h(
          "p",
          { class: "igym-waiting-message" },
          h("span", { class: "igym-spinner", "aria-hidden": "true" }),
          " ",
          message,
        ),
      ),
    );
  }

  private showLoading(): void {
    clear(this.sceneHost);
    this.sceneHost.append(
      h(
        "div",
        { class: "igym-loading", role: "status" },
        h("span", { class: "igym-spinner", "aria-hidden": "true" }),
        h("span", {}, "Loading the study…"),
      ),
    );
  }

  // ---- scenes -----------------------------------------------------------------------------

  private handleScene(msg: SceneMessage): void {
    const scene = msg.scene;
    if (!isPlainObject(scene) || typeof scene.kind !== "string" || typeof msg.position !== "number") {
      console.error("igym: ignoring a malformed scene message", msg);
      return;
    }
    if (this.waitingPanel !== null) {
      // Saved (or admitted) now: the scene replaces the waiting panel.
      this.waitingPanel = null;
      clear(this.panelHost);
      this.sceneHost.hidden = false;
    }
    const m = this.mounted;
    const same =
      m !== null &&
      m.alive &&
      !this.remountNextScene &&
      m.position === msg.position &&
      m.instance === msg.instance &&
      m.kind === scene.kind &&
      m.sceneId === scene.scene_id;
    this.remountNextScene = false;
    this.updateProgress(msg.position, msg.total);
    this.state.total = typeof msg.total === "number" ? msg.total : null;
    if (same) {
      // The same scene again after a reconnect: keep what is on screen (including anything
      // typed while offline) and re-send the latest draft.
      if (m.draftUnsent || m.lastDraft) this.sendDraft(m);
      return;
    }
    this.mount(msg);
  }

  private updateProgress(position: number, total: number): void {
    if (typeof total !== "number" || total <= 0) {
      this.progress.hidden = true;
      return;
    }
    const step = Math.min(total, Math.max(1, position + 1));
    this.progress.hidden = false;
    this.progressText.textContent = `Step ${step} of ${total}`;
    this.progressBar.setAttribute("aria-valuemax", String(total));
    this.progressBar.setAttribute("aria-valuenow", String(step));
    this.progressBar.setAttribute("aria-valuetext", `Step ${step} of ${total}`);
    this.progressFill.style.width = `${(step / total) * 100}%`;
  }

  private unmount(): void {
    const m = this.mounted;
    if (!m) return;
    this.mounted = null;
    m.alive = false;
    window.clearTimeout(m.draftTimer);
    m.subscriptions.close();
    if (m.destroy) {
      try {
        m.destroy();
      } catch (err) {
        console.error(`igym: destroying the "${m.kind}" scene failed`, err);
      }
    }
  }

  private mount(msg: SceneMessage): void {
    const firstScene = this.state.position === null;
    this.unmount();
    // Submits still waiting belong to the scene that is going away.
    this.pendingSubmits.clear();

    const scene = msg.scene;
    const root = h("div", { class: "igym-scene", "data-scene-kind": scene.kind });
    clear(this.sceneHost);
    this.sceneHost.append(root);
    this.card.setAttribute("data-scene-kind", scene.kind);

    const m: Mounted = {
      position: msg.position,
      instance: typeof msg.instance === "number" ? msg.instance : 0,
      kind: scene.kind,
      sceneId: String(scene.scene_id ?? ""),
      root,
      alive: true,
      destroy: undefined,
      subscriptions: new Subscriptions(),
      draftTimer: undefined,
      lastDraft: null,
      draftUnsent: false,
    };
    this.mounted = m;
    Object.assign(this.state, {
      position: msg.position,
      total: typeof msg.total === "number" ? msg.total : null,
      instance: m.instance,
      kind: scene.kind,
      scene_id: m.sceneId,
    });

    const title = typeof scene.title === "string" && scene.title ? scene.title : "";
    const study = this.boot.title || "";
    document.title = title && study && title !== study ? `${title} – ${study}` : title || study || document.title;

    const renderer = getSceneRenderer(scene.kind);
    if (!renderer) {
      console.error(`igym: no renderer is registered for scene kind "${scene.kind}"`);
      root.append(
        errorPanel(
          "This step cannot be shown",
          `This study uses a scene type '${scene.kind}' that is not installed.`,
        ),
      );
    } else {
      const ctx = this.makeContext(m, msg);
      try {
        const result = renderer(ctx);
        if (result && typeof result.destroy === "function") m.destroy = () => result.destroy!();
      } catch (err) {
        console.error(`igym: the "${scene.kind}" scene renderer failed`, err);
        clear(root);
        root.append(errorPanel("This step cannot be shown", "Something went wrong while displaying this step."));
      }
    }

    if (!firstScene) {
      window.scrollTo(0, 0);
      const heading = root.querySelector("h1");
      focusQuietly(heading instanceof HTMLElement ? heading : root);
    }
  }

  private makeContext(m: Mounted, msg: SceneMessage): SceneContext {
    return {
      root: m.root,
      scene: msg.scene,
      context: isPlainObject(msg.context) ? msg.context : {},
      draft: isPlainObject(msg.draft) ? msg.draft : {},
      position: msg.position,
      total: msg.total,
      instance: m.instance,
      saveDraft: (answers) => {
        if (!m.alive) return;
        m.lastDraft = answers;
        m.draftUnsent = true;
        window.clearTimeout(m.draftTimer);
        m.draftTimer = window.setTimeout(() => this.sendDraft(m), DRAFT_DEBOUNCE_MS);
      },
      submit: (answers) => this.submit(m, answers),
      send: (message) => {
        if (!m.alive) return;
        const result = this.conn.send(message);
        if (result !== "sent") console.warn(`igym: message "${String(message.type)}" not sent (${result})`);
      },
      onMessage: (type, handler) => (m.alive ? m.subscriptions.subscribe(type, handler) : () => {}),
    };
  }

  private sendDraft(m: Mounted): void {
    window.clearTimeout(m.draftTimer);
    m.draftTimer = undefined;
    if (!m.alive || !m.lastDraft) return;
    const result = this.conn.send({
      type: "draft",
      seq: this.conn.nextSeq(),
      position: m.position,
      answers: m.lastDraft,
    });
    // Not connected: kept, and re-sent when the same scene comes back after reconnecting.
    m.draftUnsent = result !== "sent";
  }

  private flushDraft(): void {
    const m = this.mounted;
    if (m && m.draftTimer !== undefined) this.sendDraft(m);
  }

  private submit(m: Mounted, answers: Answers): Promise<SubmitResult> {
    if (!m.alive) return Promise.resolve({ ok: false, errors: {}, message: "" });
    this.flushDraft();
    const seq = this.conn.nextSeq();
    const result = this.conn.send({ type: "submit", seq, position: m.position, answers });
    if (result === "not_connected") return Promise.resolve({ ok: false, errors: {}, message: NOT_CONNECTED });
    if (result === "too_large") {
      return Promise.resolve({
        ok: false,
        errors: {},
        message: "Your answers are too long to be sent. Please shorten them and try again.",
      });
    }
    return new Promise((resolve) => this.pendingSubmits.set(seq, resolve));
  }
}

function errorPanel(title: string, text: string): HTMLElement {
  return h(
    "section",
    { class: "igym-panel igym-panel--error", role: "alert" },
    h("h1", { tabindex: -1 }, title),
    h("p", {}, text),
    h("p", { class: "igym-muted" }, "Please contact the researcher and mention this message."),
  );
}

function focusQuietly(el: HTMLElement): void {
  if (!el.hasAttribute("tabindex") && el.tabIndex < 0) el.setAttribute("tabindex", "-1");
  el.focus({ preventScroll: true });
}

export function isPlainObject(value: unknown): value is Record<string, any> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * What a participant reads when the server refused a submit as too early (`too_early`: before the
 * scene's `min_duration_ms`). An honest page keeps its button disabled for that long, so this
 * only shows if the page's timer and the server disagree; the participant simply tries again.
 */
function tooEarlyMessage(retryAfterMs: unknown): string {
  const seconds = typeof retryAfterMs === "number" && retryAfterMs > 0 ? Math.ceil(retryAfterMs / 1000) : 1;
  return `Please take a moment longer on this page; you can continue in ${seconds} second${seconds === 1 ? "" : "s"}.`;
}
