/**
 * `pali mcp` driven by the official MCP SDK's own client over stdio, with the tiny model: the tool list with
 * schemas, each tool's structured result (answers equal to the CLI's), progress while loading, roots from the
 * client and from --root, and one-line errors for bad input. With --remote, the same answers from a
 * `pali serve` on loopback.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ListRootsRequestSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { startPaliServe, type RunningServer } from '../../helpers/paliServe.js';
import { PALI_CLI as CLI, pali } from '../../helpers/pali.js';

/** The server's stderr lines, by client. */
const serverLogs = new WeakMap<Client, string[]>();

async function connect(args: string[], env: Record<string, string>, roots?: string[]): Promise<Client> {
  const client = new Client({ name: 'pali-test', version: '1.0.0' }, { capabilities: roots ? { roots: { listChanged: true } } : {} });
  if (roots) client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: roots.map((root) => ({ uri: pathToFileURL(root).href, name: path.basename(root) })) }));
  const transport = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', ...args], env: { ...process.env, ...env } as Record<string, string>, stderr: 'pipe' });
  const log: string[] = [];
  transport.stderr?.on('data', (chunk: Buffer) => log.push(...chunk.toString().split('\n').filter(Boolean)));
  serverLogs.set(client, log);
  await client.connect(transport);
  return client;
}

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text;

