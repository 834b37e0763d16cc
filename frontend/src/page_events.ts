/**
 * What the participant's page does around the study, recorded by the server with timestamps:
 * the tab hidden or shown again (`hidden`/`visible`), the window losing or regaining focus
 * (`blur`/`focus`), and full screen entered or left (`fullscreen_enter`/`fullscreen_exit`).
 * Sent as `page_event` messages; while the page is not connected they wait (at most 100, the
 * oldest dropped) and go out once it is.
 */

import { Float64 } from "./connection";

const MAX_PENDING = 100;

type Send = (message: Record<string, unknown>) => string;

export class PageEvents {
  private pending: Record<string, unknown>[] = [];

  constructor(private readonly send: Send) {}

  start(): void {
    document.addEventListener("visibilitychange", () =>
      this.note(document.visibilityState === "hidden" ? "hidden" : "visible"),
    );
    window.addEventListener("blur", () => this.note("blur"));
    window.addEventListener("focus", () => this.note("focus"));
    // One event per change, but by the time a handler runs a quick enter-then-leave may have
    // settled already (both events then see no full-screen element): each event is the opposite of
    // the last one, starting from the state at load.
    let fullscreen = document.fullscreenElement !== null;
    document.addEventListener("fullscreenchange", () => {
      fullscreen = !fullscreen;
      this.note(fullscreen ? "fullscreen_enter" : "fullscreen_exit");
    });
  }

  note(event: string): void {
    this.pending.push({ type: "page_event", event, t: new Float64(Date.now()) });
    if (this.pending.length > MAX_PENDING) this.pending.shift();
    this.flush();
  }

  /** Send what waits (call when the connection is (re)established). */
  flush(): void {
    while (this.pending.length) {
      if (this.send(this.pending[0]) === "not_connected") return;
      this.pending.shift();
    }
  }
}
