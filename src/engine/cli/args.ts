/** Command-line parsing on node:util's parseArgs, with the errors turned into one-line user errors. */
import * as fs from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { describeError, UserError } from '../../common/errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Parsed option values: a string, a flag, or the strings of an option given several times. */
export type Values = Record<string, string | boolean | string[] | undefined>;

export function parse(argv: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (error) {
    throw new UserError(`${describeError(error).split('\n')[0]} (see pali --help)`);
  }
}

export function integer(value: string | boolean | string[] | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min) throw new UserError(`--${name} must be an integer of at least ${min}, got "${String(value)}"`);
  return parsed;
}

export function decimal(value: string | boolean | string[] | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new UserError(`--${name} must be a non-negative number, got "${String(value)}"`);
  return parsed;
}

export function text(value: string | boolean | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** A prompt from a file, or from standard input for `-`, without the final newline an editor adds. */
export function readPromptFile(file: string): string {
  try {
    return fs.readFileSync(file === '-' ? 0 : file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new UserError(`cannot read the prompt file ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
