/**
 * Shapes of the protocol (docs/protocol.md, version 1) and of the built-in scene views.
 * Server data is checked at run time where it matters; these types describe the happy path.
 */

export const PROTOCOL_VERSION = 1;

export type Answers = Record<string, any>;

/** The boot blob in `<script id="igym-boot" type="application/json">`. */
export interface BootData {
  protocol: number;
  experiment_id: string;
  title: string;
  ws_path: string;
  modules: string[];
  /** Optional: the server's frame size limit (defaults to 64 KiB). */
  max_message_bytes?: number;
}

// ---- server -> client -------------------------------------------------------------------------

export interface WelcomeMessage {
  type: "welcome";
  protocol: number;
  token: string;
  participant_id: string;
  resumed: boolean;
}

export interface SceneMessage {
  type: "scene";
  position: number;
  total: number;
  instance: number;
  scene: SceneView;
  draft: Answers;
  context: Record<string, any>;
}

export interface AckMessage {
  type: "ack";
  seq: number;
}

export interface RejectedMessage {
  type: "rejected";
  seq: number;
  position: number;
  errors: Record<string, string>;
  message: string;
}

export interface ErrorMessage {
  type: "error";
  code: string;
  message: string;
  seq: number | null;
}

export interface SupersededMessage {
  type: "superseded";
  message: string;
}

/** The participant's records could not be saved yet; the next scene follows once they are. */
export interface SavingMessage {
  type: "saving";
  position: number;
  message: string;
}

export interface PongMessage {
  type: "pong";
  seq: number;
  t: number;
  server_time: number;
}

export type ServerMessage =
  | WelcomeMessage
  | SceneMessage
  | AckMessage
  | RejectedMessage
  | ErrorMessage
  | SupersededMessage
  | SavingMessage
  | PongMessage;

// ---- scene views ------------------------------------------------------------------------------

export interface SceneView {
  kind: string;
  scene_id: string;
  [field: string]: any;
}

export interface StartSceneView extends SceneView {
  kind: "start";
  title?: string;
  body_html?: string;
  agree_label?: string;
  button_label?: string;
}

export interface StaticSceneView extends SceneView {
  kind: "static";
  title?: string;
  body_html?: string;
  button_label?: string;
  min_duration_ms?: number;
}

export interface SurveySceneView extends SceneView {
  kind: "survey";
  title?: string;
  intro_html?: string;
  button_label?: string;
  questions: Question[];
}

export interface EndSceneView extends SceneView {
  kind: "end";
  title?: string;
  body_html?: string;
  redirect_delay_ms?: number;
}

// ---- questions --------------------------------------------------------------------------------

interface QuestionBase {
  kind: string;
  id: string;
  prompt: string;
  required: boolean;
}

export interface TextQuestion extends QuestionBase {
  kind: "text";
  min_length: number | null;
  max_length: number | null;
  multiline: boolean;
  placeholder: string | null;
}

export interface Choice {
  value: string;
  label: string;
}

export interface ChoiceQuestion extends QuestionBase {
  kind: "choice";
  choices: Choice[];
  multiple: boolean;
  min_selected: number | null;
  max_selected: number | null;
}

export interface ScaleLabel {
  value: number;
  label: string;
}

export interface ScaleQuestion extends QuestionBase {
  kind: "scale";
  min: number;
  max: number;
  step: number;
  style: "likert" | "slider";
  labels: ScaleLabel[];
}

export interface OptionBox {
  value: string;
  label: string;
  description: string | null;
}

export interface OptionsQuestion extends QuestionBase {
  kind: "options";
  options: OptionBox[];
  multiple: boolean;
  /** Not in the protocol's field list for `options`; honoured if a server sends them. */
  min_selected?: number | null;
  max_selected?: number | null;
}

export type Question = TextQuestion | ChoiceQuestion | ScaleQuestion | OptionsQuestion;
