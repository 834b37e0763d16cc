// igym-onnx in the browser: the same models and the same preprocessing as the server.
//
// Served by igym at /plugins/onnx/igym_onnx.js; onnxruntime-web's files (copied from npm by
// `make build`) at /plugins/onnx/ort/. Nothing here runs until a page imports this module, and
// onnxruntime-web (50 kB of JS, 14 MB of WebAssembly) loads only on the first createPolicy().
//
//   const onnx = await import("/plugins/onnx/igym_onnx.js");
//   const bot = await onnx.createPolicy("/path/to/bot.onnx", config, { seed: 1 });
//   const action = await bot.act(observation);          // config: OnnxPolicy.to_json() in Python
//
// Every rule below mirrors the Python package, step for step (igym_onnx/preprocess.py,
// signature.py, actions.py); tests/test_browser_parity.py runs both on the same observations.

export const ORT_VERSION = "1.30.0";
export const DEFAULT_MASK_KEY = "action_mask";

const ORT_DIR = new URL("./ort/", import.meta.url).href;
let ortLoading = null;

/** onnxruntime-web (WebAssembly, one thread: threads need cross-origin isolation), loaded once. */
export function loadOrt() {
  if (ortLoading === null) {
    ortLoading = import(`${ORT_DIR}ort.wasm.min.mjs`).then((ort) => {
      ort.env.wasm.wasmPaths = ORT_DIR;
      ort.env.wasm.numThreads = 1;
      ort.env.wasm.proxy = false;
      return ort;
    });
    ortLoading.catch(() => {
      ortLoading = null; // let a later call try again
    });
  }
  return ortLoading;
}

// --- preprocessing (igym_onnx/preprocess.py) ----------------------------------------------------

const DTYPES = ["float32", "float64", "int32", "int64"];

/** A declaration with every field present (the JSON form of Python's Preprocess). */
export function normaliseDeclaration(decl) {
  const d = { keys: null, dtype: "float32", mean: 0, std: 1, clip: null, ...(decl || {}) };
  if (!DTYPES.includes(d.dtype)) throw new Error(`igym-onnx: preprocess dtype must be one of ${DTYPES.join(", ")}; got ${d.dtype}`);
  return d;
}

function normalises(d) {
  const isDefault = (v, x) => (Array.isArray(v) ? false : Number(v) === x);
  return !isDefault(d.mean, 0) || !isDefault(d.std, 1) || d.clip !== null;
}

