/**
 * What an engine process needs in its environment, whoever starts it: the extension (its own engine or
 * the shared one), `pali mcp` starting the shared engine, the bench.
 */

/**
 * The engine's environment: `base` (the runtime's) with two settings of glibc's malloc, which other C
 * libraries and older glibc ignore.
 * - MALLOC_ARENA_MAX=2. glibc gives each thread that allocates its own malloc arena; ONNX Runtime's threads
 *   made the engine's resident memory creep up over thousands of requests (about 5% per 1,000 after
 *   warm-up, measured by test/engine/service/soak.test.ts), and two arenas hold it near 1%.
 * - glibc.malloc.hugetlb=1 (glibc 2.35+, added to any GLIBC_TUNABLES already set): malloc asks for
 *   transparent huge pages. Every session creation packs the int8 decoder's weights into freshly allocated
 *   memory, 2.5 GB for a 3B model, which with 4 KB pages costs 626,000 page faults: the 3B's decoder
 *   session took 4.0-4.4 s to create, 2.9-3.2 s with huge pages (system time 1.6 -> 0.6 s), for 2-16 MB
 *   more resident memory. Where the kernel gives huge pages only on request (`madvise`, Debian's default)
 *   this is the request; where it never gives them it changes nothing.
 */
export function engineEnvironment(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const tunables = base.GLIBC_TUNABLES;
  const hugePages = 'glibc.malloc.hugetlb=1';
  const withHugePages = !tunables ? hugePages : tunables.includes('glibc.malloc.hugetlb=') ? tunables : `${tunables}:${hugePages}`;
  return { ...base, MALLOC_ARENA_MAX: '2', GLIBC_TUNABLES: withHugePages };
}
