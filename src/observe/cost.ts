/**
 * What engine time costs at GPU_HOURLY_USD, computed one way for the report (`X.report.json`),
 * `docbatch status` (text and `--json`) and the dashboard, so they never disagree.
 *
 *   cost_usd             engine seconds / 3600 × GPU_HOURLY_USD (the engine time of failed units
 *                        included: it was spent)
 *   cost_per_1000_units  cost_usd / units answered × 1000: what 1,000 answered pages (or chunks)
 *                        cost, failures paid for included; null while no unit was answered
 *
 * Both are rounded to 6 decimals, each from the unrounded cost.
 */

/** The cost of `engineMs` of engine time at `gpuHourlyUsd` (null: no price set). */
export function costUsd(engineMs: number, gpuHourlyUsd: number | undefined): number | null {
  return gpuHourlyUsd === undefined ? null : round6(rawCost(engineMs, gpuHourlyUsd));
}

/** The cost of 1,000 answered units, given the engine time of all (null: no price, or none answered). */
export function costPer1000Units(engineMs: number, answered: number, gpuHourlyUsd: number | undefined): number | null {
  if (gpuHourlyUsd === undefined || answered <= 0) return null;
  return round6((rawCost(engineMs, gpuHourlyUsd) / answered) * 1000);
}

function rawCost(engineMs: number, gpuHourlyUsd: number): number {
  return (engineMs / 3_600_000) * gpuHourlyUsd;
}

function round6(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
