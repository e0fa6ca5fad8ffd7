/**
 * Language model tools (contributes.languageModelTools + vscode.lm.registerTool): agents in VS Code, such as
 * Copilot's agent mode, can describe an image, read its text or ask about it, for image files in the
 * workspace. They run on the extension's one engine (or its remote backend): no second model in memory.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { boxesAsText } from '../../common/locTokens.js';
import type { TaskRequest } from '../../common/prompts.js';
import type { GenerateResultMessage } from '../../protocol.js';
import type { Settings } from '../config.js';
import type { VisionEngine } from '../engine/visionEngine.js';
import { isImageUri, toImageSource } from '../imageSources.js';
import { IMAGE_FORMAT_NAMES } from '../../common/imageFiles.js';

interface ImageInput {
  path: string;
}
interface DescribeInput extends ImageInput {
  detail?: 'short' | 'long';
}
interface AskInput extends ImageInput {
  question: string;
}
interface DetectInput extends ImageInput {
  labels: string[];
}

/** The tools' names, as package.json's contributes.languageModelTools declares them. */
export const IMAGE_TOOLS = {
  describe: 'paligemma_describeImage',
  readText: 'paligemma_readTextInImage',
  ask: 'paligemma_askAboutImage',
  detect: 'paligemma_detectObjects',
} as const;

/** LanguageModelDataPart is stable only in VS Code releases after the one we require: used when present. */
const DataPart = (vscode as unknown as { LanguageModelDataPart?: { json(value: unknown): unknown } }).LanguageModelDataPart;

/** A workspace image by path (relative to the first folder, or absolute inside one); an error a model can act on otherwise. */
export function resolveWorkspaceImage(given: string): vscode.Uri {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (!folders.length) throw new Error('No folder is open: the image tools read image files in the workspace.');
  const uri = path.isAbsolute(given) ? vscode.Uri.file(given) : vscode.Uri.joinPath(folders[0]!.uri, given);
  if (!vscode.workspace.getWorkspaceFolder(uri)) throw new Error(`${given} is outside the workspace: the image tools read image files in the workspace folders only.`);
  if (!isImageUri(uri)) throw new Error(`${given} is not an image file (${IMAGE_FORMAT_NAMES}).`);
  return uri;
}

function tool<T extends ImageInput>(
  engine: VisionEngine,
  settings: () => Settings,
  message: (file: string, input: T) => string,
  task: (input: T, language: string) => TaskRequest,
  maxNewTokens: (settings: Settings) => number,
  parts: (result: GenerateResultMessage) => unknown[] = (result) => [new vscode.LanguageModelTextPart(result.text.trim())],
): vscode.LanguageModelTool<T> {
  return {
    prepareInvocation: (options) => ({ invocationMessage: message(path.basename(options.input.path ?? ''), options.input) }),
    invoke: async (options, token) => {
      const uri = resolveWorkspaceImage(options.input.path);
      try {
        await vscode.workspace.fs.stat(uri);
      } catch {
        throw new Error(`${options.input.path}: no such file in the workspace.`);
      }
      const current = settings();
      const result = await engine.generate({ image: await toImageSource(uri), task: task(options.input, current.language), maxNewTokens: maxNewTokens(current) }, token);
      return new vscode.LanguageModelToolResult(parts(result) as vscode.LanguageModelTextPart[]);
    },
  };
}

/** Detection: the boxes as text for the model, and as JSON data where the API has data parts. */
function detectionParts(result: GenerateResultMessage): unknown[] {
  const boxes = result.boxes ?? [];
  const parts: unknown[] = [new vscode.LanguageModelTextPart(boxesAsText(boxes, result.imageWidth, result.imageHeight))];
  if (DataPart) parts.push(DataPart.json({ objects: boxes, imageWidth: result.imageWidth, imageHeight: result.imageHeight }));
  return parts;
}

export function registerImageTools(engine: VisionEngine, settings: () => Settings): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.lm.registerTool<DescribeInput>(IMAGE_TOOLS.describe, tool(engine, settings,
      (file) => vscode.l10n.t('Describing {0} with PaliGemma', file),
      (input, language) => ({ task: input.detail === 'long' ? 'describe' : 'caption', language }),
      (s) => s.maxNewTokens)),
    vscode.lm.registerTool<ImageInput>(IMAGE_TOOLS.readText, tool(engine, settings,
      (file) => vscode.l10n.t('Reading the text in {0} with PaliGemma', file),
      () => ({ task: 'ocr' }),
      (s) => Math.max(s.maxNewTokens, 256))),
    vscode.lm.registerTool<AskInput>(IMAGE_TOOLS.ask, tool(engine, settings,
      (file, input) => vscode.l10n.t('Asking PaliGemma about {0}: {1}', file, input.question ?? ''),
      (input, language) => {
        if (!input.question?.trim()) throw new Error('The question is empty.');
        return { task: 'answer', language, text: input.question };
      },
      (s) => s.maxNewTokens)),
    vscode.lm.registerTool<DetectInput>(IMAGE_TOOLS.detect, tool(engine, settings,
      (file, input) => vscode.l10n.t('Finding {0} in {1} with PaliGemma', (input.labels ?? []).join(', '), file),
      (input) => {
        const labels = (input.labels ?? []).map((l) => l.replace(/;/g, ' ').trim()).filter(Boolean);
        if (!labels.length) throw new Error('Give at least one label to look for.');
        return { task: 'detect', text: labels.join(' ; ') };
      },
      (s) => s.maxNewTokens,
      detectionParts)),
  );
}
