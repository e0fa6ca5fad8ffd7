/** Messages between the Describe panel's webview (media/describe.js) and its host. */
import type { DetectedBox } from '../../common/locTokens.js';
import type { Verb } from '../../common/prompts.js';

export type PanelAction = Verb;

export type ToWebview =
  | { type: 'image'; dataUrl: string; name: string }
  | { type: 'start'; id: number; action: PanelAction; question?: string }
  | { type: 'piece'; id: number; piece: string }
  | { type: 'result'; id: number; text: string; boxes?: DetectedBox[]; imageWidth: number; imageHeight: number; device: string; ms: number }
  | { type: 'error'; id: number; message: string };

export type FromWebview =
  | { type: 'ready' }
  | { type: 'run'; action: PanelAction; text?: string }
  | { type: 'cancel' }
  | { type: 'copy'; text: string }
  | { type: 'insert'; text: string }
  | { type: 'pastedImage'; base64: string; mime: string; name: string };

/** What the webview keeps with getState/setState, and what the serializer revives the panel from. */
export interface PanelState {
  imageUri?: string;
  pasted?: { base64: string; mime: string; name: string };
}
