/**
 * Where a referenced image lives: relative to the document, inside the workspace. Remote images are
 * fetched only when paligemma.allowRemoteImages is on, and never in an untrusted workspace.
 */
import * as vscode from 'vscode';
import { decodeURIComponentSafe } from '../../common/altText/altRules.js';
import type { ImageSource } from '../../protocol.js';
import { signalOf } from '../cancellation.js';
import type { Settings } from '../config.js';
import { realPathInside, type OutsideConsent } from './outsideConsent.js';
import { fetchImage } from '../../common/fetchImage.js';

export type ImageLocation =
  | { kind: 'file'; uri: vscode.Uri }
  | { kind: 'remote'; url: string }
  /**
   * `setting`: the setting that would make it available, where one would; `outside`: a file outside the
   * workspace, which the user may allow (outsideConsent.ts).
   */
  | { kind: 'unavailable'; reason: string; setting?: string; outside?: vscode.Uri };

export function locateImage(document: vscode.TextDocument, src: string | undefined, settings: Settings, consent?: OutsideConsent): ImageLocation {
  if (!src) return { kind: 'unavailable', reason: vscode.l10n.t('This reference has no image address.') };
  const trimmed = src.trim();
  if (/^https?:\/\//i.test(trimmed)) {
    if (!vscode.workspace.isTrusted) return { kind: 'unavailable', reason: vscode.l10n.t('Remote images are not fetched in an untrusted workspace.') };
    if (!settings.allowRemoteImages) return { kind: 'unavailable', reason: vscode.l10n.t('Remote images are off: enable paligemma.allowRemoteImages to describe them.'), setting: 'paligemma.allowRemoteImages' };
    return { kind: 'remote', url: trimmed };
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(trimmed)) return { kind: 'unavailable', reason: vscode.l10n.t('Unsupported image address {0}.', trimmed) };
  const path = decodeURIComponentSafe(trimmed.split(/[?#]/)[0]!);
  const folder = vscode.workspace.getWorkspaceFolder(document.uri);
  const base = path.startsWith('/') && folder ? folder.uri : vscode.Uri.joinPath(document.uri, '..');
  const uri = vscode.Uri.joinPath(base, path.startsWith('/') ? path.slice(1) : path);
  // Outside the folder by name (`..`), or by a symbolic link that leads out of it.
  const outside = folder && (!uri.path.startsWith(folder.uri.path.endsWith('/') ? folder.uri.path : `${folder.uri.path}/`) ||
    (uri.scheme === 'file' && folder.uri.scheme === 'file' && !realPathInside(uri.fsPath, folder.uri.fsPath)));
  if (outside && !consent?.has(uri)) {
    return { kind: 'unavailable', reason: vscode.l10n.t('{0} is outside the workspace: PaliGemma reads it only if you allow it.', trimmed), outside: uri };
  }
  return { kind: 'file', uri };
}

export function locationKey(location: ImageLocation): string | undefined {
  return location.kind === 'file' ? location.uri.toString() : location.kind === 'remote' ? location.url : undefined;
}

export async function readImage(location: ImageLocation, token: vscode.CancellationToken): Promise<ImageSource> {
  if (location.kind === 'unavailable') throw new Error(location.reason);
  if (location.kind === 'file') {
    if (location.uri.scheme === 'file') return { path: location.uri.fsPath };
    return { base64: Buffer.from(await vscode.workspace.fs.readFile(location.uri)).toString('base64'), name: location.uri.path };
  }
  const caller = signalOf(token);
  try {
    // Size cap, time limit, and no redirect to another scheme or a private address (common/fetchImage.ts).
    return { base64: Buffer.from(await fetchImage(location.url, { signal: caller.signal })).toString('base64'), name: location.url };
  } finally {
    caller.dispose();
  }
}