function isDict(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** The keys of a dict observation that make the input, in order: decl.keys, or the only non-mask key. */
export function inputKeys(decl, observation, maskKey = DEFAULT_MASK_KEY) {
  if (decl.keys !== null && decl.keys !== undefined) return decl.keys;
  const others = Object.keys(observation).filter((k) => k !== maskKey);
  if (others.length !== 1) {
    throw new Error(`igym-onnx: the observation has keys ${JSON.stringify(others)} besides the mask; set preprocess.keys to say which make the input, in order`);
  }
  return others;
}

function pushFlat(out, value) {
  if (typeof value === "number") out.push(value);
  else if (typeof value === "boolean") out.push(value ? 1 : 0);
  else if (typeof value === "bigint") out.push(Number(value));
  else if (ArrayBuffer.isView(value)) for (const v of value) pushFlat(out, v);
  else if (Array.isArray(value)) for (const v of value) pushFlat(out, v);
  else throw new Error(`igym-onnx: cannot use ${JSON.stringify(value)} in an observation (numbers, booleans and arrays only)`);
}

function flatten(d, observation, maskKey) {
  const flat = [];
  if (isDict(observation)) {
    for (const key of inputKeys(d, observation, maskKey)) {
      if (!(key in observation)) throw new Error(`igym-onnx: the observation has no key ${JSON.stringify(key)}; fix preprocess.keys`);
      pushFlat(flat, observation[key]);
    }
  } else {
    if (d.keys !== null && d.keys !== undefined) throw new Error("igym-onnx: preprocess.keys is set, but the observation is not a dict; remove keys");
    pushFlat(flat, observation);
  }
  return flat;
}

function perElement(name, value, n) {
  if (!Array.isArray(value)) return () => Number(value);
  if (value.length !== n) throw new Error(`igym-onnx: preprocess.${name} has ${value.length} numbers, but the flattened observation has ${n}; give one number, or one per element`);
  return (i) => Number(value[i]);
}

/**
 * The model input row for one observation, as Python computes it: flatten (dict keys in order,
 * C order), cast to dtype, subtract mean, divide by std, clip. float32 rounds after every step.
 */
export function preprocess(decl, observation, maskKey = DEFAULT_MASK_KEY) {
  const d = normaliseDeclaration(decl);
  const flat = flatten(d, observation, maskKey);
  const n = flat.length;
  if (d.dtype === "int32") return Int32Array.from(flat, (v) => Math.trunc(v));
  if (d.dtype === "int64") return BigInt64Array.from(flat, (v) => BigInt(Math.trunc(v)));
  const single = d.dtype === "float32";
  const out = single ? Float32Array.from(flat) : Float64Array.from(flat);
  if (!normalises(d)) return out;
  const round = single ? Math.fround : (v) => v;
  const mean = perElement("mean", d.mean, n);
  const std = perElement("std", d.std, n);
  const low = d.clip ? round(Number(d.clip[0])) : null;
  const high = d.clip ? round(Number(d.clip[1])) : null;
  for (let i = 0; i < n; i++) {
    let v = round(out[i] - round(mean(i)));
    v = round(v / round(std(i)));
    if (low !== null) v = Math.min(Math.max(v, low), high);
    out[i] = v;
  }
  return out;
}

/** The action mask of a dict observation (1: allowed), or null without one. */
export function observationMask(observation, maskKey = DEFAULT_MASK_KEY) {
  if (!isDict(observation) || observation[maskKey] === undefined || observation[maskKey] === null) return null;
  const flat = [];
  pushFlat(flat, observation[maskKey]);
  return Uint8Array.from(flat, (v) => (v !== 0 ? 1 : 0));
}

// --- actions (igym_onnx/actions.py) ------------------------------------------------------------

function fmix32(value) {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** Draw t (0-based) of the seeded uniform stream: the same numbers as Python's actions.uniform. */
export function uniform(seed, t) {
  return fmix32((fmix32(seed) + Math.imul(t + 1, 0x9e3779b9)) >>> 0) / 4294967296;
}

/** The chosen index: argmax, or a sample from softmax(logits / temperature) with the draw u. */
export function selectAction(logits, mask, { action = "argmax", temperature = 1 } = {}, u = null) {
  const n = logits.length;
  let firstAllowed = 0;
  if (mask) {
    firstAllowed = mask.findIndex((m) => m);
    if (firstAllowed < 0) {
      console.warn("igym-onnx: the observation's action mask allows no action; ignoring it");
      mask = null;
      firstAllowed = 0;
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = Number(logits[i]);
    values[i] = (mask && !mask[i]) || Number.isNaN(v) ? -Infinity : v;
  }
  let best = 0;
  for (let i = 1; i < n; i++) if (values[i] > values[best]) best = i;
  const top = values[best];
  if (top === -Infinity) return firstAllowed;
  if (action === "argmax") return best;
  if (u === null || u === undefined) throw new Error("igym-onnx: sampling needs a uniform draw");
  const weights = new Float64Array(n);
  const running = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    weights[i] = Math.exp((values[i] - top) / temperature);
    total += weights[i];
    running[i] = total;
  }
  const target = u * total;
  let index = running.findIndex((r) => r > target);
  if (index < 0 || weights[index] === 0) {
    for (index = n - 1; index > 0 && weights[index] === 0; index--);
  }
  return index;
}

// --- signature (igym_onnx/signature.py) ---------------------------------------------------------

const IN_SUFFIXES = ["_input", "input", "_in", ".in", "-in", "in", "_prev", "_previous", "_old", "0"];
const OUT_SUFFIXES = ["_output", "output", "_out", ".out", "-out", "out", "_next", "_new", "n"];
const IN_PREFIXES = ["input_", "in_", "prev_", "previous_", "old_"];
const OUT_PREFIXES = ["output_", "out_", "next_", "new_"];
const OBSERVATION_NAMES = ["obs", "observation", "observations", "input", "x"];
const LOGITS_HINTS = ["logits", "action", "policy"];

const isDynamic = (dim) => typeof dim !== "number" || dim < 0;

/** Names left after removing one in-marker (side "in") or out-marker (side "out"). */
export function nameStems(name, side) {
  const lowered = name.toLowerCase();
  const [suffixes, prefixes] = side === "in" ? [IN_SUFFIXES, IN_PREFIXES] : [OUT_SUFFIXES, OUT_PREFIXES];
  const stems = new Set();
  for (const suffix of suffixes) {
    if (lowered.endsWith(suffix) && lowered.length > suffix.length) stems.add(lowered.slice(0, -suffix.length).replace(/[_.\-:/]+$/, ""));
  }
  for (const prefix of prefixes) {
    if (lowered.startsWith(prefix) && lowered.length > prefix.length) stems.add(lowered.slice(prefix.length));
  }
  return new Set([...stems].filter((s) => s && /[a-z0-9]/.test(s)));
}

function sameFixedShape(a, b) {
  if (a.shape.length !== b.shape.length) return false;
  return a.shape.every((x, i) => isDynamic(x) || isDynamic(b.shape[i]) || x === b.shape[i]);
}

/**
 * The roles of a model's inputs and outputs ({name, shape, dtype} each), by the same rules as
 * Python: state pairs by name, the observation input, the logits output.
 */
export function discoverSignature(inputs, outputs, config = {}) {
  const listing = `inputs ${inputs.map((t) => t.name).join(", ")}; outputs ${outputs.map((t) => t.name).join(", ")}`;
  const need = (name, list, field) => {
    const found = list.find((t) => t.name === name);
    if (!found) throw new Error(`igym-onnx: ${field} names ${JSON.stringify(name)}, which the model does not have (${listing})`);
    return found;
  };
  const pairs = [];
  if (config.state_inputs && config.state_outputs) {
    config.state_inputs.forEach((name, i) => pairs.push([need(name, inputs, "state_inputs"), need(config.state_outputs[i], outputs, "state_outputs")]));
  } else {
    const taken = new Set();
    for (const candidate of inputs) {
      if (candidate.name === config.observation_input || inputs.length === 1) continue;
      const stems = nameStems(candidate.name, "in");
      for (const output of outputs) {
        if (taken.has(output.name) || output.name === config.logits_output) continue;
        const shared = [...nameStems(output.name, "out")].some((s) => stems.has(s));
        if (shared && sameFixedShape(candidate, output)) {
          pairs.push([candidate, output]);
          taken.add(output.name);
          break;
        }
      }
    }
  }
  const stateIn = new Set(pairs.map(([i]) => i.name));
  const stateOut = new Set(pairs.map(([, o]) => o.name));
  let observation;
  if (config.observation_input) observation = need(config.observation_input, inputs, "observation_input");
  else {
    const left = inputs.filter((t) => !stateIn.has(t.name));
    if (left.length === 1) observation = left[0];
    else {
      const named = left.filter((t) => OBSERVATION_NAMES.includes(t.name.toLowerCase()));
      if (named.length !== 1) throw new Error(`igym-onnx: cannot tell which input takes observations; set observation_input (${listing})`);
      observation = named[0];
    }
  }
  let logits;
  if (config.logits_output) logits = need(config.logits_output, outputs, "logits_output");
  else {
    const left = outputs.filter((t) => !stateOut.has(t.name));
    if (!left.length) throw new Error(`igym-onnx: every output is recurrent state; none holds logits (${listing})`);
    logits = left[0];
    if (left.length > 1) {
      for (const hint of LOGITS_HINTS) {
        const hinted = left.find((t) => t.name.toLowerCase().includes(hint));
        if (hinted) {
          logits = hinted;
          break;
        }
      }
    }
  }
  const states = pairs.map(([input, output]) => {
    let axis = input.shape.findIndex(isDynamic);
    if (axis < 0) axis = Math.max(0, input.shape.indexOf(1));
    return { input, output, batchAxis: axis };
  });
  return { observation, logits, states };
}

// --- policies -----------------------------------------------------------------------------------

function tensorInfo(name, metadata) {
  const meta = metadata ? metadata.find((m) => m.name === name) : null;
  return { name, dtype: meta && meta.isTensor ? meta.type : "float32", shape: meta && meta.isTensor ? [...meta.shape] : [] };
}

async function modelBytes(model) {
  if (typeof model === "string") {
    const response = await fetch(model);
    if (!response.ok) throw new Error(`igym-onnx: fetching the model ${model} failed: HTTP ${response.status}`);
    return new Uint8Array(await response.arrayBuffer());
  }
  if (model instanceof ArrayBuffer) return new Uint8Array(model);
  if (ArrayBuffer.isView(model)) return new Uint8Array(model.buffer, model.byteOffset, model.byteLength);
  throw new Error("igym-onnx: createPolicy needs a model URL, an ArrayBuffer or a Uint8Array");
}

const TYPED = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array };

/** A bot in the browser: one seat's recurrent state and sampling stream over one model session. */
export class OnnxBrowserPolicy {
  constructor(ort, session, signature, config, options) {
    this.ort = ort;
    this.session = session;
    this.signature = signature;
    this.config = config;
    this.decl = normaliseDeclaration(config.preprocess);
    this.maskKey = config.mask_key || DEFAULT_MASK_KEY;
    this.actionStart = options.actionStart || 0;
    this.reset(options.seed ?? config.seed ?? 0);
  }

  /** Start an episode: zero the recurrent state and restart the sampling stream from seed. */
  reset(seed) {
    this.seed = seed;
    this.draws = 0;
    this.state = this.signature.states.map(({ input, batchAxis }) => {
      const dims = input.shape.map((d, i) => (i === batchAxis ? 1 : d));
      const Typed = TYPED[input.dtype] || Float32Array;
      return new this.ort.Tensor(input.dtype, new Typed(dims.reduce((a, b) => a * b, 1)), dims);
    });
  }

  /** The model's logits for one observation (advances the recurrent state). */
  async logits(observation) {
    const { observation: obsInput, logits, states } = this.signature;
    if (this.decl.dtype !== obsInput.dtype) {
      throw new Error(`igym-onnx: the model's input ${obsInput.name} takes ${obsInput.dtype}, but preprocess.dtype is ${this.decl.dtype}`);
    }
    const row = preprocess(this.decl, observation, this.maskKey);
    const rest = obsInput.shape.slice(1);
    const dims = rest.some(isDynamic) ? [1, row.length] : [1, ...rest];
    const expected = dims.reduce((a, b) => a * b, 1);
    if (expected !== row.length) {
      throw new Error(`igym-onnx: the model's input ${obsInput.name} takes ${expected} numbers per observation, but the preprocessed observation has ${row.length}; fix preprocess.keys`);
    }
    const feeds = { [obsInput.name]: new this.ort.Tensor(obsInput.dtype, row, dims) };
    states.forEach(({ input }, i) => {
      feeds[input.name] = this.state[i];
    });
    const results = await this.session.run(feeds, [logits.name, ...states.map(({ output }) => output.name)]);
    this.state = states.map(({ output }) => results[output.name]);
    return results[logits.name].data;
  }

  /** The action for one observation: index into the logits (+ the Discrete space's start), masked. */
  async act(observation) {
    return (await this.evaluate(observation)).action;
  }

  /** {logits, action} for one observation. */
  async evaluate(observation) {
    const logits = await this.logits(observation);
    let u = null;
    if (this.config.action === "sample") {
      u = uniform(this.seed, this.draws);
      this.draws += 1;
    }
    const index = selectAction(logits, observationMask(observation, this.maskKey), this.config, u);
    return { logits, action: this.actionStart + index };
  }
}

/**
 * Load a model (URL, ArrayBuffer or Uint8Array) and make one seat's policy.
 *
 * config: the JSON form of Python's OnnxPolicy (OnnxPolicy.to_json()); path is ignored here.
 * options: {seed, actionStart} (the Discrete action space's start).
 */
export async function createPolicy(model, config = {}, options = {}) {
  const full = { action: "argmax", temperature: 1, mask_key: null, seed: 0, ...config };
  const ort = await loadOrt();
  const session = await ort.InferenceSession.create(await modelBytes(model), { executionProviders: ["wasm"] });
  const inputs = session.inputNames.map((name) => tensorInfo(name, session.inputMetadata));
  const outputs = session.outputNames.map((name) => tensorInfo(name, session.outputMetadata));
  const signature = discoverSignature(inputs, outputs, full);
  return new OnnxBrowserPolicy(ort, session, signature, full, options);
}
