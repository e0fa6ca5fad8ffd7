/** Messages between the Describe panel's webview (src/webview/describe.ts) and its host. */
import type { DetectedBox } from '../../common/locTokens.js';
import { VERB_TASKS, type Verb } from '../../common/prompts.js';
import type { SegmentMessage } from '../../protocol.js';

export type PanelAction = Verb;

export type ToWebview =
  | { type: 'image'; dataUrl: string; name: string }
  | { type: 'start'; id: number; action: PanelAction; question?: string }
  | { type: 'piece'; id: number; piece: string }
  | { type: 'result'; id: number; text: string; boxes?: DetectedBox[]; segments?: SegmentMessage[]; notes?: string[]; imageWidth: number; imageHeight: number; device: string; ms: number }
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

/** A question or object list; the model's prompt is far shorter than this anyway. */
const MAX_QUESTION_CHARS = 10_000;
/** Text the webview asks to copy or insert: a result, which the engine capped at 1,024 tokens. */
const MAX_RESULT_CHARS = 1_000_000;
/** A pasted image: 64 MB of base64, far above any screenshot and below what would stall the host. */
const MAX_PASTED_BASE64 = 64 * 1024 * 1024;

const isText = (value: unknown, max: number): value is string => typeof value === 'string' && value.length <= max;

/**
 * The webview's message, checked field by field before the host uses it, or undefined: the webview runs
 * content (an image, model output) and its messages are data, never trusted as typed.
 */
export function parseFromWebview(raw: unknown): FromWebview | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const message = raw as Record<string, unknown>;
  switch (message.type) {
    case 'ready':
    case 'cancel':
      return { type: message.type };
    case 'run':
      if (typeof message.action !== 'string' || !Object.hasOwn(VERB_TASKS, message.action)) return undefined;
      if (message.text !== undefined && !isText(message.text, MAX_QUESTION_CHARS)) return undefined;
      return message.text === undefined ? { type: 'run', action: message.action as Verb } : { type: 'run', action: message.action as Verb, text: message.text };
    case 'copy':
    case 'insert':
      return isText(message.text, MAX_RESULT_CHARS) ? { type: message.type, text: message.text } : undefined;
    case 'pastedImage': {
      const { base64, mime, name } = message;
      if (!isText(base64, MAX_PASTED_BASE64) || !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) return undefined;
      if (!isText(mime, 100) || !/^image\/[a-z0-9.+-]+$/i.test(mime)) return undefined;
      // A display name only: never a path the host would open.
      if (!isText(name, 255) || /[\\/\u0000-\u001f]/.test(name) || name === '..' || name === '.') return undefined;
      return { type: 'pastedImage', base64, mime, name };
    }
    default:
      return undefined;
  }
}
