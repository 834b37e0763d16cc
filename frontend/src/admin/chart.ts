/** A small bar chart on a canvas: counts per minute, the last `minutes` of them. */

export function drawBars(canvas: HTMLCanvasElement, values: readonly number[], colour: string, minutes = 60): void {
  const shown = values.slice(-minutes);
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 360;
  const height = canvas.clientHeight || 90;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  if (!ctx) return;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const top = Math.max(1, ...shown);
  const axis = 14; // room for the labels below
  const slot = width / Math.max(1, minutes);
  ctx.fillStyle = colour;
  shown.forEach((value, i) => {
    const barHeight = ((height - axis - 4) * value) / top;
    const x = (minutes - shown.length + i) * slot;
    ctx.fillRect(x + 0.5, height - axis - barHeight, Math.max(1, slot - 1), barHeight);
  });
  ctx.fillStyle = "#555";
  ctx.font = "10px system-ui, sans-serif";
  ctx.textBaseline = "bottom";
  ctx.fillText(`-${minutes} min`, 0, height);
  const now = "now";
  ctx.fillText(now, width - ctx.measureText(now).width, height);
  const peak = `max ${top}/min`;
  ctx.fillText(peak, (width - ctx.measureText(peak).width) / 2, height);
}
