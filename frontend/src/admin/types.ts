/** The admin socket's messages (igym_core/admin/live.py and service.py build them). */

export interface SceneCount {
  scene_id: string;
  participants: number;
  connected: number;
}

export interface WaitingRoom {
  scene_id: string;
  instance: number;
  waiting: number;
  group_size: number;
}

export interface GameRow {
  game_id: string;
  scene_id: string;
  participant_ids: string[];
  measured_fps: number | null;
  phase?: string;
  fps?: number;
  rtt_ms?: Record<string, number | null>;
}

export interface LoggedError {
  at: string;
  level: string;
  logger: string;
  event: string;
  detail: Record<string, unknown>;
}

export interface AdminAction {
  action: string;
  admin_session: string;
  at: string;
  detail: Record<string, unknown>;
}

export interface ExportFile {
  name: string;
  bytes: number;
}

/** The dashboard's export (igym_core/admin/export.py ``Exports.snapshot``). */
export interface ExportStatus {
  available: boolean;
  state?: "none" | "running" | "ready" | "failed";
  started_at?: string;
  finished_at?: string;
  admin_session?: string;
  duration_s?: number;
  message?: string;
  ready?: { finished_at: string; admin_session: string; files: ExportFile[]; bytes: number } | null;
}

export interface Snapshot {
  type: "snapshot";
  at: string;
  experiment_id: string;
  uptime_s: number;
  arrivals_paused: boolean;
  pause_message: string | null;
  participants: { in_memory: number; connected: number; finished: number; arrivals: number };
  scenes: SceneCount[];
  waiting_rooms: WaitingRoom[];
  games: GameRow[];
  games_total: number;
  outcomes: Record<string, number>;
  series: { minute_s: number; first_minute: number; arrivals: number[]; completions: number[] };
  errors: LoggedError[];
  errors_total: number;
  actions: AdminAction[];
  admins: number;
  export: ExportStatus;
}

export interface ActionReply {
  type: "done" | "error";
  action?: string;
  message?: string;
  game_id?: string;
}
