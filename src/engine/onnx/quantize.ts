/**
 * Block-wise 4-bit weight quantization in the layout of com.microsoft's MatMulNBits: for a weight W [N, K]
 * (HF's [out, in]), each row is cut into blocks of `blockSize` along K; each block gets a float scale and a
 * 4-bit zero point, values are stored two per byte, low nibble first. Dequantized: (q - zero) * scale.
 */

export interface QuantizedWeight {
  /** [N, blocksPerRow, blockSize / 2] */
  packed: Uint8Array;
  /** [N * blocksPerRow] */
  scales: Float32Array;
  /** [N * ceil(blocksPerRow / 2)], two zero points per byte, low nibble first. */
  zeroPoints: Uint8Array;
  blocksPerRow: number;
}

export function quantizeInt4(weight: Float32Array, n: number, k: number, blockSize = 32): QuantizedWeight {
  const blocksPerRow = Math.ceil(k / blockSize);
  const bytesPerBlock = blockSize / 2;
  const packed = new Uint8Array(n * blocksPerRow * bytesPerBlock);
  const scales = new Float32Array(n * blocksPerRow);
  const zeroBytesPerRow = Math.ceil(blocksPerRow / 2);
  const zeroPoints = new Uint8Array(n * zeroBytesPerRow);
  for (let row = 0; row < n; row++) {
    for (let block = 0; block < blocksPerRow; block++) {
      const start = row * k + block * blockSize;
      const end = row * k + Math.min(k, (block + 1) * blockSize);
      // The range always includes 0 so that 0 is exactly representable (as ORT's quantizer does).
      let min = 0;
      let max = 0;
      for (let i = start; i < end; i++) {
        const w = weight[i]!;
        if (w < min) min = w;
        if (w > max) max = w;
      }
      const scale = (max - min) / 15 || 1;
      const zero = Math.min(15, Math.max(0, Math.round(-min / scale)));
      const blockIndex = row * blocksPerRow + block;
      scales[blockIndex] = scale;
      const zeroByte = row * zeroBytesPerRow + (block >> 1);
      zeroPoints[zeroByte] = zeroPoints[zeroByte]! | (zero << ((block & 1) * 4));
      for (let i = 0; i < blockSize; i++) {
        const source = start + i;
        const q = source < end ? Math.min(15, Math.max(0, Math.round(weight[source]! / scale) + zero)) : zero;
        const byte = blockIndex * bytesPerBlock + (i >> 1);
        packed[byte] = packed[byte]! | (q << ((i & 1) * 4));
      }
    }
  }
  return { packed, scales, zeroPoints, blocksPerRow };
}
