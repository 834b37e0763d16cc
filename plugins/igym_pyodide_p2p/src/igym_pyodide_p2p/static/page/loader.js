// The loading panel of a pyodide game: one bar over four stages (runtime, packages, env, model),
// each listed with its size, shown in the game's area until the first frame is drawn.
//
// Built with DOM calls only (no HTML strings). Stages without bytes (the env is code already
// downloaded) count for a small fixed share of the bar, so it never stands still on them.

const LABELS = {
  runtime: "Python runtime",
  packages: "Game code",
  env: "Starting the game",
  model: "Computer player",
};
export const STAGES = ["runtime", "packages", "env", "model"];
const MIN_SHARE = 0.05;

/** "9.6 MB", "120 kB", "" for unknown. */
export function formatBytes(bytes) {
  if (!(typeof bytes === "number" && bytes > 0)) return "";
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${Math.round(bytes / 1e3)} kB`;
  return `${bytes} B`;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export class Loader {
  /** sizes: bytes per stage ({runtime, packages, env, model}); 0 or missing for unknown. */
  constructor(host, sizes) {
    this.sizes = { ...sizes };
    this.fraction = 0;
    this.stage = null;
    this.done = new Set();
    this.failed = false;
    const total = STAGES.reduce((sum, s) => sum + (this.sizes[s] || 0), 0) || 1;
    // Each stage's share of the bar: its bytes, but at least MIN_SHARE.
    const raw = STAGES.map((s) => Math.max(MIN_SHARE, (this.sizes[s] || 0) / total));
    const sum = raw.reduce((a, b) => a + b, 0);
    this.shares = Object.fromEntries(STAGES.map((s, i) => [s, raw[i] / sum]));
    this.within = 0;

    this.root = el("div", "igym-pyodide-loader");
    this.root.setAttribute("role", "progressbar");
    this.root.setAttribute("aria-valuemin", "0");
    this.root.setAttribute("aria-valuemax", "100");
    this.root.setAttribute("aria-label", "Loading the game");
    Object.assign(this.root.style, {
      position: "absolute",
      inset: "0",
      display: "flex",
      flexDirection: "column",
      alignItems: "center",
      justifyContent: "center",
      gap: "0.6em",
      background: "#0f172a",
      color: "#f8fafc",
      font: "15px system-ui, sans-serif",
      zIndex: "5",
    });
    this.title = el("div", "igym-pyodide-loader-title", "Loading the game…");
    this.title.style.fontWeight = "600";
    const track = el("div", "igym-pyodide-loader-track");
    Object.assign(track.style, { width: "70%", height: "10px", borderRadius: "5px", background: "#334155", overflow: "hidden" });
    this.bar = el("div", "igym-pyodide-loader-bar");
    Object.assign(this.bar.style, { width: "0%", height: "100%", background: "#38bdf8", transition: "width 120ms linear" });
    track.append(this.bar);
    this.list = el("ol", "igym-pyodide-loader-stages");
    Object.assign(this.list.style, { listStyle: "none", margin: "0", padding: "0", fontSize: "13px", opacity: "0.9" });
    this.items = {};
    for (const stage of STAGES) {
      if (stage === "model" && !this.sizes.model) continue;
      const size = formatBytes(this.sizes[stage]);
      const item = el("li", "igym-pyodide-loader-stage", size ? `${LABELS[stage]} (${size})` : LABELS[stage]);
      item.dataset.stage = stage;
      item.dataset.state = "waiting";
      item.style.opacity = "0.6";
      this.items[stage] = item;
      this.list.append(item);
    }
    this.detail = el("div", "igym-pyodide-loader-detail", "");
    this.detail.style.fontSize = "12px";
    this.root.append(this.title, track, this.list, this.detail);
    host.append(this.root);
    this.render();
  }

  begin(stage) {
    if (this.stage && this.stage !== stage) this.finish(this.stage);
    this.stage = stage;
    this.within = 0;
    const item = this.items[stage];
    if (item) {
      item.dataset.state = "loading";
      item.style.opacity = "1";
    }
    this.render();
  }

  progress(stage, loaded, total) {
    if (stage !== this.stage) this.begin(stage);
    this.within = total > 0 ? Math.min(1, loaded / total) : 0;
    this.detail.textContent = total > 0 ? `${formatBytes(loaded)} of ${formatBytes(total)}` : "";
    this.render();
  }

  finish(stage) {
    this.done.add(stage);
    const item = this.items[stage];
    if (item) {
      item.dataset.state = "done";
      item.style.opacity = "0.6";
      item.textContent = `✓ ${item.textContent.replace(/^✓ /, "")}`;
    }
    if (this.stage === stage) {
      this.stage = null;
      this.within = 0;
    }
    this.render();
  }

  complete() {
    for (const stage of STAGES) this.done.add(stage);
    this.stage = null;
    this.title.textContent = "Starting…";
    this.detail.textContent = "";
    this.render();
  }

  fail(stage, message) {
    this.failed = true;
    const item = this.items[stage];
    if (item) item.dataset.state = "failed";
    this.title.textContent = "The game could not be loaded";
    this.detail.textContent = message || "";
    this.bar.style.background = "#f87171";
    this.root.dataset.state = "failed";
  }

  render() {
    let fraction = 0;
    for (const stage of STAGES) if (this.done.has(stage)) fraction += this.shares[stage];
    if (this.stage) fraction += this.shares[this.stage] * this.within;
    this.fraction = Math.min(1, fraction);
    const percent = Math.round(this.fraction * 100);
    this.bar.style.width = `${percent}%`;
    this.root.setAttribute("aria-valuenow", String(percent));
    this.root.dataset.stage = this.stage || "";
  }

  remove() {
    this.root.remove();
  }
}