describe('pali mcp with the SDK\'s client', () => {
  const root = tempDir('mcp');
  const workspace = path.join(root, 'workspace');
  let client: Client;
  let model: string;
  let env: Record<string, string>;
  const cli = (args: string[]) => execFileSync(process.execPath, [CLI, ...args, '--model', model, '--dtype', 'fp32', '--device', 'cpu', '--quiet'], { env: { ...process.env, ...env }, encoding: 'utf8' });

  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 4);
    model = tiny.checkpointDir;
    env = { PALI_CACHE_DIR: tiny.cacheRoot };
    fs.mkdirSync(path.join(workspace, 'docs'), { recursive: true });
    await writeGradientPng(path.join(workspace, 'shot.png'), 64, 40, 3);
    fs.writeFileSync(path.join(workspace, 'docs', 'guide.md'), '# Guide\n\n![](../shot.png)\n\n![A gradient](../shot.png)\n');
    await writeGradientPng(path.join(root, 'outside.png'), 20, 20, 1);
    client = await connect(['--model', model, '--dtype', 'fp32', '--device', 'cpu'], env, [workspace]);
  });
  after(() => client?.close());

  test('lists the five tools, each with a description and input and output schemas', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['ask_about_image', 'check_alt_text', 'describe_image', 'detect_objects', 'read_text_in_image']);
    for (const tool of tools) {
      assert.ok(tool.description && tool.description.length > 40, tool.name);
      assert.equal(tool.inputSchema.type, 'object');
      assert.ok(tool.outputSchema, `${tool.name} has an output schema`);
      assert.equal(tool.annotations?.readOnlyHint, true);
    }
    const describe = tools.find((t) => t.name === 'describe_image')!;
    assert.deepEqual(Object.keys(describe.inputSchema.properties!).sort(), ['image', 'language', 'length']);
  });

  test('describe_image answers as `pali caption`, with progress while the model loads', async () => {
    const progress: string[] = [];
    const result = await client.callTool({ name: 'describe_image', arguments: { image: { path: 'shot.png' } } }, undefined, {
      onprogress: (p) => void progress.push(p.message ?? ''),
    }) as CallToolResult;
    assert.equal(result.isError, undefined, text(result));
    const expected = cli(['caption', path.join(workspace, 'shot.png')]).trim();
    assert.equal(text(result).trim(), expected);
    assert.deepEqual(result.structuredContent, { text: text(result), imageWidth: 64, imageHeight: 40 });
    assert.equal((result.structuredContent as { text: string }).text.trim(), expected);
    assert.ok(progress.some((m) => /loading the model/.test(m)), `progress: ${progress.join(' | ')}`);
  });

  test('read_text_in_image, ask_about_image and detect_objects answer as the CLI does; base64 data works as a path does', async () => {
    const ocr = await client.callTool({ name: 'read_text_in_image', arguments: { image: { path: path.join(workspace, 'shot.png') } } }) as CallToolResult;
    assert.equal(text(ocr), cli(['ocr', path.join(workspace, 'shot.png'), '--max-new-tokens', '256']).replace(/\n$/, ''));
    const data = fs.readFileSync(path.join(workspace, 'shot.png')).toString('base64');
    const ask = await client.callTool({ name: 'ask_about_image', arguments: { image: { data, mimeType: 'image/png' }, question: 'what is this?' } }) as CallToolResult;
    assert.equal(text(ask), cli(['ask', path.join(workspace, 'shot.png'), 'what is this?']).replace(/\n$/, ''));
    const detect = await client.callTool({ name: 'detect_objects', arguments: { image: { path: 'shot.png' }, labels: ['cat', 'dog'] } }) as CallToolResult;
    const expected = JSON.parse(cli(['detect', path.join(workspace, 'shot.png'), 'cat ; dog', '--json'])) as { boxes: { label: string; xMin: number }[] };
    const structured = detect.structuredContent as { objects: { label: string; box: { xMin: number } }[]; imageWidth: number };
    assert.deepEqual(structured.objects.map((o) => [o.label, o.box.xMin]), expected.boxes.map((b) => [b.label, b.xMin]));
    assert.equal(structured.imageWidth, 64);
  });

  test('check_alt_text gives `pali alt-text --check`\'s findings', async () => {
    const result = await client.callTool({ name: 'check_alt_text', arguments: { paths: ['docs'] } }) as CallToolResult;
    const structured = result.structuredContent as { findings: { path: string; line: number; ruleId: string }[]; filesChecked: number };
    assert.deepEqual(structured.findings.map((f) => [f.path, f.line, f.ruleId]), [['docs/guide.md', 3, 'alt-missing']]);
    assert.equal(structured.filesChecked, 1);
    assert.equal(text(result), 'docs/guide.md:3:1: missing alt text (alt-missing)');
  });

  test('bad input gets one clean line: outside the roots, no such file, not an image, neither path nor data', async () => {
    const call = async (name: string, args: Record<string, unknown>) => {
      const result = await client.callTool({ name, arguments: args }) as CallToolResult;
      assert.equal(result.isError, true, JSON.stringify(result));
      assert.equal(text(result).split('\n').length, 1);
      assert.match(text(result), /^pali: /);
      return text(result);
    };
    assert.match(await call('describe_image', { image: { path: path.join(root, 'outside.png') } }), /outside the allowed roots/);
    assert.match(await call('describe_image', { image: { path: '../outside.png' } }), /outside the allowed roots/);
    assert.match(await call('describe_image', { image: { path: 'missing.png' } }), /missing\.png: no such file/);
    assert.match(await call('read_text_in_image', { image: { data: Buffer.from('not an image').toString('base64') } }), /^pali: image image\.png cannot be decoded \(.*\): is it a PNG, JPEG/);
    assert.match(await call('describe_image', { image: {} }), /as path or as data/);
    assert.match(await call('check_alt_text', { paths: [root] }), /outside the allowed roots/);
    // A schema violation is the SDK's own error, still a tool error the model can read.
    const invalid = await client.callTool({ name: 'detect_objects', arguments: { image: { path: 'shot.png' }, labels: [] } }) as CallToolResult;
    assert.equal(invalid.isError, true);
  });

  test('cancelling a call ends its decoding in the engine; the server goes on serving', { timeout: 60_000 }, async () => {
    const controller = new AbortController();
    // Cancelled once its first piece of text has streamed: the engine is decoding when the cancellation lands.
    const call = client.callTool({ name: 'read_text_in_image', arguments: { image: { path: 'shot.png' } } }, undefined, {
      signal: controller.signal,
      onprogress: (p) => { if (/^generated: /.test(p.message ?? '')) controller.abort(); },
    });
    await assert.rejects(call, /abort|cancel/i);
    // The engine says so only when its generate ended early for the cancellation (256 tokens otherwise).
    const log = serverLogs.get(client)!;
    const cancelled = () => log.some((line) => /^pali mcp: request \d+ cancelled by the client; its decoding stopped$/.test(line));
    for (const started = Date.now(); !cancelled() && Date.now() - started < 20_000; ) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(cancelled(), `server log: ${log.join(' | ')}`);
    // The server goes on serving.
    const after = await client.callTool({ name: 'check_alt_text', arguments: { paths: ['docs'] } }) as CallToolResult;
    assert.equal(after.isError, undefined);
  });
});

