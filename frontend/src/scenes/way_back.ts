/**
 * The way back to the recruitment platform (`context.way_back` of an end scene, `way_back` of a
 * final `game_status`), as the server's recruiter built it: `get` goes to `url` (Prolific's
 * completion URL with the study's code); `post` submits a form with `fields` to `url` (MTurk's
 * externalSubmit). The server sends it only once the participant's data is durably stored.
 */

import { safeRedirectUrl } from "./end";

export interface WayBack {
  url: string;
  method: "get" | "post";
  fields: Record<string, string>;
  code: string | null;
}

export function parseWayBack(raw: unknown): WayBack | null {
  if (!raw || typeof raw !== "object") return null;
  const value = raw as Record<string, unknown>;
  const url = safeRedirectUrl(value.url);
  if (!url) return null;
  const method = value.method === "post" ? "post" : "get";
  const fields: Record<string, string> = {};
  if (value.fields && typeof value.fields === "object") {
    for (const [key, field] of Object.entries(value.fields as Record<string, unknown>)) {
      if (typeof field === "string" || typeof field === "number") fields[key] = String(field);
    }
  }
  const code = typeof value.code === "string" ? value.code : null;
  return { url, method, fields, code };
}

/** Leave the page for the platform: a navigation, or a form POST built safely (no HTML strings). */
export function followWayBack(way: WayBack): void {
  if (way.method === "get") {
    window.location.assign(way.url);
    return;
  }
  const form = document.createElement("form");
  form.method = "post";
  form.action = way.url;
  form.hidden = true;
  for (const [name, value] of Object.entries(way.fields)) {
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
}
