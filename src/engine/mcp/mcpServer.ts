/**
 * `pali mcp`: the engine as a Model Context Protocol server over stdio, on the official SDK, so that coding
 * agents can see images without sending them to a cloud model. Tools: describe_image, read_text_in_image,
 * ask_about_image, detect_objects (boxes in image pixels) and check_alt_text (`pali alt-text --check`'s
 * findings, no model needed). The model loads on the first image tool call, with progress notifications;
 * or, with --remote, a team's server answers (remoteVision.ts); with --shared, the user's shared engine
 * (sharedVision.ts), which VS Code's windows use too. Cancellation from the client stops the
 * request. Every tool answers text for the model and structured content matching its output schema;
 * failures are one line with isError, as the CLI prints them.
 */
import * as fs from 'node:fs';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { z } from 'zod';
import { boxesAsText } from '../../common/locTokens.js';
import type { TaskRequest } from '../../common/prompts.js';
import type { DeviceChoice, DtypeChoice, ImageSource } from '../../protocol.js';
import { checkPaths } from '../altCheck/findings.js';
import { describeError, isUserError, UserError } from '../../common/errors.js';
import { confine, rootsFromUris } from './roots.js';
import { LocalVision } from './localVision.js';
import { RemoteVision, type Vision, type VisionAnswer } from './remoteVision.js';
import { SharedVision } from './sharedVision.js';
import { defaultCacheRoot } from '../convert/convert.js';
import type { RemoteEndpoint } from '../../common/remote/chatClient.js';
import packageJson from '../../../package.json';
import { IMAGE_FORMAT_NAMES } from '../../common/imageFiles.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface McpOptions {
  modelDir?: string;
  dtype: DtypeChoice;
  device: DeviceChoice;
  cacheRoot?: string;
  /** --root folders: where files may be read when the client declares no roots. */
  roots: string[];
  /** --remote: a `pali serve` or vLLM server answers the image tools instead of a local model. */
  remote?: RemoteEndpoint;
  /** --shared: the user's shared engine answers (started if none runs), with this keepAlive if started here. */
  shared?: { keepAliveMinutes: number };
  /** The server's own log (stderr, which MCP clients show as the server's output). */
  log?: (line: string) => void;
}

const image = z.object({
  path: z.string().optional().describe(`An image file (${IMAGE_FORMAT_NAMES}), absolute or relative to the first root`),
  data: z.string().optional().describe('Or the image itself, base64-encoded'),
  mimeType: z.string().optional().describe('With data: its type, for example image/png'),
}).describe('The image: a path inside the workspace roots, or base64 data');
const language = z.string().regex(/^[a-z]{2,3}(-[A-Za-z]{2,4})?$/).default('en').describe('Language code of the answer, for example en, fr, de');

const textOutput = { text: z.string().describe('The model\'s answer'), imageWidth: z.number(), imageHeight: z.number() };
const box = z.object({ xMin: z.number(), yMin: z.number(), xMax: z.number(), yMax: z.number() });

/** Where the image tools' answers come from: a server (--remote), the shared engine (--shared) or this process. */
function visionFor(options: McpOptions): { vision: Vision | null; where: string } {
  if (options.remote) return { vision: new RemoteVision(options.remote), where: 'on your own PaliGemma server' };
  const where = 'running locally';
  // The model is needed by the image tools only: check_alt_text works without one, and says nothing of it.
  if (!options.modelDir) return { vision: null, where };
  const model = { modelDir: options.modelDir, dtype: options.dtype, device: options.device };
  if (options.shared) {
    return { vision: new SharedVision({ model, cacheDir: options.cacheRoot ?? defaultCacheRoot(), keepAliveMinutes: options.shared.keepAliveMinutes, log: options.log }), where };
  }
  return { vision: new LocalVision(model, options.cacheRoot), where };
}

/** What every tool needs: the server, the roots files may be read from, and a way to ask the model. */
interface ToolContext {
  server: McpServer;
  /** Where the answers come from, for the tools' descriptions. */
  where: string;
  roots(): Promise<string[]>;
  /** The model's answer for an image argument, its text streamed to the client as progress. */
  ask(task: TaskRequest, argument: z.infer<typeof image>, extra: Extra, maxNewTokens?: number): Promise<VisionAnswer>;
  /** A tool's body with one-line errors, as the CLI prints them. */
  tool<T>(body: (args: T, extra: Extra) => Promise<CallToolResult>): (args: T, extra: Extra) => Promise<CallToolResult>;
}

