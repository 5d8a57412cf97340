/**
 * A chat export's runs → `X.jsonl`, in conversation order:
 *
 *   chunk unit          one line per chunk: `{"conversation_id", "title", "chunk", "chunks",
 *                       "message_ids", "create_time", "summary" | "data", "usage", "model",
 *                       "finish_reason"}`, or `"summary": null` and `"error": {code, message}`;
 *                       with --conversation-summary, a `"chunk": "summary"` line closes each
 *                       conversation (of several chunks: its summary unit; of one: that chunk's)
 *   conversation unit   one line per conversation (`"chunk": "conversation"`): its answer (a
 *                       conversation of several chunks is answered from its parts' summaries,
 *                       whose usage its line's `usage` includes: they have no line)
 *
 * Text tasks put the answer in `summary`; JSON tasks put the validated value in `data`.
 */
import type { BlobStore } from '../store/blobs.ts';
import type { SidecarChunk } from '../store/chunk-index.ts';
import type { DocStore } from '../store/docs.ts';
import type { DocRecord, UnitResult, UnitResultFailed } from '../store/types.ts';
import { count, missing, newTally, type Assembled, type Tally } from './assemble.ts';
import type { OutputSink } from './atomic.ts';
import { jsonLines, jsonlLine } from '../jsonl.ts';
import { addCounts, usageJson, type TokenCounts } from '../usage.ts';

interface Conversation {
  first: SidecarChunk;
  messageIds: Set<string>;
  results: UnitResult[];
}

export async function writeChat(record: DocRecord, store: DocStore, blobs: BlobStore, sink: OutputSink, base: string): Promise<Assembled> {
  const { meta } = record;
  const json = meta.task.output === 'json';
  const perConversation = meta.task.unit === 'conversation';
  const summaries = meta.conversationSummary === true || perConversation;
  const chunkUnits = meta.feedUnits;
  const tally: Tally = newTally();
  const sidecar = await blobs.localPath(meta.blob);
  // Split at \n only: a message may hold U+2028, which readline would take for a line end.
  const lines = jsonLines(sidecar);
  // Summary units follow the chunks, one per conversation of several chunks, in conversation order.
  let nextSummary = chunkUnits;
  let conversation: Conversation | null = null;

  const answer = (r: UnitResult) =>
    r.ok
      ? { ...(json ? { data: r.data ?? null } : { summary: r.text }), usage: usageJson(r), model: r.model, finish_reason: r.finishReason }
      : { ...(json ? { data: null } : { summary: null }), usage: failureUsage(r), error: { code: r.code, message: r.message } };

  try {
    const file = await sink.writeStream(`${base}.jsonl`, async (write) => {
      const closeConversation = async () => {
        if (!conversation) return;
        const { first, messageIds, results } = conversation;
        let r: UnitResult;
        let unit: number;
        if (first.chunks > 1) {
          unit = nextSummary++;
          r = (await store.unitResult(record.docId, record.gen, unit)) ?? missing();
          count(tally, unit, r);
          if (!r.ok) tally.failures.push({ unit, code: r.code, message: r.message, conversation_id: first.conversation_id, chunk: 'summary' });
        } else {
          unit = -1; // the single chunk's own answer is the conversation's
          r = results[0] ?? missing();
        }
        const line = {
          conversation_id: first.conversation_id,
          title: first.title,
          chunk: perConversation ? 'conversation' : 'summary',
          chunks: first.chunks,
          message_ids: [...messageIds],
          create_time: first.create_time ?? null,
          from_chunks: results.filter((x) => x.ok).length,
          ...answer(r),
          ...(unit < 0 && !perConversation ? { usage: { prompt_tokens: 0, completion_tokens: 0 } } : {}),
          // Its parts' summaries have no line of their own under the conversation unit: their
          // usage is the conversation's too, so the lines add up to the report's totals.
          ...(perConversation && unit >= 0 ? { usage: combinedUsage([r, ...results]) } : {}),
        };
        await write(jsonlLine(line));
        conversation = null;
      };

      for await (const [unit, result] of store.results(record.docId, record.gen, chunkUnits)) {
        const next = await lines.next();
        if (next.done) throw new Error(`sidecar of ${record.docId} has fewer lines than its ${chunkUnits} chunks`);
        const chunk = JSON.parse(next.value) as SidecarChunk;
        const r = result ?? missing();
        const single = chunk.chunks <= 1;
        // Under the conversation unit a lone chunk's answer is the conversation's; parts are counted as parts.
        count(tally, unit, r);
        if (!r.ok) tally.failures.push({ unit, code: r.code, message: r.message, conversation_id: chunk.conversation_id, chunk: chunk.chunk });
        if (!perConversation) {
          const line = {
            conversation_id: chunk.conversation_id,
            title: chunk.title,
            chunk: chunk.chunk,
            chunks: chunk.chunks,
            message_ids: chunk.message_ids,
            ...(chunk.overlap_message_ids && chunk.overlap_message_ids.length > 0 ? { overlap_message_ids: chunk.overlap_message_ids } : {}),
            create_time: chunk.create_time ?? null,
            ...answer(r),
          };
          await write(jsonlLine(line));
        }
        if (summaries) {
          if (chunk.chunk === 0) conversation = { first: chunk, messageIds: new Set(), results: [] };
          if (conversation) {
            for (const id of chunk.message_ids) conversation.messageIds.add(id);
            conversation.results.push(r);
            if (chunk.chunk === chunk.chunks - 1 || single) await closeConversation();
          }
        }
      }
    });
    return { file, tally };
  } finally {
    await lines.return(undefined);
  }
}

/**
 * The usage of a conversation's summary and the parts it was made from, as one: null when none
 * of them had an answer; a count null when one of them did not report it (unknown, src/usage.ts).
 */
function combinedUsage(results: UnitResult[]): ReturnType<typeof usageJson> {
  let total: TokenCounts | null = null;
  for (const r of results) {
    if (!r.ok && r.promptTokens === undefined && r.completionTokens === undefined) continue; // no answer
    total = addCounts(total ?? { promptTokens: 0, completionTokens: 0 }, { promptTokens: r.promptTokens ?? null, completionTokens: r.completionTokens ?? null });
  }
  return total === null ? null : usageJson(total);
}

/**
 * A failed unit's `usage`: what the engine reported for its rejected answers, or null (unknown:
 * no answer, or none reported), never a made-up 0 that a reader summing lines would count.
 */
function failureUsage(r: UnitResultFailed): ReturnType<typeof usageJson> {
  if (r.promptTokens === undefined && r.completionTokens === undefined) return null;
  return usageJson({ promptTokens: r.promptTokens ?? null, completionTokens: r.completionTokens ?? null });
}
