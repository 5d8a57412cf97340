/**
 * The smaller renders a unit's pages may fall back to (below IMAGE_SIZE: 1024, 768, 512 px by
 * default) when the engine cannot take the unit at its size: it ran out of memory with the unit
 * alone at window 1, or the prompt alone is longer than the model's context (a vision model
 * served with a short --max-model-len: its page images are what is large, about a token per
 * 28x28 pixels). Each size is tried once, largest first; a unit without pages has none.
 */
export class RenderLadder {
  private sizes: number[];

  constructor(sizes: readonly number[]) {
    this.sizes = [...sizes].sort((a, b) => b - a);
  }

  /** The largest size left below `current` (the side the unit was rendered at), taken off the ladder; null when none is left. */
  take(current: number | undefined): number | null {
    const next = this.sizes.find((s) => s < (current ?? Number.POSITIVE_INFINITY));
    if (next === undefined) return null;
    this.sizes = this.sizes.filter((s) => s < next);
    return next;
  }
}
