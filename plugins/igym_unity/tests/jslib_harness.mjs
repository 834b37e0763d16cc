// Runs igym's shipped Igym.jslib the way Unity's emscripten build links it, against stubs of
// LibraryManager, mergeInto, autoAddDeps and UTF8ToString over a byte heap, in a node vm context
// where eval, Function, setTimeout and setInterval are traps. Reads {jslib, payloads} as JSON on
// stdin; prints {received, evaluated, deps} as JSON: what the page bridge received for each call.
import vm from "node:vm";

const input = JSON.parse(await new Promise((resolve) => {
  const chunks = [];
  process.stdin.on("data", (c) => chunks.push(c));
  process.stdin.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
}));

const heap = new Uint8Array(1 << 20);
let top = 16;
function writeString(bytes) {
  const pointer = top;
  heap.set(bytes, pointer);
  heap[pointer + bytes.length] = 0;
  top += bytes.length + 1;
  return pointer;
}
const evaluated = [];
const received = [];
const trap = (name) => function () {
  evaluated.push(name);
  throw new Error(name + " called");
};
const sandbox = {
  LibraryManager: { library: {} },
  mergeInto(target, source) {
    for (const key of Object.keys(source)) target[key] = source[key];
  },
  autoAddDeps(library, name) {
    for (const key of Object.keys(library)) if (!key.startsWith("$")) library[key + "__deps"] = [name];
  },
  UTF8ToString(pointer) {
    let end = pointer;
    while (heap[end] !== 0) end++;
    // Raw bytes out, so the test compares bytes, not a decoder's repair of them.
    return Buffer.from(heap.subarray(pointer, end)).toString("utf8");
  },
  window: { igymUnityBridge: { send: (event, text) => received.push({ event, text, type: typeof text }) } },
  console: { warn: () => {}, log: () => {} },
  eval: trap("eval"),
  Function: trap("Function"),
  setTimeout: trap("setTimeout"),
  setInterval: trap("setInterval"),
};
sandbox.globalThis = sandbox;
const context = vm.createContext(sandbox, { codeGeneration: { strings: false, wasm: false } });
vm.runInContext(input.jslib, context, { filename: "Igym.jslib" });
const library = sandbox.LibraryManager.library;
// Emscripten emits each $name as a global of the linked module; here, of the context.
for (const key of Object.keys(library)) if (key.startsWith("$")) sandbox[key.slice(1)] = library[key];
const names = { episode_started: "IgymEpisodeStarted", episode_ended: "IgymEpisodeEnded", log: "IgymLog" };
for (const { event, base64 } of input.payloads) {
  const pointer = writeString(Buffer.from(base64, "base64"));
  library[names[event]](pointer);
}
const deps = Object.fromEntries(Object.keys(library).filter((k) => k.endsWith("__deps")).map((k) => [k, library[k]]));
process.stdout.write(JSON.stringify({
  received: received.map((r) => ({ event: r.event, type: r.type, base64: Buffer.from(r.text, "utf8").toString("base64") })),
  evaluated,
  deps,
  pwned: sandbox.pwned === undefined ? null : sandbox.pwned,
}));