export function createMcpServer(options: McpOptions): McpServer {
  const server = new McpServer({ name: 'pali', version: packageJson.version });
  const { vision, where } = visionFor(options);
  let clientRoots: string[] | undefined;
  server.server.setNotificationHandler(z.object({ method: z.literal('notifications/roots/list_changed') }).passthrough(), async () => {
    clientRoots = undefined;
  });

  async function roots(): Promise<string[]> {
    if (server.server.getClientCapabilities()?.roots) {
      clientRoots ??= rootsFromUris((await server.server.listRoots()).roots.map((r) => r.uri));
      if (clientRoots.length) return clientRoots;
    }
    return options.roots.length ? options.roots : [process.cwd()];
  }

  async function imageSource(argument: z.infer<typeof image>): Promise<ImageSource> {
    if ((argument.path === undefined) === (argument.data === undefined)) throw new UserError('give the image as path or as data (base64), one of the two');
    if (argument.data !== undefined) {
      if (!/^[A-Za-z0-9+/=\s]+$/.test(argument.data)) throw new UserError('data must be base64 (without a data: prefix)');
      return { base64: argument.data.replace(/\s/g, ''), name: `image.${(argument.mimeType ?? 'image/png').split('/')[1] ?? 'png'}` };
    }
    const file = confine(argument.path!, await roots());
    if (!fs.existsSync(file)) throw new UserError(`${argument.path}: no such file`);
    return { path: file };
  }

  const context: ToolContext = {
    server,
    where,
    roots,
    async ask(task, argument, extra, maxNewTokens = 64) {
      const source = await imageSource(argument);
      if (!vision) throw new UserError('no model: start pali mcp with --model DIR or set PALI_MODEL to a PaliGemma checkpoint folder (or --remote URL for a server)');
      const progress = progressFor(extra);
      return vision.generate(source, task, maxNewTokens, extra.signal, (piece) => progress(`generated: ${piece}`), progress);
    },
    tool: (body) => async (args, extra) => {
      try {
        return await body(args, extra);
      } catch (error) {
        // The engine ended the call's decoding for the client's cancellation (an AbortError from generate).
        if (error instanceof Error && error.name === 'AbortError') options.log?.(`pali mcp: request ${String(extra.requestId)} cancelled by the client; its decoding stopped`);
        const message = extra.signal.aborted ? 'cancelled' : isUserError(error) ? error.message : `internal error: ${describeError(error).split('\n')[0]}`;
        return { content: [{ type: 'text', text: `pali: ${message}` }], isError: true };
      }
    },
  };
  for (const register of [describeImageTool, readTextTool, askTool, detectTool, checkAltTextTool]) register(context);
  server.server.onclose = () => void vision?.close();
  return server;
}

/** The client's progress notifications for one call (none when it gave no progress token). */
function progressFor(extra: Extra): (message: string) => void {
  const token = extra._meta?.progressToken;
  let step = 0;
  return (message) => {
    if (token !== undefined) void extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: ++step, message } }).catch(() => undefined);
  };
}

const textAnswer = (result: VisionAnswer): CallToolResult => ({
  content: [{ type: 'text', text: result.text }],
  structuredContent: { text: result.text, imageWidth: result.imageWidth, imageHeight: result.imageHeight },
});

