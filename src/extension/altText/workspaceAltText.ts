/**
 * "Generate Alt Text for Workspace": every image with missing or placeholder alt text in the workspace's
 * Markdown, HTML, JSX and TSX (files.exclude through findFiles, .gitignore through common/gitIgnore.ts),
 * described a few at a time behind a cancellable progress (n/N and the time left), then offered as one
 * WorkspaceEdit whose changes need confirmation, so VS Code's refactor preview shows each before anything
 * is written. Files edited after the scan are left out, and the user is told.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { setAltTextEdits } from '../../common/altText/altEdits.js';
import { checkAltText } from '../../common/altText/altRules.js';
import type { ImageReference } from '../../common/altText/types.js';
import { GitIgnore } from '../../common/gitIgnore.js';
import { toWorkspaceEdit } from './altCodeActions.js';
import type { AltTextService } from './altTextService.js';
import { referencesIn } from './documentReferences.js';
import { describeError } from '../../common/errors.js';

const SOURCE_GLOB = '**/*.{md,markdown,html,htm,jsx,tsx}';
/** Requests in flight at once: the local engine queues them; a remote server may batch them. */
const CONCURRENCY = 4;

interface Target {
  document: vscode.TextDocument;
  version: number;
  reference: ImageReference;
}

async function findTargets(token: vscode.CancellationToken): Promise<Target[]> {
  const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  const gitIgnore = new GitIgnore(folders);
  // findFiles applies files.exclude only when given no exclude of its own: git's ignores and node_modules
  // are checked here instead.
  const uris = (await vscode.workspace.findFiles(SOURCE_GLOB, undefined, undefined, token)).filter((uri) => !uri.path.split('/').includes('node_modules'));
  const targets: Target[] = [];
  for (const uri of uris.sort((a, b) => a.fsPath.localeCompare(b.fsPath))) {
    if (token.isCancellationRequested) break;
    const folder = folders.find((f) => !path.relative(f, uri.fsPath).startsWith('..'));
    if (uri.scheme === 'file' && folder && gitIgnore.ignoresUnder(folder, uri.fsPath)) continue;
    const document = await vscode.workspace.openTextDocument(uri);
    for (const reference of referencesIn(document)) {
      const code = checkAltText(reference)?.code;
      // An empty alt may be decorative on purpose: only its author can say.
      if (reference.src !== undefined && (code === 'alt-missing' || code === 'alt-placeholder')) targets.push({ document, version: document.version, reference });
    }
  }
  return targets;
}

function timeLeft(msPerImage: number, remaining: number): string {
  const seconds = Math.round((msPerImage * remaining) / 1000);
  return seconds < 90 ? vscode.l10n.t('about {0} s left', seconds) : vscode.l10n.t('about {0} min left', Math.round(seconds / 60));
}

export async function generateAltTextForWorkspace(service: AltTextService): Promise<void> {
  const suggestions = new Map<Target, string>();
  const failures: string[] = [];
  let targets: Target[] = [];
  let done = 0;
  let cancelled = false;
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Alt text for the workspace'), cancellable: true },
    async (progress, token) => {
      progress.report({ message: vscode.l10n.t('finding images…') });
      targets = await findTargets(token);
      if (!targets.length) return;
      const started = Date.now();
      let next = 0;
      const worker = async () => {
        while (next < targets.length && !token.isCancellationRequested) {
          const target = targets[next++]!;
          try {
            suggestions.set(target, await service.suggest(target.document, target.reference.src, 'informative', token));
          } catch (error) {
            if (!token.isCancellationRequested) failures.push(`${vscode.workspace.asRelativePath(target.document.uri)}: ${target.reference.src}: ${describeError(error)}`);
          }
          done++;
          const perImage = (Date.now() - started) / done;
          progress.report({ message: `${done}/${targets.length} · ${timeLeft(perImage, targets.length - done)}`, increment: 100 / targets.length });
        }
      };
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, targets.length) }, worker));
      cancelled = token.isCancellationRequested;
    },
  );
  if (!targets.length) {
    if (!cancelled) void vscode.window.showInformationMessage(vscode.l10n.t('Every image in the workspace has alt text.'));
    return;
  }
  // Edits computed on a document that changed since the scan would land in the wrong place: leave them out.
  const changed = new Set(targets.filter((t) => t.document.version !== t.version).map((t) => t.document));
  const edit = new vscode.WorkspaceEdit();
  for (const target of targets) {
    const text = suggestions.get(target);
    if (!text || changed.has(target.document)) continue;
    const metadata = { label: vscode.l10n.t('Alt text for {0}', target.reference.src ?? ''), needsConfirmation: true };
    toWorkspaceEdit(target.document, setAltTextEdits(target.reference, text, target.document.getText()), edit, metadata);
  }
  if (changed.size) {
    void vscode.window.showWarningMessage(vscode.l10n.t('Left out {0} file(s) edited while alt text was generated: {1}. Run the command again for them.',
      String(changed.size), [...changed].map((d) => vscode.workspace.asRelativePath(d.uri)).join(', ')));
  }
  if (edit.size > 0) await vscode.workspace.applyEdit(edit, { isRefactoring: true });
  if (failures.length) void vscode.window.showWarningMessage(vscode.l10n.t('No alt text for {0} image(s): {1}', String(failures.length), failures.join('; ')));
  if (cancelled) vscode.window.setStatusBarMessage(vscode.l10n.t('Cancelled: {0} of {1} images described', String(done), String(targets.length)), 5000);
}
