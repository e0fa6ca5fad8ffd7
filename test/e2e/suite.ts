/**
 * What every end-to-end feature file shares: one setup per run of a file (code-server and Chromium from
 * scripts/e2e-setup.sh, the VSIX users install, tiny forged models, a loopback image server and Hugging Face
 * hub), the launch of a real VS Code on a fresh workspace, settings written as a user writes them, and
 * `scenario`, which keeps a screenshot and the log of a failing scenario. Each feature file calls
 * `useE2eSuite` once and launches its own VS Code, so that it runs alone (shared/E2E.md).
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before } from 'node:test';
import type { Locator, Page } from 'playwright-core';
import sharp from 'sharp';
import { forgeCheckpoint } from '../../src/engine/forge/forge.js';
import { tempDir } from '../helpers/fixtures.js';
import { pali as runPali } from '../helpers/pali.js';
import { startLoopbackHub, type LoopbackHub } from '../helpers/loopbackHub.js';
import { startPaliServe } from '../helpers/paliServe.js';
import { launchVsCode, type LaunchOptions, type VsCode } from './vscodeHarness.js';
import { describeFrame, waitUntil } from './workbench.js';

export const repo = path.join(__dirname, '..', '..');
const artifacts = path.join(repo, 'test', 'e2e', 'artifacts');
/** Passing scenarios leave one screenshot per feature here, for the README. */
export const screenshots = path.join(repo, 'docs', 'screenshots');
export const logLines: string[] = [];
const log = (line: string) => logLines.push(line);

let cache: string;
let vsix: string;
/** The tiny forged model (seed 1) every local scenario runs. */
export let modelDir: string;
export let cacheDir: string;
/** This run's temporary folder: workspaces, models forged for one scenario, VS Code's user data. */
export let root: string;
/** A web server on loopback with one image, counting the requests that reach it. */
export let imageServer: { url: string; file: string; requests: number; close(): void };
/** A loopback Hugging Face hub (HF_ENDPOINT) with a gated repository holding a tiny model of another seed. */
export let hub: LoopbackHub;
export const GATED_REPO = 'google/paligemma-3b-mix-224';
export const HUB_TOKEN = 'hf_e2e_secret';
/**
 * A model forged to caption every image with CAPTIONING_ANSWER, which has a location token inside as real
 * captions sometimes do; CAPTIONING_ALT is the alt text the product must make of it, written out by hand:
 * the token dropped, the spaces joined, the first letter capitalised.
 */
export let captioningModelDir: string;
export const CAPTIONING_ANSWER = 'a red car<loc0100> on the street';
export const CAPTIONING_ALT = 'A red car on the street';
/** The hub's model: another seed, so its answers tell which model answered. */
export let hubModelDir: string;

/** `pali ARGS`'s output, with the suite's own cache; a failed run fails the scenario with its stderr. */
export function pali(args: string[]): string {
  const run = runPali(args, { PALI_CACHE_DIR: cacheDir });
  assert.equal(run.code, 0, `pali ${args.join(' ')}: ${run.stderr}`);
  return run.stdout;
}

export async function makeWorkspace(name: string): Promise<string> {
  const workspace = path.join(root, name);
  fs.cpSync(path.join(__dirname, 'fixtures', 'workspace'), workspace, { recursive: true });
  fs.mkdirSync(path.join(workspace, '.vscode'));
  setWorkspaceSettings(workspace, {});
  const square = (r: number, g: number, b: number) => sharp({ create: { width: 96, height: 64, channels: 3, background: { r, g, b } } });
  await square(200, 30, 40).composite([{ input: Buffer.from('<svg width="96" height="64"><rect x="20" y="12" width="40" height="30" fill="white"/></svg>') }]).png().toFile(path.join(workspace, 'photo.png'));
  await square(240, 240, 240).composite([{ input: Buffer.from('<svg width="96" height="64"><text x="4" y="36" font-size="16">Hello OCR</text></svg>') }]).png().toFile(path.join(workspace, 'screenshot.png'));
  await square(120, 120, 120).png().toFile(path.join(workspace, 'divider.png'));
  // An image beside the workspace, named through .. and through a symbolic link inside it.
  await square(90, 200, 90).png().toFile(path.join(root, 'outside.png'));
  fs.symlinkSync(path.join(root, 'outside.png'), path.join(workspace, 'linked.png'));
  fs.writeFileSync(path.join(workspace, 'outside.md'), '# Outside\n\n![](../outside.png)\n\n![](linked.png)\n');
  await square(30, 90, 200).composite([{ input: Buffer.from('<svg width="96" height="64"><circle cx="48" cy="32" r="20" fill="yellow"/></svg>') }]).png().toFile(path.join(workspace, 'gallery.png'));
  await square(250, 250, 250).composite([{ input: Buffer.from('<svg width="96" height="64"><rect x="10" y="30" width="15" height="30" fill="blue"/><rect x="40" y="10" width="15" height="50" fill="green"/></svg>') }]).png().toFile(path.join(workspace, 'chart.png'));
  return workspace;
}