function describeImageTool({ server, where, ask, tool }: ToolContext): void {
  server.registerTool('describe_image', {
    title: 'Describe an image',
    description: `Caption an image with PaliGemma, ${where}: a short caption, or a longer description with length "long". Use it to see a screenshot, a diagram or a photo without sending it to a cloud model.`,
    inputSchema: { image, length: z.enum(['short', 'long']).default('short').describe('short: one caption; long: a few sentences'), language },
    outputSchema: textOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, tool(async ({ image: argument, length, language: lang }, extra) =>
    textAnswer(await ask({ task: length === 'long' ? 'describe' : 'caption', language: lang }, argument, extra, length === 'long' ? 160 : 64))));
}

function readTextTool({ server, where, ask, tool }: ToolContext): void {
  server.registerTool('read_text_in_image', {
    title: 'Read the text in an image (OCR)',
    description: `Read the text in an image (OCR) with PaliGemma, ${where}: error dialogs, terminal screenshots, scanned notes.`,
    inputSchema: { image },
    outputSchema: textOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, tool(async ({ image: argument }, extra) => textAnswer(await ask({ task: 'ocr' }, argument, extra, 256))));
}

function askTool({ server, where, ask, tool }: ToolContext): void {
  server.registerTool('ask_about_image', {
    title: 'Ask a question about an image',
    description: `Answer a short question about an image with PaliGemma, ${where} ("what colour is the button?", "how many rows are there?"). Answers are short.`,
    inputSchema: { image, question: z.string().min(1).max(2000).describe('The question, in the given language'), language },
    outputSchema: textOutput,
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, tool(async ({ image: argument, question, language: lang }, extra) => {
    if (!question.trim()) throw new UserError('the question is empty');
    return textAnswer(await ask({ task: 'answer', language: lang, text: question }, argument, extra));
  }));
}

function detectTool({ server, where, ask, tool }: ToolContext): void {
  server.registerTool('detect_objects', {
    title: 'Find objects in an image',
    description: `Find objects in an image with PaliGemma, ${where}. Returns a box in image pixels (xMin, yMin, xMax, yMax, origin top left) for each object found; an empty list when none is.`,
    inputSchema: { image, labels: z.array(z.string().min(1)).min(1).max(20).describe('What to look for, for example ["cat", "dog"]') },
    outputSchema: { objects: z.array(z.object({ label: z.string(), box })), imageWidth: z.number(), imageHeight: z.number() },
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, tool(async ({ image: argument, labels }, extra) => {
    const result = await ask({ task: 'detect', text: labels.map((l) => l.replace(/;/g, ' ').trim()).join(' ; ') }, argument, extra);
    const objects = (result.boxes ?? []).map(({ label, ...rest }) => ({ label, box: rest }));
    return {
      content: [{ type: 'text', text: boxesAsText(result.boxes ?? [], result.imageWidth, result.imageHeight) }],
      structuredContent: { objects, imageWidth: result.imageWidth, imageHeight: result.imageHeight },
    };
  }));
}

function checkAltTextTool({ server, roots, tool }: ToolContext): void {
  server.registerTool('check_alt_text', {
    title: 'Check alt text',
    description: 'Find images with missing, empty or placeholder alt text in Markdown, HTML, JSX and TSX files or folders (respecting .gitignore), as `pali alt-text --check` does. Needs no model.',
    inputSchema: { paths: z.array(z.string()).min(1).describe('Files or folders inside the roots') },
    outputSchema: {
      findings: z.array(z.object({ path: z.string(), line: z.number(), column: z.number(), endLine: z.number(), endColumn: z.number(), ruleId: z.string(), message: z.string(), src: z.string().optional() })),
      filesChecked: z.number(),
    },
    annotations: { readOnlyHint: true, openWorldHint: false },
  }, tool(async ({ paths }) => {
    const allowed = await roots();
    const files = paths.map((given) => confine(given, allowed));
    const { files: checked } = checkPaths(files, allowed[0]);
    const findings = checked.flatMap((f) => f.findings.map((x) => x.finding));
    const text = findings.length ? findings.map((f) => `${f.path}:${f.line}:${f.column}: ${f.message} (${f.ruleId})`).join('\n') : `No findings in ${checked.length} files.`;
    return { content: [{ type: 'text', text }], structuredContent: { findings, filesChecked: checked.length } };
  }));
}

/** Serves over stdin/stdout until the client closes them. */
export async function runMcpServer(options: McpOptions): Promise<void> {
  const server = createMcpServer({ log: (line) => process.stderr.write(`${line}\n`), ...options });
  const closed = new Promise<void>((resolve) => {
    const previous = server.server.onclose;
    server.server.onclose = () => {
      previous?.();
      resolve();
    };
  });
  await server.connect(new StdioServerTransport());
  await closed;
}
