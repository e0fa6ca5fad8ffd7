/**
 * End to end: what agents use: every contributed command registered, the language model tools through
 * vscode.lm.invokeTool, and the MCP server definitions (local and remote) started by VS Code.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pali as runPali } from '../helpers/pali.js';
import type { VsCode } from './vscodeHarness.js';
import { setRemoteApiKey, startMcpServer } from './flows.js';
import { applyWorkspaceSettings, hubModelDir, launch, makeWorkspace, modelDir, pali, repo, root, scenario, servePali, setWorkspaceSettings, tinyModelSettings, toolCallerVsix, useE2eSuite, writeWorkspaceSettings } from './suite.js';
import { runCommand, waitUntil } from './workbench.js';

useE2eSuite('agents');

describe('Agents: language model tools and the MCP server', () => {
  let vscode: VsCode;
  let workspace: string;
  before(async () => {
    workspace = await makeWorkspace('agents');
    // A test-only extension that calls tools through vscode.lm.invokeTool, as an agent does.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'chat.disableAIFeatures': false }, { extraVsix: [toolCallerVsix()] });
  });
  after(() => vscode?.close());

  /**
   * The JSON the tool caller writes to `file`, once it is whole: the file exists a moment before its
   * content does (in CI a read in between found it empty).
   */
  async function writtenJson<T>(file: string, timeoutMs: number, what: string): Promise<T> {
    let parsed: T | undefined;
    const whole = () => {
      try {
        parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as T;
        return true;
      } catch {
        return false;
      }
    };
    assert.ok(await waitUntil(vscode.page, whole, timeoutMs), `the tool caller wrote no ${what}`);
    return parsed!;
  }

  /** Runs the calls through the tool caller and returns what it wrote. */
  async function callTools(calls: { tool: string; input: unknown }[]): Promise<{ tools: { name: string; tags: string[] }[]; results: { tool: string; text?: string; error?: string }[] }> {
    const results = path.join(workspace, '.tool-results.json');
    fs.rmSync(results, { force: true });
    fs.writeFileSync(path.join(workspace, '.tool-calls.json'), JSON.stringify(calls));
    await runCommand(vscode.page, 'Tool Caller: Run Tool Calls');
    return writtenJson(results, 180_000, 'results');
  }

  test('every command the extension contributes is registered', () =>
    scenario(vscode, 'commands-registered', async () => {
      const listed = path.join(workspace, '.commands.json');
      fs.rmSync(listed, { force: true });
      fs.writeFileSync(path.join(workspace, '.commands-prefix'), 'paligemma.');
      await runCommand(vscode.page, 'Tool Caller: List Commands');
      const registered = await writtenJson<string[]>(listed, 30_000, 'command list');
      const contributed = (JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).contributes.commands as { command: string }[]).map((c) => c.command);
      assert.ok(contributed.length >= 10, `package.json contributes ${contributed.length} commands`);
      const missing = contributed.filter((id) => !registered.includes(id));
      assert.deepEqual(missing, [], 'contributed but not registered');
    }));

  test('the four image tools answer through vscode.lm.invokeTool as `pali caption`, `ocr`, `ask` and `detect` do', () =>
    scenario(vscode, 'lm-tools', async () => {
      const { tools, results } = await callTools([
        { tool: 'paligemma_describeImage', input: { path: 'photo.png' } },
        { tool: 'paligemma_readTextInImage', input: { path: path.join(workspace, 'screenshot.png') } },
        { tool: 'paligemma_askAboutImage', input: { path: 'photo.png', question: 'what colour is the square?' } },
        { tool: 'paligemma_describeImage', input: { path: '../outside.png' } },
        { tool: 'paligemma_describeImage', input: { path: 'notes.md' } },
        { tool: 'paligemma_detectObjects', input: { path: 'photo.png', labels: ['square', 'car'] } },
      ]);
      for (const name of ['paligemma_describeImage', 'paligemma_readTextInImage', 'paligemma_askAboutImage', 'paligemma_detectObjects']) {
        assert.ok(tools.some((t) => t.name === name && t.tags.includes('vision')), `${name} is listed in vscode.lm.tools`);
      }
      const cli = (args: string[]) => pali([...args, '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      assert.equal(results[0]!.text, cli(['caption', path.join(workspace, 'photo.png')]));
      assert.equal(results[1]!.text, cli(['ocr', path.join(workspace, 'screenshot.png'), '--max-new-tokens', '256']));
      assert.equal(results[2]!.text, cli(['ask', path.join(workspace, 'photo.png'), 'what colour is the square?']));
      assert.match(results[3]!.error ?? '', /outside the workspace/);
      assert.match(results[4]!.error ?? '', /not an image file/);
      // The CLI's boxes, in the tool's words (the next scenario checks the pixels themselves against a known answer).
      const detected = JSON.parse(pali(['detect', path.join(workspace, 'photo.png'), 'square ; car', '--model', modelDir, '--device', 'cpu', '--json'])) as { boxes: { label: string; xMin: number; yMin: number; xMax: number; yMax: number }[] };
      const lines = detected.boxes.map((b) => `${b.label || '(no label)'}: ${[b.xMin, b.yMin, b.xMax, b.yMax].map(Math.round).join(', ')}`);
      assert.equal(results[5]!.text, lines.length ? `Found (xMin, yMin, xMax, yMax in pixels of a 96x64 image):\n${lines.join('\n')}` : 'Nothing found.');
    }));

  test('detectObjects gives the boxes of a known answer in the image\'s pixels, as worked out by hand', () =>
    scenario(vscode, 'lm-tools-detect', async () => {
      const detecting = path.join(root, 'detecting-model');
      if (!fs.existsSync(path.join(detecting, 'config.json'))) {
        pali(['forge', '--preset', 'tiny', '--seed', '1', '--out', detecting, '--answer', '<loc0128><loc0256><loc0640><loc0768> car ; <loc0000><loc0001><loc1023><loc1022> dog']);
      }
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.modelPath': detecting }, `modelPath=${JSON.stringify(detecting)}`);
      let reset: () => Promise<void>;
      try {
        const { results } = await callTools([{ tool: 'paligemma_detectObjects', input: { path: 'photo.png', labels: ['car', 'dog'] } }]);
        // <loc> bins are y_min, x_min, y_max, x_max in 1024ths of the 96x64 image: the car's 128, 256, 640,
        // 768 are 8, 24, 40, 72 px; the dog's 0, 1, 1023, 1022 are 0, 0.09, 63.9, 95.8 px, rounded to the
        // edges. (A forged answer repeats no token.)
        assert.equal(results[0]!.text, 'Found (xMin, yMin, xMax, yMax in pixels of a 96x64 image):\ncar: 24, 8, 72, 40\ndog: 0, 0, 96, 64', results[0]!.error);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));

  test('the MCP server definition is listed, starts, and its tools answer', () =>
    scenario(vscode, 'mcp-definition', async () => {
      const page = vscode.page;
      await startMcpServer(page, 'PaliGemma (local vision)');
      let checkTool: string | undefined;
      await waitUntil(page, async () => {
        const { tools } = await callTools([]);
        checkTool = tools.find((t) => t.name.endsWith('check_alt_text'))?.name;
        return checkTool !== undefined;
      }, 60_000);
      assert.ok(checkTool, 'the MCP server\'s tools reach vscode.lm.tools');
      const { results } = await callTools([{ tool: checkTool, input: { paths: ['notes.md'] } }]);
      // VS Code hands an agent the tool's structured content (as JSON) when it has one.
      const expected = JSON.parse(runPali(['alt-text', '--check', '--format', 'json', 'notes.md'], {}, { cwd: workspace }).stdout);
      assert.ok(expected.length > 0);
      assert.deepEqual(JSON.parse(results[0]!.text ?? '{}').findings, expected);
    }));

  test('with the remote backend the MCP definition runs `pali mcp --remote` with the key from secret storage, and answers from the server', () =>
    scenario(vscode, 'mcp-remote', async () => {
      const page = vscode.page;
      const key = 'agents-remote-key';
      // Another seed than the local model's: its caption shows which one answered.
      const { server, url } = await servePali(hubModelDir, key);
      let reset: () => Promise<void>;
      try {
        await setRemoteApiKey(page, key);
        setWorkspaceSettings(workspace, { 'paligemma.backend': 'remote', 'paligemma.remote.url': url });
        // The settings are in once the status bar names the server; the definitions change with them, and the
        // server list is opened again until it offers the remote one (runCommandAndPick).
        await page.locator('.statusbar-item', { hasText: new URL(url).host }).waitFor({ timeout: 30_000 });
        await startMcpServer(page, 'PaliGemma (remote vision)');
        // The local definition is gone with its tools: the one describe_image left is the remote server's.
        let describeTool: string | undefined;
        await waitUntil(page, async () => {
          const found = (await callTools([])).tools.filter((t) => t.name.endsWith('describe_image'));
          describeTool = found.length === 1 ? found[0]!.name : undefined;
          return describeTool !== undefined;
        }, 60_000);
        assert.ok(describeTool, 'the remote MCP server\'s tools reach vscode.lm.tools');
        const { results } = await callTools([{ tool: describeTool, input: { image: { path: 'photo.png' } } }]);
        const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', hubModelDir, '--device', 'cpu', '--quiet']).trim();
        assert.notEqual(expected, pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim());
        assert.equal(JSON.parse(results[0]!.text ?? '{}').text?.trim(), expected, results[0]!.error);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'backend="local"');
        server.kill('SIGKILL');
      }
      await reset();
    }));
});