/**
 * Sets the fixture workspace's settings; `{}` resets them. The file exists from the start: VS Code notices a
 * changed file at once, a new .vscode folder only after a while.
 */
export function setWorkspaceSettings(workspace: string, values: Record<string, unknown>): void {
  fs.writeFileSync(path.join(workspace, '.vscode', 'settings.json'), JSON.stringify(values));
}

/** The lines of our output channel's log that say a settings change took effect (extension.ts). */
function settingsChangesLogged(vscode: VsCode): string[] {
  return vscode.extensionLog(Infinity).split('\n').filter((line) => line.includes('settings changed: '));
}

/**
 * Writes the workspace's settings (VS Code watches the file); the function it returns waits until the
 * extension logs the change `expected` (as it logs it, e.g. `maxNewTokens=1024`), instead of sleeping and
 * hoping. A line for that change logged after the write, not an earlier change's line arriving late.
 */
export function writeWorkspaceSettings(vscode: VsCode, workspace: string, values: Record<string, unknown>, expected: string): () => Promise<void> {
  const before = settingsChangesLogged(vscode).length;
  setWorkspaceSettings(workspace, values);
  return async () => {
    const logged = () => settingsChangesLogged(vscode).slice(before).some((line) => line.includes(expected));
    assert.ok(await waitUntil(vscode.page, logged, 30_000), `the extension did not log ${expected} after ${JSON.stringify(values)} was written`);
  };
}

export async function applyWorkspaceSettings(vscode: VsCode, workspace: string, values: Record<string, unknown>, expected: string): Promise<void> {
  await writeWorkspaceSettings(vscode, workspace, values, expected)();
}

/** VS Code on `workspace` with our VSIX, the suite's forged hub (HF_ENDPOINT) and `settings` as the user's. */
export function launch(workspace: string, settings: Record<string, unknown>, more: Pick<LaunchOptions, 'env' | 'trust' | 'extraVsix'> = {}): Promise<VsCode> {
  return launchVsCode({ cache, vsix, workspace, root, log, settings, ...more, env: { HF_ENDPOINT: hub.url, HF_TOKEN: '', ...more.env } });
}

/**
 * The test-only companion extension (toolCaller/), packaged once per run: it calls tools as an agent does,
 * and pastes images into Markdown as links, as VS Code's Markdown extension does on the desktop.
 */
