/**
 * `docbatch eval OUT_DIR --truth DIR`: scores a run's outputs against ground truth, per served
 * model. Exit 0 when it scored; 2 on bad arguments (a folder missing, no outputs, no truth, an
 * unknown --model) and when a truth file had to be skipped (EVAL_BAD_TRUTH, listed on stderr).
 */
import { Command } from 'commander';
import { DocbatchError } from '../errors.ts';
import { existingDir, printProblems } from './eval-options.ts';
import { nonNegative } from './number-options.ts';

export function evalCommand(): Command {
  return new Command('eval')
    .description('Score outputs against ground truth, per model: field accuracy (X.json truth), CER and WER (X.md truth).')
    .argument('<out_dir>', 'output folder of a run (a folder per model, or the outputs directly)')
    .requiredOption('--truth <dir>', 'folder of truth files: X.json (an object of fields) or X.md (text, per page with <!-- page N --> markers)')
    .option('--json', 'print the scores as one JSON object')
    .option('--tolerance <x>', 'largest difference at which two numbers are equal (default 0)', nonNegative('--tolerance'))
    .option('--case-sensitive', 'compare strings and text with their case')
    .option('--model <name>', 'score only this served model')
    .action(async (outDirArg: string, opts: { truth: string; json?: boolean; tolerance?: number; caseSensitive?: boolean; model?: string }) => {
      const outDir = existingDir(outDirArg, 'output folder');
      const truthDir = existingDir(opts.truth, '--truth folder');
      const [{ readTruth }, { discoverOutputs }, { evaluate }, { formatEval }] = await Promise.all([
        import('../eval/truth.ts'),
        import('../eval/discover.ts'),
        import('../eval/score.ts'),
        import('../eval/format.ts'),
      ]);
      const truth = readTruth(truthDir);
      const found = discoverOutputs(outDir);
      if (truth.truths.length === 0) {
        printProblems(truth.problems);
        throw new DocbatchError('EVAL_NO_TRUTH', `no truth file (X.json or X.md) to score against${truth.problems.length ? ` (${truth.problems.length} unusable, listed above)` : ''}`, { place: { file: truthDir } });
      }
      if (found.outputs.length === 0) {
        printProblems(found.problems);
        throw new DocbatchError('EVAL_NO_OUTPUTS', 'no X.report.json found: is this the output folder of a run?', { place: { file: outDir } });
      }
      if (opts.model !== undefined && !found.models.includes(opts.model)) {
        throw new DocbatchError('EVAL_NO_OUTPUTS', `no outputs from model ${JSON.stringify(opts.model)}; found: ${found.models.map((m) => JSON.stringify(m)).join(', ')}`, { place: { file: outDir } });
      }
      const report = evaluate(truth, found, { tolerance: opts.tolerance ?? 0, caseSensitive: opts.caseSensitive === true, ...(opts.model !== undefined ? { model: opts.model } : {}) });
      printProblems(report.problems.map((p) => p.message));
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatEval(report));
      process.exitCode = truth.problems.length > 0 ? 2 : 0;
    });
}
