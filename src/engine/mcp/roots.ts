/**
 * Where `pali mcp` may read files: the roots the client declares (MCP roots, file:// URIs), else the
 * folders given with --root, else the working folder. A path is resolved against the first root when
 * relative, then through symbolic links, and must end up inside one of them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../common/errors.js';

export function rootsFromUris(uris: string[]): string[] {
  return uris.filter((uri) => uri.startsWith('file:')).map((uri) => fileURLToPath(uri));
}

function realOrResolved(file: string): string {
  try {
    return fs.realpathSync(file);
  } catch {
    return path.resolve(file);
  }
}

function isInside(root: string, file: string): boolean {
  const relative = path.relative(root, file);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/** The real path of `given` if it lies inside a root; a one-line error naming the roots otherwise. */
export function confine(given: string, roots: string[]): string {
  if (!roots.length) throw new UserError('no roots to read files from: the client declares none, and pali mcp was started without --root');
  const file = realOrResolved(path.resolve(roots[0]!, given));
  const realRoots = roots.map(realOrResolved);
  if (!realRoots.some((root) => isInside(root, file))) {
    throw new UserError(`${given} is outside the allowed roots (${realRoots.join(', ')}): pass a file inside them, or the image as base64 data`);
  }
  return file;
}
