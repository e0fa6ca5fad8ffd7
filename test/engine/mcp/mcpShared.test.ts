/**
 * `pali mcp --shared` (as VS Code starts it when paligemma.sharedEngine is on): two MCP servers, each
 * driven by the SDK's client, answer from one shared engine holding one model, which the first image call
 * started; their answers are the CLI's; an engine that dies between calls is started again by the next.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { EngineStatus } from '../../../src/protocol.js';
import { isAlive } from '../../../src/engine/processes.js';
import { forgeTiny, tempDir, writeGradientPng } from '../../helpers/fixtures.js';
import { PALI_CLI as CLI } from '../../helpers/pali.js';
import { sharedEnginePids } from '../../helpers/sharedEngines.js';

const text = (result: CallToolResult) => (result.content[0] as { text: string }).text;

describe('pali mcp --shared', { skip: process.platform !== 'linux' ? 'reads /proc' : false }, () => {
  const root = tempDir('mcp-shared');
  const runtimeDir = fs.mkdtempSync('/tmp/pali-mcp-');
  const cacheDir = path.join(root, 'cache');
  const env = { ...process.env, XDG_RUNTIME_DIR: runtimeDir, PALI_CACHE_DIR: cacheDir } as Record<string, string>;
  const clients: Client[] = [];
  let model: string;
  let image: string;

  const connect = async () => {
    const client = new Client({ name: 'pali-test', version: '1.0.0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--shared', '--model', model, '--dtype', 'fp32', '--device', 'cpu', '--root', root], env, stderr: 'ignore' }));
    clients.push(client);
    return client;
  };
  const ps = (): EngineStatus | null => JSON.parse(execFileSync(process.execPath, [CLI, 'ps', '--json'], { env, encoding: 'utf8' })) as EngineStatus | null;
  const describeImage = async (client: Client) => {
    const result = (await client.callTool({ name: 'describe_image', arguments: { image: { path: image } } })) as CallToolResult;
    assert.equal(result.isError, undefined, text(result));
    return text(result);
  };

  before(async () => {
    model = forgeTiny(root, 'tiny', 4).checkpointDir;
    image = path.join(root, 'shot.png');
    await writeGradientPng(image, 64, 40, 3);
  });
  after(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    for (const pid of sharedEnginePids(cacheDir)) process.kill(pid, 'SIGKILL');
    fs.rmSync(runtimeDir, { recursive: true, force: true });
  });

  test('two MCP servers answer from one engine and one model, which the first call started', { timeout: 120_000 }, async () => {
    const [a, b] = [await connect(), await connect()];
    assert.equal(ps(), null, 'no engine runs before an image call');
    const first = await describeImage(a);
    const second = await describeImage(b);
    const engines = sharedEnginePids(cacheDir);
    assert.equal(engines.length, 1, `one engine serves both: ${engines.join(', ')}`);
    const status = ps()!;
    assert.equal(status.pid, engines[0]);
    // Both servers, and `pali ps` itself.
    assert.equal(status.clients, 3);
    assert.equal(status.model?.modelDir, model);
    const expected = execFileSync(process.execPath, [CLI, 'caption', image, '--model', model, '--dtype', 'fp32', '--device', 'cpu', '--max-new-tokens', '64', '--local', '--quiet'], { env, encoding: 'utf8' }).trim();
    assert.equal(first, expected);
    assert.equal(second, expected);
  });

  test('an engine that died between calls is started again by the next call', { timeout: 120_000 }, async () => {
    const [dead] = sharedEnginePids(cacheDir);
    assert.ok(dead, 'the engine of the first test runs');
    process.kill(dead, 'SIGKILL');
    for (let waited = 0; isAlive(dead) && waited < 5000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
    const answer = await describeImage(clients[0]!);
    assert.ok(answer.length > 0);
    const [again] = sharedEnginePids(cacheDir);
    assert.ok(again !== undefined && again !== dead, 'a new engine answered');
  });
});
