import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSegments } from '../../src/common/segmentTokens.js';

const seg = (...codes: number[]) => codes.map((c) => `<seg${String(c).padStart(3, '0')}>`).join('');
const sixteen = (start: number) => seg(...Array.from({ length: 16 }, (_, i) => (start + i) % 128));
const loc = (...values: number[]) => values.map((v) => `<loc${String(v).padStart(4, '0')}>`).join('');

test('one object and several, separated by " ; ", with labels of several words', () => {
  const { segments, notes } = parseSegments(`${loc(10, 20, 300, 400)}${sixteen(5)} cat ; ${loc(500, 0, 1023, 1023)} ${sixteen(100)} black dog<eos>`);
  assert.deepEqual(notes, []);
  assert.deepEqual(segments.map((s) => [s.label, s.locs, s.codes[0], s.codes.length]), [
    ['cat', [10, 20, 300, 400], 5, 16],
    ['black dog', [500, 0, 1023, 1023], 100, 16],
  ]);
  assert.equal(segments[1]!.codes[15], (100 + 15) % 128);
});

test('cut off, malformed or out-of-range objects are skipped with a note; the rest are kept', () => {
  const good = `${loc(1, 2, 30, 40)}${sixteen(0)} bird`;
  const cases: [string, RegExp][] = [
    [`${loc(1, 2, 30, 40)}${seg(1, 2, 3)}`, /got 4 <loc> and 3 <seg> \(cut off\?\)/],
    [`${loc(1, 2)}${sixteen(0)} cat`, /got 2 <loc> and 16 <seg>/],
    [`${sixteen(0)}${loc(1, 2, 30, 40)} cat`, /expected 4 <loc> then 16 <seg>/],
    [`${loc(30, 2, 10, 40)}${sixteen(0)} cat`, /an empty box/],
    [`${loc(1, 2, 30, 40)}${seg(200)}${sixteen(0).slice(8)} cat`, /<seg> value above 127/],
    ['a cat sitting', /no <loc> or <seg> tokens/],
  ];
  for (const [bad, note] of cases) {
    const { segments, notes } = parseSegments(`${good} ; ${bad}`);
    assert.equal(segments.length, 1, bad);
    assert.equal(segments[0]!.label, 'bird');
    assert.equal(notes.length, 1, bad);
    assert.match(notes[0]!, /^object 2: /);
    assert.match(notes[0]!, note);
  }
  assert.deepEqual(parseSegments(''), { segments: [], notes: [] });
  assert.deepEqual(parseSegments('<eos>'), { segments: [], notes: [] });
});
