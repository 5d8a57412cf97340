/**
 * `docbatch compare OUT_DIR`: how far the models of a run agree with each other, per field and
 * per page, and where they disagree. Exit 0 when it compared; 2 on bad arguments (the folder
 * missing, no outputs, outputs of fewer than two models).
 */
import { Command } from 'commander';
import { DocbatchError } from '../errors.ts';
import { existingDir, printProblems } from './eval-options.ts';
import { fraction, nonNegative } from './number-options.ts';

export function compareCommand(): Command {
  return new Command('compare')
    .description('Compare the models of a run with each other: agreement per field (JSON outputs) or per page (text), and the documents where they disagree.')
    .argument('<out_dir>', 'output folder of a run with several models (a folder per model)')
    .option('--json', 'print the comparison as one JSON object')
    .option('--threshold <x>', 'lowest text similarity (0 to 1) at which two pages agree (default 0.95)', fraction('--threshold'))
    .option('--tolerance <x>', 'largest difference at which two numbers are equal (default 0)', nonNegative('--tolerance'))
    .option('--case-sensitive', 'compare strings and text with their case')
    .action(async (outDirArg: string, opts: { json?: boolean; threshold?: number; tolerance?: number; caseSensitive?: boolean }) => {
      const outDir = existingDir(outDirArg, 'output folder');
      const [{ discoverOutputs }, { compareRun }, { DEFAULT_COMPARE }, { formatCompare }] = await Promise.all([
        import('../eval/discover.ts'),
        import('../eval/compare-run.ts'),
        import('../eval/compare.ts'),
        import('../eval/format.ts'),
      ]);
      const found = discoverOutputs(outDir);
      if (found.models.length < 2) {
        printProblems(found.problems);
        const what = found.models.length === 0 ? 'no X.report.json found: is this the output folder of a run?' : `outputs of one model only (${JSON.stringify(found.models[0])}); compare needs two or more`;
        throw new DocbatchError('EVAL_NO_OUTPUTS', what, { place: { file: outDir } });
      }
      const run = compareRun(found, {
        threshold: opts.threshold ?? DEFAULT_COMPARE.threshold,
        tolerance: opts.tolerance ?? DEFAULT_COMPARE.tolerance,
        caseSensitive: opts.caseSensitive === true,
      });
      printProblems(run.problems.map((p) => p.message));
      process.stdout.write(opts.json ? `${JSON.stringify(run, null, 2)}\n` : formatCompare(run));
      process.exitCode = 0;
    });
}