export function toolCallerVsix(): string {
  const file = path.join(root, 'tool-caller.vsix');
  if (!fs.existsSync(file)) {
    execFileSync(process.execPath, [path.join(repo, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--allow-missing-repository', '--allow-star-activation', '--skip-license', '-o', file],
      { cwd: path.join(__dirname, 'toolCaller'), stdio: 'pipe' });
  }
  return file;
}

/** The settings most scenarios run with: the tiny model, on the CPU. */
export const tinyModelSettings = (): Record<string, unknown> => ({ 'paligemma.modelPath': modelDir, 'paligemma.device': 'cpu' });

/** The id of the Describe panel's newest result (listed first), or null when it has none. */
export function newestResultId(page: Page): Promise<string | null> {
  return describeFrame(page).locator('article.result').first().getAttribute('data-id', { timeout: 1000 }).catch(() => null);
}

/**
 * The newest result once it is not `before` and has answered `action` (its Copy button shows). The panel
 * keeps its last 20 results, so a count cannot tell a new one: its id can.
 */
export async function newResult(page: Page, before: string | null, action: string): Promise<Locator> {
  assert.ok(await waitUntil(page, async () => (await newestResultId(page)) !== before, 30_000, 100), `no ${action} result appeared`);
  const card = describeFrame(page).locator(`article.result[data-id="${await newestResultId(page)}"][data-action="${action}"]`);
  await card.locator('vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 60_000 });
  return card;
}

/** `pali caption`'s answer for an image of the workspace, which every front door must match. */
export function cliCaption(workspace: string, image: string): string {
  return pali(['caption', path.join(workspace, image), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
}

/**
 * Waits until the Describe panel's newest caption has answered `want`. A new image clears the panel's
 * results, and an older caption may still show for a moment: so the text is polled, not read once.
 */
export async function waitForNewestCaption(page: Page, want: string, what: string): Promise<void> {
  const newest = describeFrame(page).locator('article.result[data-action="caption"]').first();
  const text = async () => ((await newest.locator('vscode-button', { hasText: 'Copy' }).count()) ? (await newest.locator('p.text').textContent())?.trim() : undefined);
  assert.ok(await waitUntil(page, async () => (await text()) === want, 60_000, 100), `${what}: the caption reads ${JSON.stringify(await text())}, not ${JSON.stringify(want)}`);
}

/** `pali serve --model DIR` on loopback with an API key, as a team's GPU box would serve it (CPU here). */
export async function servePali(model: string, apiKey: string): Promise<{ server: ChildProcess; url: string }> {
  // The CLI's default dtype, so that answers equal `pali caption`'s here.
  const { child, baseURL } = await startPaliServe(model, cacheDir, ['--api-key', apiKey], 'auto');
  return { server: child, url: baseURL };
}

/** Keeps a screenshot of `page` (another window than the scenario's, say) among the CI artefacts. */
export async function keepScreenshot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`) }).catch(() => undefined);
}

/**
 * Runs a scenario; on failure keeps a screenshot and the log as CI artefacts. (The README's screenshots are
 * taken by `npm run screenshots`, on models forged to answer plausibly: screenshots.ts.)
 */
export async function scenario(vscode: VsCode, name: string, body: () => Promise<void>): Promise<void> {
  try {
    await body();
  } catch (error) {
    fs.mkdirSync(artifacts, { recursive: true });
    const file = path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.png`);
    await vscode.page.screenshot({ path: file }).catch(() => undefined);
    fs.writeFileSync(path.join(artifacts, `${name.replace(/[^a-z0-9]+/gi, '-')}.log`), logLines.join('\n'));
    throw error;
  }
}

/**
 * What every scenario needs: code-server and Chromium (scripts/e2e-setup.sh), the VSIX users install, the
 * tiny forged models, the loopback image server and Hugging Face hub.
 */
export async function setUpSuite(): Promise<void> {
  const setup = spawnSync('bash', [path.join(repo, 'scripts', 'e2e-setup.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  assert.equal(setup.status, 0, 'scripts/e2e-setup.sh failed');
  cache = setup.stdout.trim().split('\n').at(-1)!;
  root = tempDir('e2e');
  // The suite's own runtime folder (0700), inherited by code-server, its engines and every pali run here:
  // shared engines of the suite never meet the developer's, and a test may open it to others.
  process.env.XDG_RUNTIME_DIR = fs.mkdtempSync('/tmp/pali-e2e-run-');
  cacheDir = path.join(root, 'pali-cache');
  // The same linux-x64 VSIX that `npm run package` builds for users.
  execFileSync(process.execPath, [path.join(repo, 'scripts', 'package.mjs'), '--target', 'linux-x64', '--out', root], { cwd: repo, stdio: 'pipe' });
  vsix = path.join(root, fs.readdirSync(root).find((name) => name.endsWith('-linux-x64-' + JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')).version + '.vsix'))!);
  modelDir = path.join(root, 'tiny-model');
  forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: modelDir });
  captioningModelDir = path.join(root, 'captioning-model');
  forgeCheckpoint({ preset: 'tiny', seed: 1, outDir: captioningModelDir, answer: CAPTIONING_ANSWER });
  imageServer = await serveImage(path.join(root, 'banner.png'));
  hubModelDir = path.join(root, 'hub-model');
  forgeCheckpoint({ preset: 'tiny', seed: 2, outDir: hubModelDir });
  hub = await startLoopbackHub();
  // Only the bfloat16 branch holds the model, as the PaliGemma 1 presets download that branch.
  hub.repos.set(`${GATED_REPO}@bfloat16`, new Map(fs.readdirSync(hubModelDir).map((name) => [name, { bytes: fs.readFileSync(path.join(hubModelDir, name)) }])));
  hub.gated.set(GATED_REPO, HUB_TOKEN);
}

/** Stops the servers and keeps the log of code-server and the browser as `artifacts/e2e-<feature>.log`. */
export async function tearDownSuite(feature: string): Promise<void> {
  imageServer?.close();
  await hub?.close();
  if (process.env.XDG_RUNTIME_DIR?.startsWith('/tmp/pali-e2e-run-')) fs.rmSync(process.env.XDG_RUNTIME_DIR, { recursive: true, force: true });
  fs.mkdirSync(artifacts, { recursive: true });
  fs.writeFileSync(path.join(artifacts, `e2e-${feature}.log`), logLines.join('\n'));
}

/** Sets up the suite for this file's scenarios (once per file: each runs in a process of its own). */
export function useE2eSuite(feature: string): void {
  before(setUpSuite);
  after(() => tearDownSuite(feature));
}

async function serveImage(file: string): Promise<typeof imageServer> {
  await sharp({ create: { width: 120, height: 40, channels: 3, background: { r: 20, g: 140, b: 60 } } })
    .composite([{ input: Buffer.from('<svg width="120" height="40"><circle cx="20" cy="20" r="14" fill="white"/></svg>') }]).png().toFile(file);
  const server = http.createServer((request, response) => {
    served.requests++;
    if (request.url !== '/banner.png') return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'image/png' }).end(fs.readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const served = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, file, requests: 0, close: () => void server.close() };
  return served;
}
