// A fake Unity WebGL framework (igym test fixture and example; not Unity's code). It links Igym.jslib
// the way Unity's build (emscripten) does: mergeInto(LibraryManager.library, ...), autoAddDeps, and
// UTF8ToString reading a NUL-terminated UTF-8 string from the game's memory. Then it plays the
// episodes of its script, calling the jslib's functions with strings written into that memory, as
// C# calls through [DllImport("__Internal")] do.
window.igymFakeUnityFramework = function (canvas, script, fake) {
  "use strict";
  var HEAPU8 = new Uint8Array(1 << 20);
  var heapTop = 16;
  var LibraryManager = { library: {} };
  function mergeInto(target, source) {
    for (var key in source) target[key] = source[key];
  }
  function autoAddDeps(library, name) {
    for (var key in library) if (key.charAt(0) !== "$") library[key + "__deps"] = [name];
  }
  function UTF8ToString(pointer) {
    var end = pointer;
    while (HEAPU8[end] !== 0) end++;
    return new TextDecoder().decode(HEAPU8.subarray(pointer, end));
  }
  function stringToNewUTF8(text) {
    var bytes = new TextEncoder().encode(text);
    if (heapTop + bytes.length + 1 > HEAPU8.length) heapTop = 16;
    var pointer = heapTop;
    HEAPU8.set(bytes, pointer);
    HEAPU8[pointer + bytes.length] = 0;
    heapTop += bytes.length + 1;
    return pointer;
  }

  // ---- Igym.jslib, exactly as igym ships it --------------------------------------------------
  // igym's bridge for Unity WebGL builds. Copy this file (and Igym.cs) into your project's
// Assets/Plugins/WebGL folder. From C#: Igym.EpisodeStarted(json), Igym.EpisodeEnded(json),
// Igym.Log(json).
//
// Each call hands the page the JSON text exactly as C# passed it: the text is decoded from the
// game's memory with UTF8ToString and passed on as a string argument. It is never evaluated, never
// put into code and never parsed here (the igym server parses and validates it).
var IgymBridgeLibrary = {
  $IgymBridge: function (event, pointer) {
    var text = UTF8ToString(pointer);
    var page = typeof window !== "undefined" ? window.igymUnityBridge : undefined;
    if (page && typeof page.send === "function") {
      page.send(event, text);
    } else {
      console.warn("igym: this game runs outside an igym study page; bridge call dropped:", event);
    }
  },
  IgymEpisodeStarted: function (json) {
    IgymBridge("episode_started", json);
  },
  IgymEpisodeEnded: function (json) {
    IgymBridge("episode_ended", json);
  },
  IgymLog: function (json) {
    IgymBridge("log", json);
  },
};
autoAddDeps(IgymBridgeLibrary, "$IgymBridge");
mergeInto(LibraryManager.library, IgymBridgeLibrary);

  // ---- end of Igym.jslib ------------------------------------------------------------------------

  var IgymBridge = LibraryManager.library.$IgymBridge;
  var library = LibraryManager.library;
  function call(name, text) {
    library[name](stringToNewUTF8(text));
  }

  var context = canvas.getContext("2d");
  var stopped = false;
  var lastMessage = null;
  var episode = 0;
  function draw(label, colour) {
    if (!context) return;
    context.fillStyle = colour;
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.fillStyle = "#ffffff";
    context.font = Math.round(canvas.height / 12) + "px sans-serif";
    context.fillText("Fake Unity game", 24, canvas.height / 4);
    context.fillText(label, 24, canvas.height / 2);
    if (lastMessage !== null) context.fillText("SendMessage: " + lastMessage.slice(0, 40), 24, (3 * canvas.height) / 4);
  }
  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }
  async function play() {
    var colours = ["#1d4e89", "#2e7d32", "#8e24aa", "#c62828"];
    await sleep(script.start_ms || 0);
    while (!stopped) {
      var plan = script.episodes[episode % script.episodes.length];
      episode += 1;
      draw("Episode " + episode, colours[episode % colours.length]);
      call("IgymEpisodeStarted", JSON.stringify({ local_episode: episode, note: plan.note || null }));
      await sleep((plan.duration_ms || 500) / 2);
      if (stopped) break;
      (plan.logs || []).forEach(function (text) { call("IgymLog", text); });
      await sleep((plan.duration_ms || 500) / 2);
      if (stopped) break;
      var result = { score: plan.score || 0, note: plan.note || null };
      if (plan.done) result.done = true;
      call("IgymEpisodeEnded", JSON.stringify(result));
      draw("Episode " + episode + " over", "#37474f");
      await sleep(script.between_ms || 100);
    }
  }
  play();
  return {
    SendMessage: function (objectName, methodName, value) {
      fake.sent.push({ object: objectName, method: methodName, value: value });
      lastMessage = String(value);
    },
    Quit: function () {
      stopped = true;
      return Promise.resolve();
    },
  };
};
