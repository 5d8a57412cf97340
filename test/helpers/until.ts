/**
 * Waits until `check` holds (asked at once, then every `everyMs`), or throws `timed out waiting
 * for <what>` after `timeoutMs`: the one polling loop the process and fault tests share.
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 60_000, everyMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
