// A fake Unity WebGL loader (igym test fixture and example; not Unity's code). It behaves like
// Unity's loader where igym depends on it: it defines createUnityInstance(canvas, config, onProgress),
// loads the framework with a <script> tag (a .unityweb one, "decompression fallback", fetched,
// decompressed and run from a blob: URL, as Unity's loader does), fetches and compiles the code (WebAssembly) and fetches the
// data (Unity's "UnityWebData1.0" header, then the script of the episodes it plays), reporting
// progress from 0 to 1, and resolves with an instance that has SendMessage and Quit. The game is in
// the framework: it calls Igym.jslib's functions as a Unity game's C# would.
(function () {
  "use strict";
  var DATA_MAGIC = "UnityWebData1.0\u0000";

  function loadScript(url) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = url;
      script.onload = function () { resolve(script); };
      script.onerror = function () { reject(new Error("Unable to load file " + url)); };
      document.body.appendChild(script);
    });
  }

  function sleep(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  async function fetchBytes(url) {
    var response = await fetch(url);
    if (!response.ok) throw new Error("Failed to download file " + url + " (HTTP " + response.status + ")");
    var bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes[0] === 0x1f && bytes[1] === 0x8b && typeof DecompressionStream === "function") {
      // .unityweb with gzip inside ("decompression fallback"): the loader decompresses it itself.
      var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
      bytes = new Uint8Array(await new Response(stream).arrayBuffer());
    }
    return bytes;
  }

  window.createUnityInstance = function (canvas, config, onProgress) {
    var progress = typeof onProgress === "function" ? onProgress : function () {};
    var fake = (window.__fakeUnity = window.__fakeUnity || { sent: [], progress: [], instances: 0 });
    function report(value) {
      fake.progress.push(value);
      progress(value);
    }
    return (async function () {
      report(0);
      if (/\.unityweb$/.test(config.frameworkUrl)) {
        // Decompression fallback, as Unity's loader does it: fetch the framework, decompress it here
        // and run it from a blob: URL (so the page's script-src must allow blob:).
        var source = await fetchBytes(config.frameworkUrl);
        var blobUrl = URL.createObjectURL(new Blob([source], { type: "application/javascript" }));
        try {
          await loadScript(blobUrl);
        } finally {
          URL.revokeObjectURL(blobUrl);
        }
      } else {
        await loadScript(config.frameworkUrl);
      }
      if (typeof window.igymFakeUnityFramework !== "function") {
        throw new Error("Unable to parse " + config.frameworkUrl + "! The file is corrupt, or compression was misconfigured?");
      }
      var framework = window.igymFakeUnityFramework;
      report(0.2);
      var code = await fetchBytes(config.codeUrl);
      await WebAssembly.instantiate(code);
      report(0.4);
      var data = await fetchBytes(config.dataUrl);
      var header = new TextDecoder().decode(data.subarray(0, DATA_MAGIC.length));
      if (header !== DATA_MAGIC) throw new Error("unknown data format");
      var script = JSON.parse(new TextDecoder().decode(data.subarray(DATA_MAGIC.length)));
      var steps = 4;
      for (var i = 1; i <= steps; i++) {
        await sleep((script.load_ms || 0) / steps);
        report(0.4 + (0.5 * i) / steps);
      }
      if (script.fail) throw new Error(script.fail);
      fake.instances += 1;
      var instance = framework(canvas, script, fake);
      report(1);
      return instance;
    })();
  };
})();
