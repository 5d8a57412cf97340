/**
 * Output names: which document writes which files in a folder, so two documents never write the
 * same files. DocStore (docs.ts) offers these as its `claim`, `claimName`, `releaseName` and
 * `moveOutputs`; the keys are its own (docs/design.md, "Redis keys"):
 *
 *   {p}:names             hash   output folder/name → doc id (folder/X.compare: a comparison's file)
 *   {p}:names:folded      string claims made before case folding have their folded field (name-fold.ts)
 *   {p}:doc:{id}:claim    string a name is claimed, the record not registered yet (an hour at most)
 *
 * A name is held case-folded (`nameField`): `Report.md` and `report.md` are one file on the
 * filesystems outputs land on (macOS, Windows, SMB shares). gc (gc.ts) takes back the names of
 * documents whose record expired, never one whose claim is still in progress.
 */
import type { Redis } from 'ioredis';
import { foldField } from './name-fold.ts';
import type { DocMeta, DocState } from './types.ts';

/** The keys the name scripts touch: DocStore's. */
export interface NameKeys {
  readonly redis: Redis;
  readonly namesKey: string;
  readonly activeKey: string;
  docKey(docId: string): string;
  unitsKey(docId: string, gen: number): string;
  noUsageKey(docId: string, gen: number): string;
  claimKey(docId: string): string;
}

/** How long a claimed name waits for its document's record before gc may take it back. */
export const CLAIM_MS = 3_600_000;

/**
 * A name's field in the names hash: `folder/name` (plus the family, `.compare`), case-folded
 * (NFC, then lower case). Outputs land on filesystems that ignore case (macOS, Windows, SMB
 * shares): `Report.md` and `report.md` are one file there, so they are one name here.
 */
export function nameField(dir: string, name: string, kind = ''): string {
  return foldField(`${dir}/${name}${kind}`);
}

/**
 * The name's field, and the field as versions before case folding wrote it (`folder/Name` as
 * typed; the same string when the name has no capitals). A Redis kept through an upgrade holds
 * such claims for RETENTION_DAYS: they are read as claims too, or a new document would win a
 * name an older one still writes to.
 */
function nameFields(dir: string, name: string, kind = ''): [folded: string, legacy: string] {
  return [nameField(dir, name, kind), `${dir}/${name}${kind}`];
}

/**
 * KEYS names hash, doc hash, claim key; ARGV field, doc id, claim ms, the field's legacy spelling
 * (nameFields). 2: the field is now this document's, 1: it was already (a legacy claim of it is
 * carried over to the field); a document without a record yet is marked as claiming. 0: another's.
 */
const CLAIM_LUA = `
local holder = redis.call('HGET', KEYS[1], ARGV[1])
if not holder and ARGV[4] ~= ARGV[1] then
  holder = redis.call('HGET', KEYS[1], ARGV[4])
  if holder == ARGV[2] then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
end
if holder and holder ~= ARGV[2] then return 0 end
if not holder then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[3], '1', 'PX', ARGV[3]) end
if holder then return 1 end
return 2`;

/**
 * KEYS names hash, doc hash; ARGV the name's field, doc id, folder, name, the field's legacy
 * spelling (nameFields). Gives a name back: only if this document holds it and its record does
 * not name it (another mover may have moved it there since). 1 released, 0 kept.
 */
const RELEASE_NAME_LUA = `
local folded = redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2]
local legacy = ARGV[5] ~= ARGV[1] and redis.call('HGET', KEYS[1], ARGV[5]) == ARGV[2]
if not folded and not legacy then return 0 end
local meta = redis.call('HGET', KEYS[2], 'meta')
if meta then
  local m = cjson.decode(meta)
  if m['outSub'] == ARGV[3] and m['name'] == ARGV[4] then return 0 end
end
if folded then redis.call('HDEL', KEYS[1], ARGV[1]) end
if legacy then redis.call('HDEL', KEYS[1], ARGV[5]) end
return 1`;

