/**
 * `pali alt-text --check [--format text|json|sarif] [PATH...]`: a linter for alt text, for CI. It needs no
 * model. `--fix --model DIR` writes the model's captions into the findings it can fix, after showing the diff
 * (or at once with --yes).
 *
 * Exit codes as linters use them: 0 no findings, 1 findings, 2 the check itself could not run.
 */
import * as path from 'node:path';
import { toAltText } from '../../common/altText/purpose.js';
import { taskPrompt } from '../../common/prompts.js';
import { checkPaths, checkText, type FileFindings } from '../altCheck/findings.js';
import { planFixes, unifiedDiff, writeFixes } from '../altCheck/fix.js';
import { formatReport, REPORT_FORMATS, type ReportFormat } from '../altCheck/reports.js';
import { UserError } from '../../common/errors.js';
import { parse, text, type Values } from './args.js';
import { MODEL_OPTIONS, type Io } from './modelArgs.js';
import { CliAnswerer } from './answerer.js';
import packageJson from '../../../package.json';

export async function altTextCommand(argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(argv, {
    ...MODEL_OPTIONS,
    check: { type: 'boolean' },
    fix: { type: 'boolean' },
    yes: { type: 'boolean' },
    format: { type: 'string' },
    lang: { type: 'string' },
  });
  if (!values.check && !values.fix) throw new UserError('alt-text needs --check (report) or --fix --model DIR (write suggestions): pali alt-text --check PATH...');
  const format = (text(values.format) ?? 'text') as ReportFormat;
  if (!REPORT_FORMATS.includes(format)) throw new UserError(`unknown --format "${format}": choose ${REPORT_FORMATS.join(', ')}`);
  const cwd = process.cwd();
  const { files, unreadable } = checkPaths(positionals.length ? positionals : ['.'], cwd);
  for (const line of unreadable) io.err(`pali: cannot read ${line}`);

  if (values.fix) {
    if (format !== 'text') throw new UserError('--fix prints a diff: leave out --format');
    return fix(files, values, io, cwd);
  }
  const findings = files.flatMap((f) => f.findings.map((x) => x.finding));
  io.out(formatReport(format, findings, packageJson.version));
  if (format === 'text' && io.interactive) {
    io.err(findings.length ? `pali: ${findings.length} finding${findings.length === 1 ? '' : 's'} in ${files.length} file${files.length === 1 ? '' : 's'}` : `pali: ${files.length} file${files.length === 1 ? '' : 's'} checked, no findings`);
  }
  return findings.length ? 1 : unreadable.length ? 2 : 0;
}

async function fix(files: FileFindings[], values: Values, io: Io, cwd: string): Promise<number> {
  const withFindings = files.filter((f) => f.findings.length);
  if (!withFindings.length) return 0;
  // The user's shared engine answers when one runs, as for `pali caption`; else this process, one load for every image.
  const answerer = new CliAnswerer(values, io, io.interactive);
  let plan;
  try {
    const prompt = taskPrompt({ task: 'caption', language: text(values.lang) ?? 'en' });
    plan = await planFixes(withFindings, cwd, async (imageFile) => {
      const { answer } = await answerer.ask({ image: imageFile, prompt, maxNewTokens: 64 });
      return toAltText(answer.text);
    }, io.interactive ? (done, total) => io.err(`pali: described ${done}/${total} images`) : undefined);
  } finally {
    await answerer.close();
  }
  for (const line of plan.skipped) io.err(`pali: ${line}`);
  if (!plan.fixes.length) return 1;

  if (!values.yes) {
    io.out(unifiedDiff(plan.fixes));
    const count = plan.fixes.reduce((sum, f) => sum + f.fixed, 0);
    const question = `write alt text for ${count} image${count === 1 ? '' : 's'} in ${plan.fixes.length} file${plan.fixes.length === 1 ? '' : 's'}?`;
    if (!io.confirm) {
      io.err(`pali: nothing written: review the diff, then run again with --yes to ${question.slice(0, -1)}`);
      return 1;
    }
    if (!(await io.confirm(`pali: ${question} [y/N] `))) return 1;
  }
  const { written, changed } = writeFixes(plan.fixes);
  for (const f of changed) io.err(`pali: ${f.displayPath} changed since it was read: left as it is, run again`);
  const images = written.reduce((sum, f) => sum + f.fixed, 0);
  io.err(`pali: wrote alt text for ${images} image${images === 1 ? '' : 's'} in ${written.length} file${written.length === 1 ? '' : 's'}`);
  // What is left: findings the model could not fix, and files that changed meanwhile.
  const left = files.reduce((sum, file) => {
    const fixed = written.find((w) => w.file === file.source.file);
    return sum + (fixed ? checkText(fixed.after, file.source.languageId, path.relative(cwd, file.source.file), file.source.file).length : file.findings.length);
  }, 0);
  return left ? 1 : 0;
}
