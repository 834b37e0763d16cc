/**
 * Safe DOM construction.
 *
 * Everything the client shows is built with `h()`: text is only ever inserted as text nodes
 * (`document.createTextNode` / `textContent`), attributes through `setAttribute`, event handlers
 * as functions. Nothing a participant typed, and nothing the server sends, becomes HTML here.
 *
 * The one exception is researcher-authored rich text: the `*_html` fields of a scene view
 * (`body_html`, `intro_html`, …), which the server renders from the researcher's Markdown/HTML.
 * Those go through `setTrustedHtml()` and nowhere else, so a search for that name finds every
 * place HTML enters the page.
 */

export type Child = Node | string | number | null | undefined | false | readonly Child[];

/** Attribute values: `false`/`null`/`undefined` omit the attribute, `true` sets it empty. */
export type AttrValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | EventListener
  | ((event: any) => void)
  | Partial<CSSStyleDeclaration>;

export type Attrs = Record<string, AttrValue>;

/** Keys set as DOM properties rather than attributes (their live state matters, not the default). */
const PROPERTY_KEYS = new Set(["value", "checked", "disabled", "selected", "indeterminate"]);

/**
 * Create an element: `h("p", { class: "note" }, "Hello ", h("strong", {}, name))`.
 *
 * - `class` / `className` set the class list; `style` takes an object of CSS properties;
 * - `onclick`, `oninput`, … (a function) add an event listener;
 * - `value`, `checked`, `disabled`, `selected`, `indeterminate` are set as properties;
 * - anything else is `setAttribute(name, String(value))` (booleans: present/absent).
 *
 * String children become text nodes. `innerHTML` and string-valued `on*` attributes are refused.
 */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K];
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement;
export function h(tag: string, attrs?: Attrs | null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, ...children);
  return el;
}

export function setAttrs(el: HTMLElement, attrs: Attrs): void {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) {
      if (PROPERTY_KEYS.has(key)) (el as any)[key] = false;
      continue;
    }
    if (key === "innerHTML" || key === "outerHTML") {
      throw new Error("igym: h() does not set HTML; use setTrustedHtml() for researcher content");
    }
    if (key.startsWith("on")) {
      if (typeof value !== "function") {
        throw new Error(`igym: h() attribute "${key}" must be a function`);
      }
      el.addEventListener(key.slice(2).toLowerCase(), value as EventListener);
      continue;
    }
    if (key === "class" || key === "className") {
      el.className = String(value);
      continue;
    }
    if (key === "style" && typeof value === "object") {
      Object.assign(el.style, value);
      continue;
    }
    if (PROPERTY_KEYS.has(key)) {
      (el as any)[key] = value;
      continue;
    }
    el.setAttribute(key, value === true ? "" : String(value));
  }
}

/** Append children (text as text nodes; arrays flattened; null/false skipped). */
export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) {
      append(parent, ...child);
    } else if (child instanceof Node) {
      parent.appendChild(child);
    } else {
      parent.appendChild(document.createTextNode(String(child)));
    }
  }
}

/** Remove every child of `el`. */
export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** Set the text of `el` (never interpreted as HTML). */
export function setText(el: Element, text: string): void {
  el.textContent = text;
}

/**
 * Insert researcher-authored HTML (a scene's `*_html` field, produced by the server from the
 * study definition). This is the ONLY place the client assigns HTML. Never pass anything a
 * participant typed, URL parameters, or any other untrusted value.
 */
export function setTrustedHtml(el: Element, html: string): void {
  el.innerHTML = html;
}

let idCounter = 0;
/** A document-unique id with a readable prefix. */
export function uniqueId(prefix: string): string {
  idCounter += 1;
  const clean = prefix.replace(/[^A-Za-z0-9_-]+/g, "-").slice(0, 40);
  return `igym-${clean}-${idCounter}`;
}

/** Add/remove an id in a space-separated id-list attribute such as aria-describedby. */
export function toggleIdRef(el: Element, attr: string, id: string, present: boolean): void {
  const ids = (el.getAttribute(attr) ?? "").split(/\s+/).filter((x) => x && x !== id);
  if (present) ids.push(id);
  if (ids.length) el.setAttribute(attr, ids.join(" "));
  else el.removeAttribute(attr);
}