describe('pali mcp without client roots', () => {
  test('--root confines paths; without a model the image tools say how to give one, check_alt_text still works', async () => {
    const root = tempDir('mcp-root');
    fs.writeFileSync(path.join(root, 'page.html'), '<img src="a.png">\n');
    await writeGradientPng(path.join(root, 'a.png'), 16, 16, 1);
    const client = await connect(['--root', root], { PALI_MODEL: '' });
    try {
      const check = await client.callTool({ name: 'check_alt_text', arguments: { paths: ['page.html'] } }) as CallToolResult;
      assert.equal(text(check), 'page.html:1:1: missing alt text (alt-missing)');
      const describe = await client.callTool({ name: 'describe_image', arguments: { image: { path: 'a.png' } } }) as CallToolResult;
      assert.equal(describe.isError, true);
      assert.match(text(describe), /^pali: no model: start pali mcp with --model DIR or set PALI_MODEL/);
      const outside = await client.callTool({ name: 'check_alt_text', arguments: { paths: [path.dirname(root)] } }) as CallToolResult;
      assert.match(text(outside), /outside the allowed roots/);
    } finally {
      await client.close();
    }
  });
});

describe('pali mcp --remote', () => {
  const root = tempDir('mcp-remote');
  let server: RunningServer;
  let model: string;
  let env: Record<string, string>;
  const KEY = 'mcp-remote-key';

  before(async () => {
    const tiny = forgeTiny(root, 'tiny', 4);
    model = tiny.checkpointDir;
    env = { PALI_CACHE_DIR: tiny.cacheRoot };
    await writeGradientPng(path.join(root, 'shot.png'), 64, 40, 3);
    server = await startPaliServe(model, tiny.cacheRoot, ['--api-key', KEY]);
  });
  after(() => server?.child.kill());

  test('the image tools answer from the server as the local model does; no model is loaded here', async () => {
    const remote = await connect(['--remote', server.baseURL, '--root', root], { ...env, PALI_API_KEY: KEY, PALI_MODEL: '' });
    const local = await connect(['--model', model, '--dtype', 'fp32', '--device', 'cpu', '--root', root], env);
    try {
      const { tools } = await remote.listTools();
      assert.match(tools.find((t) => t.name === 'describe_image')!.description!, /on your own PaliGemma server/);
      for (const call of [
        { name: 'describe_image', arguments: { image: { path: 'shot.png' } } },
        { name: 'ask_about_image', arguments: { image: { data: fs.readFileSync(path.join(root, 'shot.png')).toString('base64') }, question: 'what is this?' } },
        { name: 'detect_objects', arguments: { image: { path: 'shot.png' }, labels: ['cat', 'dog'] } },
      ]) {
        const progress: string[] = [];
        const fromServer = await remote.callTool(call, undefined, { onprogress: (p) => void progress.push(p.message ?? '') }) as CallToolResult;
        assert.equal(fromServer.isError, undefined, text(fromServer));
        assert.deepEqual(fromServer.structuredContent, ((await local.callTool(call)) as CallToolResult).structuredContent, call.name);
        assert.ok(!progress.some((m) => /loading the model/.test(m)), `${call.name} loaded a model: ${progress.join(' | ')}`);
      }
    } finally {
      await Promise.all([remote.close(), local.close()]);
    }
  });

  test('a wrong key and a server that is not there are one line each; --remote with --model, or not a URL, is refused', async () => {
    const wrongKey = await connect(['--remote', server.baseURL, '--root', root], { ...env, PALI_API_KEY: 'wrong' });
    try {
      const refused = await wrongKey.callTool({ name: 'read_text_in_image', arguments: { image: { path: 'shot.png' } } }) as CallToolResult;
      assert.equal(refused.isError, true);
      assert.equal(text(refused), `pali: ${server.baseURL} refused the API key (401): set PALI_API_KEY to the server's key`);
    } finally {
      await wrongKey.close();
    }
    // A port that was free a moment ago: nothing listens there.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const nowhere = await connect(['--remote', `http://127.0.0.1:${port}/v1`, '--root', root], env);
    try {
      const unreachable = await nowhere.callTool({ name: 'describe_image', arguments: { image: { path: 'shot.png' } } }) as CallToolResult;
      assert.equal(unreachable.isError, true);
      assert.equal(text(unreachable), `pali: cannot reach http://127.0.0.1:${port}/v1: ECONNREFUSED`);
    } finally {
      await nowhere.close();
    }
    const both = pali(['mcp', '--remote', server.baseURL, '--model', model], {}, { input: '' });
    assert.equal(both.code, 1);
    assert.equal(both.stderr.trim(), 'pali: mcp takes --model DIR or --remote URL, not both');
    const malformed = pali(['mcp', '--remote', 'gpu-box'], {}, { input: '' });
    assert.equal(malformed.code, 1);
    assert.equal(malformed.stderr.trim(), 'pali: --remote: "gpu-box" is not a URL: a server\'s address looks like http://gpu-box:8000');
  });
});
