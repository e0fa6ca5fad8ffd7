/**
 * `pali`: the engine's command line. User errors print one line, `pali: <what is wrong and what to do>`,
 * and exit 1; nothing prints a stack trace unless PALI_DEBUG is set.
 */
import { createInterface } from 'node:readline/promises';
import { describeError, isUserError, UserError } from '../../common/errors.js';
import { startServer } from '../service/jsonRpcServer.js';
import { altTextCommand } from './altTextCommand.js';
import { devicesCommand } from './devicesCommand.js';
import { psCommand, serveSharedCommand, stopCommand } from './sharedCommands.js';
import { convertCommand, forgeCommand, httpServeCommand, mcpCommand, parseCommand } from './commands.js';
import type { Io } from './modelArgs.js';
import { generateCommand, taskCommand } from './promptCommands.js';

const HELP = `pali: PaliGemma on your machine

  pali forge --preset tiny|tiny-paligemma2|tiny-gemma-vocab|paligemma-3b-224|paligemma-3b-448|paligemma-3b-896|paligemma2-3b-224
             --seed N --out DIR [--dtype f32|bf16|f16] [--answer TEXT] [--outliers] [--tokenizer DIR]
                                 (--answer: weights whose greedy answer is TEXT, for tests of detect/segment;
                                 --outliers: massive activations and outlier channels, for quantization tests;
                                 --tokenizer: a real Gemma tokenizer.json in DIR, extended with PaliGemma's tokens)
  pali forge --preset vae-oid --seed N --out DIR      a random mask VQ-VAE (DIR/vae-oid.npz) for segmentation
  pali convert --model DIR [--dtype auto|int4|int8|fp16|fp32] [--cache-dir DIR]
  pali generate --model DIR --image FILE --prompt TEXT|--prompt-file FILE|- [--max-new-tokens N] [--dtype auto|int4|int8|fp16|fp32]
                [--device auto|cpu|cuda|webgpu] [--runtime native|wasm] [--json] [--logits-out FILE]
                [--max-image-pixels N]
                [--temperature T --top-k K --top-p P --seed S]
  pali caption FILE [--long] [--lang en]
  pali ocr FILE
  pali ask FILE "question"
  pali detect FILE "cat ; dog"
  pali segment FILE "cat ; dog" [--mask-out DIR] [--vae vae-oid.npz]
                                 masks from PaliGemma's <seg> tokens (with --json: COCO RLE per object)
  pali parse --image FILE --text TEXT|--text-file FILE|- [--vae FILE] [--mask-out DIR] [--json]
                                 boxes and masks from a model's answer, without running the model
  pali devices [--json]          each device, whether --device auto uses it and why, its adapter (software
                                 or not: WebGPU on llvmpipe or SwiftShader is never chosen), and its weights
  pali alt-text --check [--format text|json|sarif] [PATH...]
                                 report images with missing, empty or placeholder alt text in Markdown,
                                 HTML, JSX and TSX (respects .gitignore; exit 1 on findings); no model needed
  pali alt-text --fix --model DIR [--yes] [--lang en] [PATH...]
                                 write the model's alt text into those findings (shows the diff first)
  pali mcp [--model DIR | --remote URL] [--shared [--keep-alive MINUTES]] [--root DIR]...
                                 a Model Context Protocol server over stdio for coding agents: describe_image,
                                 read_text_in_image, ask_about_image, detect_objects, check_alt_text; files
                                 only inside the client's roots, else --root, else the working folder;
                                 --remote: a pali serve or vLLM server answers (its key in PALI_API_KEY);
                                 --shared: the shared engine answers (started if none runs), one model
                                 for every client
  pali serve [--stdio|--ipc]     the engine's JSON-RPC server (what the VS Code extension runs)
  pali serve --shared [--keep-alive MINUTES] [--linger SECONDS]
                                 one engine for this user on a private socket, shared by its clients; it
                                 unloads the model after --keep-alive minutes without a request (10; 0
                                 keeps it) and exits --linger seconds (10) after it has no client and no model
  pali ps [--json]               what the shared engine holds: its pid, clients, model, state and memory
  pali stop                      stop the shared engine once its requests in flight are answered
  pali serve --model DIR [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--allow-origin ORIGIN] [--allow-remote-images] [--max-batch 8]
                                 an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/models);
                                 PALI_API_KEY also sets the key; --max-batch 1 decodes one request at a
                                 time (answers then match the CLI's exactly at every dtype)

--dtype auto (the default) runs int8 weights on a CPU with integer dot products (AVX-512 VNNI, AVX-VNNI,
AMX, ARM dotprod), int4 on other CPUs, and fp16 on a GPU; fp32 is the exact reference.
The shortcuts take the model from --model or PALI_MODEL. Converted models are cached in
$PALI_CACHE_DIR (default ~/.cache/paligemma-local).
`;

