/**
 * `docbatch retry FILE|DOC...` without the printing: find the documents (by id or id prefix, or
 * every run of a file's content), and for each reopen its failed units (all, or those with the
 * given codes) or, when none failed but its write did, write it again. Successful units are never
 * sent again.
 */
import type { Config } from '../config.ts';
import { DocbatchError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { hashFile } from '../store/blobs.ts';
import type { S3Client } from '@aws-sdk/client-s3';
import { isS3Uri } from '../s3-uri.ts';
import { hashObject } from './s3-input.ts';
import { openClientParts } from './client-parts.ts';
import type { DocStore } from '../store/docs.ts';
import { reopenDocument, type ReopenOutcome } from '../store/reopen.ts';
import type { DocRecord } from '../store/types.ts';

export interface RetryOptions {
  /** Only failures with one of these codes (default: every failure). */
  codes?: string[];
  /** Encrypted PDFs: the password leaves Redis once a document is written; give it again. */
  password?: string;
  /** Write again even when no unit failed. */
  rewrite?: boolean;
}

export interface RetryOutcome extends ReopenOutcome {
  source: string;
  record: DocRecord;
}

/** A document that could not be retried (its results gone or damaged: BLOB_MISSING, ARCHIVE_*); the others were. */
export interface RetryFailure {
  docId: string;
  source: string;
  error: DocbatchError;
}

/** Documents a target names: an id (or a prefix of one), or a file (or s3:// object) whose content was enqueued. */
export async function findDocuments(store: DocStore, target: string, s3?: () => S3Client): Promise<DocRecord[]> {
  if (/^d[0-9a-f]{3,20}$/.test(target)) {
    const ids = (await store.list(1_000_000)).filter((id) => id.startsWith(target));
    if (ids.length > 0) return store.getMany(ids);
  }
  let sha: string;
  if (isS3Uri(target)) {
    const found = s3 ? await hashObject(target, s3()) : null;
    if (!found) return [];
    sha = found;
  } else {
    try {
      sha = await hashFile(target);
    } catch {
      return [];
    }
  }
  const ids = await store.list(1_000_000);
  const found: DocRecord[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    for (const record of await store.getMany(ids.slice(i, i + 500))) if (record.meta.sha256 === sha) found.push(record);
  }
  return found;
}

/**
 * Retries every document the targets name. One that cannot be (a DocbatchError of that document:
 * its archive missing or damaged) is listed in `failures` and the others go on; what is not the
 * document's (Redis away or full, a usage error) ends the command.
 */
export async function retryDocuments(targets: string[], config: Config, log: Logger, options: RetryOptions = {}): Promise<{ outcomes: RetryOutcome[]; unknown: string[]; failures: RetryFailure[] }> {
  const parts = openClientParts(config);
  const { redis, store, s3 } = parts;
  try {
    await parts.ping();
    const outcomes: RetryOutcome[] = [];
    const failures: RetryFailure[] = [];
    const unknown: string[] = [];
    const seen = new Set<string>();
    for (const target of targets) {
      const records = await findDocuments(store, target, s3);
      if (records.length === 0) unknown.push(target);
      for (const record of records) {
        if (seen.has(record.docId)) continue;
        seen.add(record.docId);
        if (record.meta.encrypted && options.password) await redis.hset(store.docKey(record.docId), 'password', options.password);
        let outcome: ReopenOutcome;
        try {
          outcome = await reopenDocument(parts, record, { ...(options.codes ? { codes: options.codes } : {}), ...(options.rewrite ? { rewrite: true } : {}) });
        } catch (err) {
          if (!(err instanceof DocbatchError) || err.action === 'usage') throw err;
          log.debug({ docId: record.docId, code: err.code, err: err.message }, 'retry failed');
          failures.push({ docId: record.docId, source: record.meta.source, error: err });
          continue;
        }
        log.debug({ docId: record.docId, reopened: outcome.reopened.length, rewrite: outcome.rewrite }, 'retry');
        outcomes.push({ ...outcome, source: record.meta.source, record });
      }
    }
    return { outcomes, unknown, failures };
  } finally {
    await parts.close();
  }
}