/**
 * KEYS doc hash, results hash, active zset, names hash, bitmap of units without usage (kept as
 * long as the record, as REOPEN_LUA keeps it); ARGV gen, state, outSub and name it must
 * have, the new meta JSON, now (ms), doc id, the new name's field and its legacy spelling
 * (nameFields). 1: moved and complete;
 * 0: the record is not as expected, or the new name is another document's. The name is claimed
 * again here: a claim released meanwhile (another mover's failure) is not left unheld.
 */
const MOVE_LUA = `
local h = redis.call('HMGET', KEYS[1], 'gen', 'state', 'meta')
if h[1] ~= ARGV[1] or h[2] ~= ARGV[2] or not h[3] then return 0 end
local m = cjson.decode(h[3])
if m['outSub'] ~= ARGV[3] or m['name'] ~= ARGV[4] then return 0 end
local holder = redis.call('HGET', KEYS[4], ARGV[8])
if not holder and ARGV[9] ~= ARGV[8] then holder = redis.call('HGET', KEYS[4], ARGV[9]) end
if holder and holder ~= ARGV[7] then return 0 end
redis.call('HSET', KEYS[4], ARGV[8], ARGV[7])
redis.call('HSET', KEYS[1], 'meta', ARGV[5], 'state', 'complete')
redis.call('HDEL', KEYS[1], 'write_error')
redis.call('HINCRBY', KEYS[1], 'reopens', 1)
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
redis.call('PERSIST', KEYS[5])
redis.call('ZADD', KEYS[3], ARGV[6], ARGV[7])
return 1`;

/**
 * Claims output name `name` in folder `dir` for `docId` (whatever its case: nameField). A name
 * another document holds is tried with `-<8 hex of the content hash>`, then `-<the doc id>`:
 * every claim's result is checked, so two documents never write the same files. Returns the name
 * won, and whether it is new to the document (`fresh`) or was its already. `kind` claims a name
 * of another family of files in the folder (`.compare`: `X.compare.json`), apart from the
 * documents' names. A document not registered yet is marked as claiming (`{p}:doc:{id}:claim`,
 * for CLAIM_MS), so gc leaves its name alone until its record exists.
 */
export async function claimName(keys: NameKeys, dir: string, name: string, docId: string, sha256: string, kind = ''): Promise<{ name: string; fresh: boolean }> {
  const candidates = [name, `${name}-${sha256.slice(0, 8)}`, `${name}-${docId.slice(1, 13)}`, `${name}-${docId}`];
  for (const candidate of candidates) {
    const [field, legacy] = nameFields(dir, candidate, kind);
    const won = await keys.redis.eval(CLAIM_LUA, 3, keys.namesKey, keys.docKey(docId), keys.claimKey(docId), field, docId, CLAIM_MS, legacy);
    if (won === 1 || won === 2) return { name: candidate, fresh: won === 2 };
  }
  throw new Error(`no free output name for ${docId} in ${JSON.stringify(dir)}`);
}

/** Gives back a name claimed for a move that did not happen, unless the record names it by now. */
export async function releaseName(keys: NameKeys, dir: string, name: string, docId: string): Promise<boolean> {
  const [field, legacy] = nameFields(dir, name);
  return (await keys.redis.eval(RELEASE_NAME_LUA, 2, keys.namesKey, keys.docKey(docId), field, docId, dir, name, legacy)) === 1;
}

/**
 * Points a finished document (written or failed, its results already restored) at another
 * output folder and name, and hands it to the writer, in one step (MOVE_LUA): only if it is
 * still generation `gen` in `state` with the folder and name of `from`; false otherwise
 * (another enqueue or retry changed it meanwhile). It becomes `complete` and counts as a reopen,
 * so a write in flight that read the old folder cannot mark it written.
 */
export async function moveOutputs(keys: NameKeys, docId: string, gen: number, state: DocState, from: Pick<DocMeta, 'outSub' | 'name'>, meta: DocMeta): Promise<boolean> {
  const moved = await keys.redis.eval(
    MOVE_LUA,
    5,
    keys.docKey(docId),
    keys.unitsKey(docId, gen),
    keys.activeKey,
    keys.namesKey,
    keys.noUsageKey(docId, gen),
    String(gen),
    state,
    from.outSub,
    from.name,
    JSON.stringify(meta),
    Date.now(),
    docId,
    ...nameFields(meta.outSub, meta.name),
  );
  return moved === 1;
}
