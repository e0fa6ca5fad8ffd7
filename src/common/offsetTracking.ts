/**
 * Where an offset goes when a document changes: text inserted before or at it pushes it on; text replaced
 * around it moves it to the end of the replacement. Changes are in the document's coordinates before the
 * edit and never overlap, as VS Code reports them.
 */
export interface OffsetChange {
  rangeOffset: number;
  rangeLength: number;
  textLength: number;
}

export function shiftOffset(offset: number, changes: readonly OffsetChange[]): number {
  let shift = 0;
  for (const change of [...changes].sort((a, b) => a.rangeOffset - b.rangeOffset)) {
    if (change.rangeOffset + change.rangeLength <= offset) shift += change.textLength - change.rangeLength;
    else if (change.rangeOffset < offset) return change.rangeOffset + change.textLength + shift;
    else break;
  }
  return offset + shift;
}
