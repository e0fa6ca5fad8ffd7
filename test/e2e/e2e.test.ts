/**
 * End-to-end: the packaged extension in a real VS Code (code-server), used as a person would, with a tiny
 * forged model. Every scenario asserts what the page shows. A failing scenario leaves a screenshot in
 * test/e2e/artifacts/; passing ones leave one per feature in docs/screenshots/ for the README.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { forgeCheckpoint } from '../../src/engine/forge/forge.js';
import { tempDir } from '../helpers/fixtures.js';
import { launchVsCode, type VsCode } from './vscodeHarness.js';
import { clickText, describeFrame, hoverText, notificationTexts, openFile, pickQuickItem, runCommand, saveActiveEditor, statusBarText } from './workbench.js';

const repo = path.join(__dirname, '..', '..');
const artifacts = path.join(repo, 'test', 'e2e', 'artifacts');
const screenshots = path.join(repo, 'docs', 'screenshots');
const logLines: string[] = [];
const log = (line: string) => logLines.push(line);

let cache: string;
let vsix: string;
let modelDir: string;
let cacheDir: string;
let root: string;

function pali(args: string[]): string {
  return execFileSync(process.execPath, [path.join(repo, 'dist', 'pali.js'), ...args], { encoding: 'utf8', env: { ...process.env, PALI_CACHE_DIR: cacheDir } });
}

async function makeWorkspace(name: string): Promise<string> {
  const workspace = path.join(root, name);
  fs.cpSync(path.join(__dirname, 'fixtures', 'workspace'), workspace, { recursive: true });
  const square = (r: number, g: number, b: number) => sharp({ create: { width: 96, height: 64, channels: 3, background: { r, g, b } } });
  await square(200, 30, 40).composite([{ input: Buffer.from('<svg width="96" height="64"><rect x="20" y="12" width="40" height="30" fill="white"/></svg>') }]).png().toFile(path.join(workspace, 'photo.png'));
  await square(240, 240, 240).composite([{ input: Buffer.from('<svg width="96" height="64"><text x="4" y="36" font-size="16">Hello OCR</text></svg>') }]).png().toFile(path.join(workspace, 'screenshot.png'));
  await square(120, 120, 120).png().toFile(path.join(workspace, 'divider.png'));
  return workspace;
}

/** Runs a scenario; on failure keeps a screenshot and the log as CI artefacts. */
async function scenario(vscode: VsCode, name: string, body: () => Promise<void>, goodShot?: string): Promise<void> {
  try {
    await body();
    if (goodShot) await vscode.page.screenshot({ path: path.join(screenshots, goodShot) });
  } catch (error) {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await vscode.page.screenshot({ path: file }).catch(() => undefined);
    fs.writeFileSync(path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.log`), logLines.join('\n'));
    throw error;
  }
}

before(async () => {
  const setup = spawnSync('bash', [path.join(repo, 'scripts', 'e2e-setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(setup.status, 0, 'scripts/e2e-setup.sh failed');
  cache = setup.stdout.trim().split('\n').at(-1)!;
  root = tempDir('e2e');
  cacheDir = path.join(root, 'pali-cache');
  vsix = path.join(root, 'paligemma-local.vsix');
  execFileSync('npx', ['vsce', 'package', '--no-rewrite-relative-links', '--allow-missing-repository', '--skip-license', '-o', vsix], { cwd: repo, stdio: 'pipe' });
  modelDir = path.join(root, 'tiny-model');
  forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: modelDir });
  fs.mkdirSync(screenshots, { recursive: true });
});

describe('the extension in a real VS Code', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('workspace');
    vscode = await launchVsCode({ cache, vsix, workspace, root, log, settings: { 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu' } });
  });
  after(() => vscode?.close());

  test('1. Describe Image from the palette shows the image and the same caption as `pali caption`', () =>
    scenario(vscode, 'describe-image', async () => {
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      const page = vscode.page;
      await runCommand(page, 'PaliGemma: Describe Image');
      await pickQuickItem(page, 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('#image[src^="data:image/png"]').waitFor({ timeout: 60_000 });
      const caption = frame.locator('article.result[data-action="caption"] p.text');
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.textContent())?.trim(), expected);
    }, 'describe-image.png'));

  test('8. the status bar goes ready -> busy -> ready around a request', () =>
    scenario(vscode, 'status-bar', async () => {
      const page = vscode.page;
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor();
      const frame = describeFrame(page);
      const seen: string[] = [];
      const watcher = setInterval(() => void statusBarText(page).then((t) => seen.push(t)).catch(() => undefined), 20);
      await frame.locator('#describe').click();
      await frame.locator('article.result[data-action="describe"] vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor();
      clearInterval(watcher);
      assert.ok(seen.some((t) => t.includes('busy')), `status texts seen: ${[...new Set(seen)].join(' | ')}`);
    }));

  test('5. the Problems panel lists missing and placeholder alt text', () =>
    scenario(vscode, 'diagnostics', async () => {
      const page = vscode.page;
      await openFile(page, 'notes.md');
      await page.keyboard.press('Control+Shift+M');
      const problems = page.locator('.markers-panel .monaco-tl-row');
      await problems.filter({ hasText: 'alt-missing' }).first().waitFor();
      await problems.filter({ hasText: 'alt-placeholder' }).first().waitFor();
    }, 'diagnostics.png'));

  test('4. hover -> Generate alt text -> hover again shows it -> Ctrl+. inserts it (Markdown)', () =>
    scenario(vscode, 'alt-text-markdown', async () => {
      const page = vscode.page;
      await openFile(page, 'notes.md');
      const first = await hoverText(page, '![](photo.png)', 4);
      assert.match(first, /Generate alt text/);
      await page.locator('.monaco-hover-content a', { hasText: 'Generate alt text' }).click();
      await page.keyboard.press('Escape');
      let second = '';
      for (let attempt = 0; attempt < 40 && !/Suggested/.test(second); attempt++) {
        await page.waitForTimeout(500);
        second = await hoverText(page, '![](photo.png)', 4);
      }
      assert.match(second, /Suggested: «.+»/);
      const suggestion = /Suggested: «(.+?)»/.exec(second)![1]!;
      await vscode.page.screenshot({ path: path.join(screenshots, 'alt-text-hover.png') });
      await page.keyboard.press('Escape');
      await clickText(page, '![](photo.png)', 4);
      await page.keyboard.press('Control+.');
      await page.locator('.action-widget .monaco-list-row', { hasText: 'Insert alt text' }).first().click();
      await saveActiveEditor(page);
      await page.waitForFunction(() => true);
      const deadline = Date.now() + 30_000;
      let text = '';
      while (Date.now() < deadline && !text.includes(`![${suggestion}](photo.png)`)) {
        await page.waitForTimeout(250);
        text = fs.readFileSync(path.join(workspace, 'notes.md'), 'utf8');
      }
      assert.ok(text.includes(`![${suggestion}](photo.png)`), text);
    }));
});

after(() => {
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, 'e2e.log'), logLines.join('\n'));
  void notificationTexts;
});
