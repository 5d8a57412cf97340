/**
 * Output name claims made before claims were case-folded (`folder/Name` as typed, not
 * `folder/name`: DocStore's nameField) are given their folded field too, once per Redis. Until
 * then a claim was checked against the legacy spelling of the name asked for only, so a new
 * document asking for `invoice` won it beside an older one holding `Invoice`: one file on
 * macOS, Windows and SMB shares, written by both. Once folded, every claim (the folded field
 * first) finds the older one whatever the case asked for.
 *
 * Two legacy claims that fold to one field (`o/A` and `o/a` of two documents, written by a
 * version that did not fold) cannot both keep it: the first keeps the folded field, and the
 * pair is returned, for the caller to report. The marker `{p}:names:folded` says it is done
 * (permanent); producers and writers fold before their first claim.
 */
import type { Redis } from 'ioredis';

/**
 * KEYS names hash; ARGV legacy field, its folded field, the doc id it named when read.
 * Returns 1 when the folded field is that document's (now or already, or the legacy field
 * changed meanwhile), else the id of the other document holding the folded field.
 */
const FOLD_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[3] then return 1 end
local holder = redis.call('HGET', KEYS[1], ARGV[2])
if not holder then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  return 1
end
if holder == ARGV[3] then return 1 end
return holder`;

/** Two documents whose names are one file where case is ignored. */
export interface NameClash {
  /** The legacy field (`folder/Name`) and its document. */
  field: string;
  docId: string;
  /** The document holding the folded field (`folder/name`). */
  holder: string;
}

/** A names-hash field as claims hold it: NFC, then lower case (DocStore's nameField). */
export function foldField(field: string): string {
  return field.normalize('NFC').toLowerCase();
}

export function foldedMarkerKey(prefix: string): string {
  return `${prefix}:names:folded`;
}

/** Folds every legacy claim of the names hash (nothing once the marker is set); returns the clashes found. */
export async function foldLegacyNames(redis: Redis, prefix: string): Promise<NameClash[]> {
  const namesKey = `${prefix}:names`;
  const marker = foldedMarkerKey(prefix);
  if ((await redis.exists(marker)) === 1) return [];
  const clashes: NameClash[] = [];
  let cursor = '0';
  do {
    const [next, flat] = await redis.hscan(namesKey, cursor, 'COUNT', 1000);
    cursor = next;
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const field = flat[i]!;
      const docId = flat[i + 1]!;
      const folded = foldField(field);
      if (folded === field) continue;
      const out = await redis.eval(FOLD_LUA, 1, namesKey, field, folded, docId);
      if (out !== 1) clashes.push({ field, docId, holder: String(out) });
    }
  } while (cursor !== '0');
  await redis.set(marker, '1');
  return clashes;
}
