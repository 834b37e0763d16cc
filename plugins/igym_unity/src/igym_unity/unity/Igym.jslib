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
