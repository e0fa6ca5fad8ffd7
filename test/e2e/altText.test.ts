/**
 * End to end: alt text in Markdown, HTML and TSX: the Problems panel and its settings, the hover's suggestion
 * and its quick fixes, every image of a file in one reviewed edit, prefetch, remote images and images outside
 * the workspace only with the user's consent.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { findImageReferences } from '../../src/common/altText/findReferences.js';
import type { VsCode } from './vscodeHarness.js';
import { altTextFlowIn, markdownUnescape, prefetchedSuggestion, waitForAltOnDiskIn } from './flows.js';
import { CAPTIONING_ALT, applyWorkspaceSettings, captioningModelDir, cliCaption, imageServer, launch, makeWorkspace, modelDir, pali, scenario, tinyModelSettings, useE2eSuite, waitForNewestCaption, writeWorkspaceSettings } from './suite.js';
import { chooseQuickFix, chooseQuickFixAndPick, describeFrame, hoverText, openFile, runCommand, runCommandAndPick, saveActiveEditor, waitUntil } from './workbench.js';

useE2eSuite('alt-text');

describe('Alt text', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('alt-text');
    // A model whose caption is known, so that every suggestion is checked against a value written out here.
    vscode = await launch(workspace, { ...tinyModelSettings(), 'paligemma.modelPath': captioningModelDir });
  });
  after(() => vscode?.close());

  const altTextFlow = (file: string, lineText: string, offset: number) => altTextFlowIn(vscode, file, lineText, offset);
  const waitForAltOnDisk = (file: string, language: string, src: string, expected: string, decode?: (alt: string) => string) =>
    waitForAltOnDiskIn(vscode, workspace, file, language, src, expected, decode);
  const decodeEntities = (text: string) => text.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&amp;/g, '&');

  test('the Problems panel lists missing and placeholder alt text, each at its line, and nothing for a described image', () =>
    scenario(vscode, 'diagnostics', async () => {
      const page = vscode.page;
      fs.writeFileSync(path.join(workspace, 'problems.md'), '# Problems\n\n![](photo.png)\n\n![Alt text](screenshot.png)\n\n![A red square on white](photo.png)\n');
      await openFile(page, 'problems.md');
      await page.keyboard.press('Control+Shift+M');
      // The tree: a file's row (level 1), then one row per problem (level 2).
      const problemsOf = (name: string) => page.locator('.markers-panel').evaluate((panel, file) => {
        const rows = [...panel.querySelectorAll('.monaco-list-row')].map((row) => ({ level: row.getAttribute('aria-level'), text: row.textContent ?? '' }));
        const at = rows.findIndex((row) => row.level === '1' && row.text.includes(file));
        if (at < 0) return [];
        const end = rows.findIndex((row, i) => i > at && row.level === '1');
        return rows.slice(at + 1, end < 0 ? undefined : end).map((row) => row.text);
      }, name);
      const expected = (texts: string[]) => texts.length === 2
        && texts.some((t) => t.includes('alt-missing') && t.includes('[Ln 3, Col'))
        && texts.some((t) => t.includes('alt-placeholder') && t.includes('[Ln 5, Col'));
      assert.ok(await waitUntil(page, async () => expected(await problemsOf('problems.md')), 30_000), `problems.md's rows: ${JSON.stringify(await problemsOf('problems.md'))}`);
    }));

  test('settings change what they say: altText.severity, altText.diagnostics and language', () =>
    scenario(vscode, 'settings-behaviour', async () => {
      const page = vscode.page;
      fs.writeFileSync(path.join(workspace, 'settings.md'), '# Settings\n\n![](photo.png)\n');
      await openFile(page, 'settings.md');
      await page.keyboard.press('Control+Shift+M');
      const file = page.locator('.markers-panel .monaco-tl-row', { hasText: 'settings.md' }).first();
      const marker = page.locator('.markers-panel .monaco-tl-row', { hasText: 'alt-missing' });
      const severityOf = async () => page.locator('.markers-panel').evaluate((panel) => {
        // The marker row right after settings.md's file row: its icon names the severity.
        const rows = [...panel.querySelectorAll('.monaco-tl-row')];
        const at = rows.findIndex((row) => row.textContent?.includes('settings.md'));
        const icon = at >= 0 ? rows[at + 1]?.querySelector('.codicon-error, .codicon-warning, .codicon-info') : null;
        return icon ? [...icon.classList].find((c) => /^codicon-(error|warning|info)$/.test(c)) : undefined;
      });
      await file.waitFor({ timeout: 30_000 });
      assert.ok(await waitUntil(page, async () => (await severityOf()) === 'codicon-warning', 10_000), `default severity: ${await severityOf()}`);
      let reset: () => Promise<void>;
      try {
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.altText.severity': 'error' }, 'severity=0');
        assert.ok(await waitUntil(page, async () => (await severityOf()) === 'codicon-error', 10_000), `severity error: ${await severityOf()}`);
        await applyWorkspaceSettings(vscode, workspace, { 'paligemma.altText.diagnostics': false }, 'diagnostics=false');
        await file.waitFor({ state: 'detached', timeout: 10_000 });
        assert.equal(await marker.filter({ hasText: 'settings.md' }).count(), 0);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'diagnostics=true');
      }
      await reset();
      await file.waitFor({ timeout: 10_000 });

      // language: the caption prompt's language, as `pali caption --lang` has it; on the random model,
      // whose answer depends on the prompt (the suite's model answers the same whatever it is asked).
      const english = cliCaption(workspace, 'photo.png');
      const french = pali(['caption', path.join(workspace, 'photo.png'), '--lang', 'fr', '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      assert.notEqual(french, english, 'the two prompts give the forged model different answers');
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.modelPath': modelDir, 'paligemma.language': 'fr' }, 'language="fr"');
      try {
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        await describeFrame(page).locator('#caption').click();
        await waitForNewestCaption(page, french, 'language fr');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'language="en"');
      }
      await reset();
    }));

  test('hover -> Generate alt text -> hover again shows it -> Ctrl+. inserts it (Markdown); the problem vanishes', () =>
    scenario(vscode, 'alt-text-markdown', async () => {
      assert.equal(await altTextFlow('notes.md', '![](photo.png)', 4), CAPTIONING_ALT);
      await waitForAltOnDisk('notes.md', 'markdown', 'photo.png', CAPTIONING_ALT, markdownUnescape);

      // The fixed problem leaves the Problems panel; notes.md's placeholder alt, not fixed, stays.
      const page = vscode.page;
      await page.keyboard.press('Control+Shift+M');
      const filter = page.locator('.markers-panel-action-filter input, .viewpane-filter input').first();
      await filter.fill('notes.md');
      const rows = page.locator('.markers-panel .monaco-tl-row');
      await rows.filter({ hasText: 'alt-placeholder' }).first().waitFor();
      await rows.filter({ hasText: 'alt-missing' }).first().waitFor({ state: 'detached' });
      await filter.fill('');
    }));

  test('the same in HTML', () =>
    scenario(vscode, 'alt-text-html', async () => {
      assert.equal(await altTextFlow('page.html', '<img src="screenshot.png"', 6), CAPTIONING_ALT);
      await waitForAltOnDisk('page.html', 'html', 'screenshot.png', CAPTIONING_ALT);
    }));

  test('the same in TSX', () =>
    scenario(vscode, 'alt-text-tsx', async () => {
      assert.equal(await altTextFlow('Card.tsx', '<img src="chart.png" />', 6), CAPTIONING_ALT);
      await waitForAltOnDisk('Card.tsx', 'typescriptreact', 'chart.png', CAPTIONING_ALT, decodeEntities);
    }));

  test('"Describe purpose…" -> Decorative marks the image decorative', () =>
    scenario(vscode, 'alt-text-purpose', async () => {
      const page = vscode.page;
      await openFile(page, 'page.html');
      await chooseQuickFixAndPick(page, '<img src="chart.png">', 6, 'Describe purpose', 'Decorative');
      const deadline = Date.now() + 30_000;
      let reference;
      while (Date.now() < deadline) {
        await saveActiveEditor(page);
        reference = findImageReferences(fs.readFileSync(path.join(workspace, 'page.html'), 'utf8'), 'html').find((r) => r.src === 'chart.png');
        if (reference?.decorative) break;
        await page.waitForTimeout(250);
      }
      assert.ok(reference?.decorative, 'chart.png is marked decorative');
      assert.equal(reference.alt.kind === 'literal' ? reference.alt.value : undefined, '');
    }));

  test('"Generate Alt Text for All Images in This File" gives every image the model\'s caption in one reviewed edit', () =>
    scenario(vscode, 'alt-text-all', async () => {
      const page = vscode.page;
      const file = path.join(workspace, 'all.md');
      fs.writeFileSync(file, '# All\n\n![](photo.png)\n\n![Alt text](screenshot.png)\n\n![Kept as written](chart.png)\n');
      const want = { 'photo.png': CAPTIONING_ALT, 'screenshot.png': CAPTIONING_ALT, 'chart.png': 'Kept as written' };
      await openFile(page, 'all.md');
      await runCommand(page, 'PaliGemma: Generate Alt Text for All Images in This File');
      // The edit needs confirmation: VS Code shows it in the Refactor Preview, where the user ticks what to
      // keep (entries start unticked) and applies.
      const panel = page.locator('.pane-body', { hasText: 'all.md' }).filter({ has: page.locator('.monaco-button', { hasText: 'Apply' }) }).first();
      await panel.waitFor({ timeout: 60_000 });
      await panel.locator('.monaco-list-row', { hasText: 'all.md' }).first().click();
      await page.keyboard.press('Space');
      await panel.locator('.monaco-button', { hasText: 'Apply' }).first().click();
      await openFile(page, 'all.md');
      const alts = () => Object.fromEntries(findImageReferences(fs.readFileSync(file, 'utf8'), 'markdown').map((r) => [r.src, r.alt.kind === 'literal' ? markdownUnescape(r.alt.value) : undefined]));
      const applied = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return JSON.stringify(alts()) === JSON.stringify(want);
      }, 30_000, 250);
      assert.ok(applied, `all.md's alt texts: ${JSON.stringify(alts())}, expected ${JSON.stringify(want)}`);
    }));

  test('with prefetch on, the hover shows a suggestion without asking for one', () =>
    scenario(vscode, 'alt-text-prefetch', async () => {
      assert.equal(await prefetchedSuggestion(vscode, workspace, 'gallery.md', '![image](gallery.png)'), CAPTIONING_ALT);
    }));

  test('a remote image is fetched only once paligemma.allowRemoteImages is on', () =>
    scenario(vscode, 'alt-text-remote', async () => {
      const page = vscode.page;
      const src = `${imageServer.url}/banner.png`;
      fs.writeFileSync(path.join(workspace, 'remote.md'), `# Remote\n\n![](${src})\n`);
      await openFile(page, 'remote.md');
      const refused = await hoverText(page, '![](http', 4);
      assert.match(refused, /Remote images are off/);
      await page.keyboard.press('Escape');
      assert.equal(imageServer.requests, 0, 'nothing is fetched while the setting is off');

      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.allowRemoteImages': true }, 'allowRemoteImages=true');
      let reset: () => Promise<void>;
      try {
        assert.equal(await altTextFlow('remote.md', '![](http', 4), CAPTIONING_ALT);
        assert.ok(imageServer.requests >= 1, 'the image was fetched from the server');
        await waitForAltOnDisk('remote.md', 'markdown', src, CAPTIONING_ALT, markdownUnescape);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'allowRemoteImages=false');
      }
      await reset();
    }));

  test('an image outside the workspace, through .. or a symbolic link, is read only once the user allows it', () =>
    scenario(vscode, 'alt-text-outside', async () => {
      const page = vscode.page;
      await openFile(page, 'outside.md');
      assert.match(await hoverText(page, '![](../outside.png)', 4), /outside the workspace.*Allow reading this image/s);
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](linked.png)', 4), /outside the workspace.*Allow reading this image/s);
      await page.locator('.monaco-hover-content a', { hasText: 'Allow reading this image' }).click();
      // A modal dialog names the file; allowing it makes this one image readable.
      const dialog = page.locator('.monaco-dialog-box');
      await dialog.waitFor({ timeout: 10_000 });
      assert.match((await dialog.textContent()) ?? '', /linked\.png/);
      await dialog.locator('.monaco-button', { hasText: 'Allow' }).first().click();
      await dialog.waitFor({ state: 'detached' });
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](linked.png)', 4), /Generate alt text|Suggested/);
      await page.keyboard.press('Escape');
      assert.match(await hoverText(page, '![](../outside.png)', 4), /outside the workspace/);
      await page.keyboard.press('Escape');
    }));

  test('"Mark as decorative" on a Markdown image without alt text marks it so in the file', () =>
    scenario(vscode, 'alt-text-decorative', async () => {
      const page = vscode.page;
      const file = path.join(workspace, 'decorative.md');
      fs.writeFileSync(file, '# Divider\n\n![](photo.png)\n');
      await openFile(page, 'decorative.md');
      await chooseQuickFix(page, '![](photo.png)', 4, 'Mark as decorative');
      const want = '# Divider\n\n![](photo.png)<!-- decorative -->\n';
      const marked = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return fs.readFileSync(file, 'utf8') === want;
      }, 30_000, 250);
      assert.ok(marked, `decorative.md reads ${JSON.stringify(fs.readFileSync(file, 'utf8'))}`);
    }));
});
