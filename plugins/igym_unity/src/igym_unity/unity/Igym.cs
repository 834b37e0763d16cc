// igym's bridge for Unity WebGL builds (goes with Igym.jslib in Assets/Plugins/WebGL).
//
//   Igym.EpisodeStarted("{\"level\": 2}");
//   Igym.EpisodeEnded(JsonUtility.ToJson(result));   // {"score": 12.5} is added to the server's score;
//                                                    // {"done": true} ends the scene early
//   Igym.Log("{\"event\": \"pickup\", \"item\": \"key\"}");
//
// Pass JSON text. igym records it as it is (the "payload" column of unity_events) and refuses text
// that is not JSON. At an episode start igym may call SendMessage(object, method, json) on the
// GameObject the scene names (send_message_object / send_message_method).
using System.Runtime.InteropServices;
using UnityEngine;

public static class Igym
{
#if UNITY_WEBGL && !UNITY_EDITOR
    [DllImport("__Internal")] private static extern void IgymEpisodeStarted(string json);
    [DllImport("__Internal")] private static extern void IgymEpisodeEnded(string json);
    [DllImport("__Internal")] private static extern void IgymLog(string json);

    public static void EpisodeStarted(string json) { IgymEpisodeStarted(json); }
    public static void EpisodeEnded(string json) { IgymEpisodeEnded(json); }
    public static void Log(string json) { IgymLog(json); }
#else
    // In the editor and other platforms there is no igym page: the calls are logged.
    public static void EpisodeStarted(string json) { Debug.Log("Igym.EpisodeStarted " + json); }
    public static void EpisodeEnded(string json) { Debug.Log("Igym.EpisodeEnded " + json); }
    public static void Log(string json) { Debug.Log("Igym.Log " + json); }
#endif
}
