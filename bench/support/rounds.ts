/** What the benchmarks share about their runs: rounds taken side by side, and the Node flags added to Node-RED. */

export function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The round whose `key` is the median of all rounds' (so that a table shows one round whole, not mixed figures). */
export function medianRound<T>(rounds: readonly T[], key: (round: T) => number): T {
  const mid = median(rounds.map(key));
  return rounds.find((round) => key(round) === mid)!;
}

/** BENCH_NODE_ARGS: Node flags added to the Node-RED processes ("--cpu-prof --cpu-prof-dir=/tmp/prof" profiles them). */
export function benchNodeArgs(): string[] {
  return process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
}
