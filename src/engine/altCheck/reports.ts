/**
 * How `pali alt-text --check` prints its findings: one line each as compilers and linters do (editors and
 * CI annotate `path:line:col:` lines), JSON for scripts, or SARIF 2.1.0 for GitHub code scanning.
 */
import type * as Sarif from 'sarif';
import type { AltProblemCode } from '../../common/altText/altRules.js';
import { RULE_DESCRIPTIONS, type AltFinding } from './findings.js';

export type ReportFormat = 'text' | 'json' | 'sarif';

export const REPORT_FORMATS: ReportFormat[] = ['text', 'json', 'sarif'];

const HELP_URI = 'https://www.w3.org/WAI/tutorials/images/decision-tree/';

export function textReport(findings: AltFinding[]): string {
  return findings.map((f) => `${f.path}:${f.line}:${f.column}: ${f.message} (${f.ruleId})\n`).join('');
}

export function jsonReport(findings: AltFinding[]): string {
  return `${JSON.stringify(findings, null, 2)}\n`;
}

/**
 * SARIF as GitHub code scanning reads it: rules with ids and descriptions, results with a rule id and index,
 * a message and a region, and paths relative to the checkout (%SRCROOT%). The upload action adds the
 * fingerprints that match a finding across runs.
 */
export function sarifReport(findings: AltFinding[], version: string): string {
  const ruleIds = Object.keys(RULE_DESCRIPTIONS) as AltProblemCode[];
  const log: Sarif.Log = {
    version: '2.1.0',
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    runs: [{
      tool: {
        driver: {
          name: 'pali alt-text',
          semanticVersion: version,
          rules: ruleIds.map((id) => ({
            id,
            shortDescription: { text: RULE_DESCRIPTIONS[id] },
            helpUri: HELP_URI,
            defaultConfiguration: { level: id === 'alt-missing' ? 'error' : 'warning' },
            properties: { tags: ['accessibility'] },
          })),
        },
      },
      originalUriBaseIds: { '%SRCROOT%': { uri: './' } },
      results: findings.map((f) => ({
        ruleId: f.ruleId,
        ruleIndex: ruleIds.indexOf(f.ruleId),
        level: f.ruleId === 'alt-missing' ? 'error' : 'warning',
        message: { text: f.src ? `${f.message}: ${f.src}` : f.message },
        locations: [{
          physicalLocation: {
            artifactLocation: { uri: encodeURI(f.path), uriBaseId: '%SRCROOT%' },
            region: { startLine: f.line, startColumn: f.column, endLine: f.endLine, endColumn: f.endColumn },
          },
        }],
      })),
    }],
  };
  return `${JSON.stringify(log, null, 2)}\n`;
}

export function formatReport(format: ReportFormat, findings: AltFinding[], version: string): string {
  switch (format) {
    case 'text':
      return textReport(findings);
    case 'json':
      return jsonReport(findings);
    case 'sarif':
      return sarifReport(findings, version);
  }
}