/**
 * onnxruntime-node 1.30 crashes (SIGSEGV, a deep recursion in libonnxruntime) when the process's command
 * line is around 24,000 characters or more, before any model is run; measured here. Refuse long command
 * lines in one line instead: long prompts go through --prompt-file.
 */
const COMMAND_LINE_LIMIT = 16_384;

export async function main(argv: string[], io: Io): Promise<number> {
  const [command, ...rest] = argv;
  try {
    const length = argv.reduce((sum, arg) => sum + arg.length + 1, 0);
    if (length > COMMAND_LINE_LIMIT) {
      throw new UserError(`the command line is ${length} characters long (at most ${COMMAND_LINE_LIMIT}): pass a long prompt with --prompt-file FILE, or - for standard input`);
    }
    switch (command) {
      case 'forge':
        await forgeCommand(rest, io);
        return 0;
      case 'convert':
        await convertCommand(rest, io);
        return 0;
      case 'generate':
        await generateCommand(rest, io);
        return 0;
      case 'caption':
      case 'ocr':
      case 'ask':
      case 'detect':
      case 'segment':
        await taskCommand(command, rest, io);
        return 0;
      case 'parse':
        await parseCommand(rest, io);
        return 0;
      case 'devices':
        await devicesCommand(rest, io);
        return 0;
      case 'alt-text':
        return await altTextCommand(rest, io);
      case 'mcp':
        // stdout belongs to the protocol until the client closes stdin.
        await mcpCommand(rest);
        return 0;
      case 'ps':
        await psCommand(rest, io);
        return 0;
      case 'stop':
        await stopCommand(rest, io);
        return 0;
      case 'serve':
        if (rest.includes('--shared')) {
          await serveSharedCommand(rest, io);
          return 0;
        }
        // With a model: the OpenAI-compatible HTTP server, until SIGTERM.
        if (rest.some((arg) => arg === '--model' || arg.startsWith('--model=') || arg === '--port')) {
          await httpServeCommand(rest, io);
          return 0;
        }
        // Otherwise the extension's JSON-RPC engine: runs until the client closes the connection; stdout
        // then belongs to the protocol.
        startServer(rest.includes('--ipc') ? 'ipc' : 'stdio', { cacheRoot: process.env.PALI_CACHE_DIR });
        return await new Promise<number>(() => {});
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.out(HELP);
        return command === undefined ? 1 : 0;
      default:
        io.err(`pali: unknown command "${command}": run pali --help`);
        return 1;
    }
  } catch (error) {
    if (error instanceof Error && error.name === 'AbortError') {
      io.err('pali: cancelled');
      return 130;
    }
    if (process.env.PALI_DEBUG && error instanceof Error) io.err(error.stack ?? error.message);
    io.err(isUserError(error) ? `pali: ${error.message}` : `pali: internal error: ${describeError(error).split('\n')[0]} (set PALI_DEBUG=1 for details)`);
    // A linter's convention: 1 means findings, so a check that could not run says 2.
    return command === 'alt-text' ? 2 : 1;
  }
}

async function askOnTerminal(question: string): Promise<boolean> {
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

if (require.main === module) {
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  main(process.argv.slice(2), {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
    signal: controller.signal,
    interactive: process.stderr.isTTY === true || process.env.PALI_VERBOSE === '1',
    confirm: process.stdin.isTTY ? askOnTerminal : undefined,
  }).then(
    (code) => {
      process.exitCode = code;
    },
    (error) => {
      process.stderr.write(`pali: internal error: ${describeError(error)}\n`);
      process.exitCode = 1;
    },
  );
}
