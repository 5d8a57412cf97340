/**
 * Task files and the enqueue flags → a task, or TASK_INVALID naming the file, the field (and the
 * line, for YAML) with what is wrong: misspelt fields and variables get a suggestion, variables a
 * unit has no value for are refused, a schema file's mistakes name the task file that uses it.
 * Two files that say the same thing in another order or format are the same task.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DocbatchError } from '../../src/errors.ts';
import { BUILTIN_TASKS } from '../../src/task/builtin.ts';
import { taskHash } from '../../src/task/identity.ts';
import { defaultExtractPrompt, loadTaskFile, promptArgument, resolveTask } from '../../src/task/load.ts';
import { schemaViolations } from '../../src/task/schema.ts';
import type { Task } from '../../src/task/types.ts';

const dir = mkdtempSync(join(tmpdir(), 'docbatch-task-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** The error's one-line description ("file: field x: TASK_INVALID: ..."). */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(DocbatchError);
    expect((err as DocbatchError).code).toBe('TASK_INVALID');
    return (err as DocbatchError).describe();
  }
  throw new Error('no error');
}

const SCHEMA = { type: 'object', properties: { total: { type: 'number' } }, required: ['total'] };

describe('task files', () => {
  it('YAML with every field', () => {
    file('s.json', JSON.stringify(SCHEMA));
    const task = loadTaskFile(
      file(
        'full.yaml',
        [
          'name: invoices',
          'description: totals',
          'unit: document',
          'system: You read invoices.',
          'prompt: "The total of {{file}} ({{pages}} pages)."',
          'output: { schema: s.json, name: invoice }',
          'sampling: { temperature: 0.1, max_tokens: 300, top_p: 0.9, seed: 7, stop: ["END"] }',
          'model: acme/vl',
          'image: { size: 1024, format: jpeg }',
          'text_layer: false',
          'retries: 2',
          'max_pages: 4',
        ].join('\n'),
      ),
    );
    expect(task).toEqual({
      name: 'invoices',
      description: 'totals',
      unit: 'document',
      system: 'You read invoices.',
      prompt: 'The total of {{file}} ({{pages}} pages).',
      output: { type: 'json', schema: SCHEMA, name: 'invoice' },
      sampling: { temperature: 0.1, maxTokens: 300, topP: 0.9, seed: 7, stop: ['END'] },
      models: ['acme/vl'],
      image: { size: 1024, format: 'jpeg' },
      textLayer: false,
      retries: 2,
      fallback: 'none',
      maxPages: 4,
    } satisfies Task);
  });

  it('the same task in JSON, keys in another order, is the same task (same hash); the name is not part of it', () => {
    const yaml = loadTaskFile(file('a.yaml', 'prompt: Classify {{file}}\nunit: page\nsampling:\n  temperature: 0.2\n  seed: 1\n'));
    const json = loadTaskFile(file('b.json', JSON.stringify({ name: 'other', sampling: { seed: 1, temperature: 0.2 }, unit: 'page', prompt: 'Classify {{file}}' })));
    expect(taskHash(yaml)).toBe(taskHash(json));
    expect(taskHash(yaml)).not.toBe(taskHash({ ...yaml, prompt: 'Classify {{file}}.' }));
  });

  it('extends a built-in: what is not said comes from it', () => {
    const task = loadTaskFile(file('t.yaml', 'extends: transcribe\nimage: { size: 900 }\n'));
    expect(task).toMatchObject({ name: 'transcribe', unit: 'page', prompt: BUILTIN_TASKS.transcribe.prompt, fallback: 'text-layer', textLayer: true, image: { size: 900 } });
    expect(loadTaskFile(file('u.yaml', 'extends: summarize\nunit: conversation\n'))).toMatchObject({ unit: 'conversation', system: BUILTIN_TASKS.summarize.system });
    // The base's text-layer fallback is for pages: another unit goes without it (it was refused,
    // naming a fallback field the file does not have); one the file names itself still is.
    expect(loadTaskFile(file('d.yaml', 'extends: transcribe\nunit: document\n'))).toMatchObject({ unit: 'document', fallback: 'none' });
    expect(() => loadTaskFile(file('d2.yaml', 'extends: transcribe\nunit: document\nfallback: text-layer\n'))).toThrow(/fallback text-layer works on the page unit only/);
  });

  it('a byte-order mark before JSON is read past; a model named twice runs once', () => {
    const schema = file('s.json', `\uFEFF${JSON.stringify({ type: 'object', properties: { total: { type: 'number' } } })}`);
    const task = loadTaskFile(file('bom.json', `\uFEFF${JSON.stringify({ prompt: 'Total?', models: ['a', 'b', 'a'], output: { type: 'json', schema: 's.json' } })}`));
    expect(task).toMatchObject({ prompt: 'Total?', models: ['a', 'b'], output: { type: 'json', schema: { type: 'object' } } });
    expect(loadTaskFile(file('one.yaml', 'prompt: Hi\nmodel: a\n')).models).toEqual(['a']);
    expect(resolveTask({ schema }, 'pdf')).toMatchObject({ output: { type: 'json' } });
  });

  it('names the file, the field and what is wrong', () => {
    expect(failure(() => loadTaskFile(file('e1.yaml', 'prompt: hi\nsampling:\n  temprature: 0.5\n')))).toBe(
      `${join(dir, 'e1.yaml')}: line 3: field sampling.temprature: TASK_INVALID: unknown field (did you mean "temperature"?); the fields are in docs/tasks.md`,
    );
    expect(failure(() => loadTaskFile(file('e2.yaml', 'promt: hi\n')))).toContain('field promt: TASK_INVALID: unknown field (did you mean "prompt"?)');
    expect(failure(() => loadTaskFile(file('e3.yaml', 'prompt: hi\nsampling: { temperature: 5 }\n')))).toMatch(/e3\.yaml: line 2: field sampling\.temperature: TASK_INVALID: .*2/);
    expect(failure(() => loadTaskFile(file('e4.yaml', 'prompt: hi\nunit: pages\n')))).toMatch(/e4\.yaml: line 2: field unit: TASK_INVALID: .*"page"\|"document"\|"chunk"\|"conversation"/);
    expect(failure(() => loadTaskFile(file('e5.yaml', 'unit: page\n')))).toContain('e5.yaml: field prompt: TASK_INVALID: a task needs a prompt');
    expect(failure(() => loadTaskFile(file('e6.yaml', 'prompt: hi\nmodel: a\nmodels: [b]\n')))).toContain('field models:');
    expect(failure(() => loadTaskFile(file('e7.yaml', '- prompt: hi\n')))).toContain('e7.yaml: TASK_INVALID: a task file holds one object');
    expect(failure(() => loadTaskFile(join(dir, 'missing.yaml')))).toContain('missing.yaml: TASK_INVALID: cannot read the task file (no such file)');
  });

  it('a mistake in a field says its line, in YAML and in JSON; a key written twice is refused, also in JSON', () => {
    expect(failure(() => loadTaskFile(file('l1.yaml', 'name: x\n\nprompt: hi\nsamplng: {}\n')))).toContain('l1.yaml: line 4: field samplng: TASK_INVALID: unknown field (did you mean "sampling"?)');
    expect(failure(() => loadTaskFile(file('l2.json', '{\n  "prompt": "hi",\n  "sampling": {\n    "top_p": 0\n  }\n}')))).toMatch(/l2\.json: line 4: field sampling\.top_p: TASK_INVALID: /);
    expect(failure(() => loadTaskFile(file('l3.yaml', 'prompt: hi\nsampling:\n  stop: [END, ""]\n')))).toMatch(/l3\.yaml: line 3: field sampling\.stop\.1: TASK_INVALID: /);
    // JSON.parse would keep the second prompt and drop the first without a word.
    expect(failure(() => loadTaskFile(file('d1.json', '{\n  "prompt": "Summarize.",\n  "unit": "page",\n  "prompt": "Transcribe."\n}')))).toMatch(/d1\.json: line 4: TASK_INVALID: the file has the key "prompt" written twice in one object/);
    expect(failure(() => loadTaskFile(file('d2.yaml', 'prompt: a\nprompt: b\n')))).toMatch(/d2\.yaml: line 2: TASK_INVALID: not valid YAML: Map keys must be unique/);
    const schema = file('d3.json', '{"type": "object",\n "required": ["a"],\n "properties": {"a": {"type": "string"}},\n "required": ["b"]}');
    expect(failure(() => loadTaskFile(file('d3.yaml', 'prompt: hi\noutput: { schema: d3.json }\n')))).toContain(`d3.yaml: line 2: field output.schema: TASK_INVALID: the schema (${schema}) has the key "required" written twice`);
    expect(failure(() => resolveTask({ schema }, 'pdf'))).toMatch(/d3\.json: line 4: TASK_INVALID: the schema has the key "required" written twice/);
  });

  it('YAML anchors and merge keys work; top-level x- fields hold what they merge from', () => {
    const task = loadTaskFile(file('m1.yaml', 'x-sampling: &defaults { temperature: 0.2, seed: 7 }\nprompt: hi\nsampling:\n  <<: *defaults\n  seed: 8\n'));
    expect(task.sampling).toEqual({ temperature: 0.2, seed: 8 });
    expect(taskHash(task)).toBe(taskHash(loadTaskFile(file('m2.yaml', 'prompt: hi\nsampling: { seed: 8, temperature: 0.2 }\n'))));
    // Anywhere else an unknown field is still one.
    expect(failure(() => loadTaskFile(file('m3.yaml', 'prompt: hi\nsampling: { x-seed: 1 }\n')))).toContain('field sampling.x-seed: TASK_INVALID: unknown field');
  });

  it('YAML and JSON syntax errors say where', () => {
    expect(failure(() => loadTaskFile(file('y.yaml', 'name: x\nprompt: [hi\n  x: :\n')))).toMatch(/y\.yaml: line 2: TASK_INVALID: not valid YAML: /);
    expect(failure(() => loadTaskFile(file('j.json', '{"prompt": "hi",}')))).toMatch(/j\.json: TASK_INVALID: not valid JSON: /);
  });

  it('variables: unknown ones get a suggestion; one the unit has no value for is refused', () => {
    expect(failure(() => loadTaskFile(file('v1.yaml', 'prompt: "Page {{pgae}}"\n')))).toContain('field prompt: TASK_INVALID: unknown variable {{pgae}} (did you mean "page"?)');
    expect(failure(() => loadTaskFile(file('v2.yaml', 'prompt: "Page {{page}} of {{pages}}"\nunit: document\n')))).toContain('field prompt: TASK_INVALID: {{page}} has no value in a document unit');
    expect(failure(() => loadTaskFile(file('v3.yaml', 'system: "About {{title}}"\nprompt: Summarize.\nunit: page\n')))).toContain('field system: TASK_INVALID: {{title}} has no value in a page unit');
    expect(loadTaskFile(file('v4.yaml', 'prompt: "Summarize {{part}}{{title}} ({{chunks}} chunks)"\nunit: conversation\n')).unit).toBe('conversation');
    // Meant as placeholders, but not names a placeholder can have, or not closed: they would
    // reach the model as written.
    expect(failure(() => loadTaskFile(file('v5.yaml', 'prompt: "Id {{conversation-id}}"\nunit: chunk\n')))).toContain('unknown variable {{conversation-id}} (did you mean "conversation_id"?)');
    expect(failure(() => loadTaskFile(file('v6.yaml', 'prompt: "Page {{ page number }}"\n')))).toContain('unknown variable {{page number}}');
    expect(failure(() => loadTaskFile(file('v7.yaml', 'prompt: "File {{file} here"\n')))).toContain('unknown variable {{file}');
    // An example answer in JSON is no placeholder; nor are templates of other languages, BibTeX
    // or LaTeX in a prompt: only near-misses of our variables are refused.
    expect(loadTaskFile(file('v8.yaml', 'prompt: \'Answer like {"total": {"value": 1}} for {{file}}\'\n')).prompt).toContain('{"value": 1}}');
    for (const text of ['Fill {{user.name}} and {{ x | upper }}', 'Loop {{#each items}}{{/each}}', 'Go: {{.Name}}', 'BibTeX title = {{The Great Paper}}', 'LaTeX {{\\bf x}}', 'Odd {{foo}', 'Handlebars {{title-case name}} here']) {
      expect(loadTaskFile(file('v9.json', JSON.stringify({ prompt: text, unit: 'chunk' }))).prompt, text).toBe(text);
    }
  });

  it('schema mistakes Ajv would let pass: an unknown format, a misspelt keyword; 2020-12 keywords without $schema', () => {
    const schemaTask = (name: string, schema: unknown) => file(name, JSON.stringify({ prompt: 'Extract.', output: { type: 'json', schema } }));
    expect(failure(() => loadTaskFile(schemaTask('f1.json', { type: 'object', properties: { d: { type: 'string', format: 'dat' } } })))).toContain('field output.schema: TASK_INVALID: the schema names the unknown format "dat"');
    expect(failure(() => loadTaskFile(schemaTask('f2.json', { type: 'object', requird: ['a'], properties: { a: { type: 'string' } } })))).toContain('the unknown keyword "requird" (did you mean "required"?)');
    // Annotations it does not know are harmless (short ones close to a keyword too: unit ~ not,
    // note ~ not, kind ~ $id); a property named like a keyword is a property.
    expect(loadTaskFile(schemaTask('f3.json', { type: 'object', 'x-order': 1, properties: { requird: { type: 'string', example: 'x', unit: 'kg', note: 'n', notes: 'n', kind: 'k' } } })).output.type).toBe('json');
    // No $schema, but 2020-12 keywords: validated as 2020-12 (draft-07 ignored unevaluatedProperties,
    // and read prefixItems + items:false as "no items at all").
    const extra = loadTaskFile(schemaTask('f4.json', { type: 'object', properties: { a: { type: 'string' } }, unevaluatedProperties: false })).output;
    const tuple = loadTaskFile(schemaTask('f5.json', { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }], items: false })).output;
    const check = (output: typeof extra, value: unknown) => schemaViolations((output as { schema: Record<string, unknown> }).schema, value);
    expect(check(extra, { a: 'x', zzz_extra: 1 })).toMatch(/must NOT have unevaluated properties/);
    expect(check(extra, { a: 'x' })).toBeNull();
    expect(check(tuple, ['a', 2])).toBeNull();
    expect(check(tuple, ['a', 2, 3])).not.toBeNull();
  });

  it("formats of the standard Ajv lacks (idn-email, iri, ...) and Pydantic's (path, uuid4, json-string, ...) are taken, not refused as unknown", () => {
    const schemaTask = (name: string, schema: unknown) => file(name, JSON.stringify({ prompt: 'Extract.', output: { type: 'json', schema } }));
    // As Pydantic's model_json_schema() writes a model with Path, UUID4, Json, IPvAnyAddress and Color fields.
    const pydantic = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      title: 'Upload', type: 'object',
      properties: {
        file: { format: 'file-path', title: 'File', type: 'string' },
        folder: { format: 'directory-path', title: 'Folder', type: 'string' },
        id: { format: 'uuid4', title: 'Id', type: 'string' },
        meta: { format: 'json-string', title: 'Meta', type: 'string' },
        host: { format: 'ipvanyaddress', title: 'Host', type: 'string' },
        colour: { format: 'color', title: 'Colour', type: 'string' },
        contact: { format: 'idn-email', type: 'string' },
        site: { format: 'iri', type: 'string' },
        domain: { format: 'idn-hostname', type: 'string' },
      },
      required: ['file', 'id'],
    };
    // Each was TASK_INVALID "the schema names the unknown format ...".
    const output = loadTaskFile(schemaTask('pyd.json', pydantic)).output as { schema: Record<string, unknown> };
    const good = { file: 'in/a.pdf', folder: 'in', id: '0f8fad5b-d9cb-469f-a165-70867728950e', meta: '{"a": 1}', host: '2001:db8::1', colour: 'teal', contact: 'josé@exemplo.com.br', site: 'https://例え.jp/パス', domain: 'bücher.example' };
    expect(schemaViolations(output.schema, good)).toBeNull();
    const bad = { id: '0f8fad5b-d9cb-169f-a165-70867728950e', meta: '{a: 1}', host: '300.1.1.1', contact: 'no at sign', site: 'no scheme here', domain: '-bad-.example' };
    for (const [field, value] of Object.entries(bad)) expect(schemaViolations(output.schema, { ...good, [field]: value })).toBe(`/${field} must match format "${pydantic.properties[field as keyof typeof bad].format}"`);
  });

  it("a schema's $schema as generators write it: draft-04, -06, -07, 2019-09, 2020-12, http or https, with or without #", () => {
    const schemaTask = (name: string, schema: unknown) => file(name, JSON.stringify({ prompt: 'Extract.', output: { type: 'json', schema } }));
    const total = { type: 'object', required: ['total'], properties: { total: { type: 'number', minimum: 0 } } };
    // Each was TASK_INVALID "no schema with key or ref ..." though the engine reads none of it.
    for (const [i, uri] of [
      'http://json-schema.org/draft-04/schema#', // JSON Schema generators of the 2010s, many OpenAPI tools
      'http://json-schema.org/draft-06/schema#', // quicktype
      'https://json-schema.org/draft-07/schema#',
      'https://json-schema.org/draft-07/schema',
      'http://json-schema.org/draft-07/schema#', // zod-to-json-schema
      'https://json-schema.org/draft/2019-09/schema',
      'https://json-schema.org/draft/2020-12/schema#',
      'http://json-schema.org/draft/2020-12/schema',
    ].entries()) {
      const output = loadTaskFile(schemaTask(`d${i}.json`, { $schema: uri, ...total })).output as { schema: Record<string, unknown> };
      expect(output.schema.$schema).toBe(uri); // the engine gets the schema as written
      expect(schemaViolations(output.schema, { total: 3 }), uri).toBeNull();
      expect(schemaViolations(output.schema, { total: -1 }), uri).toMatch(/must be >= 0/);
    }
    // draft-04's exclusiveMinimum is a flag on minimum: validated as draft-04 means it.
    const d04 = loadTaskFile(schemaTask('d04.json', { $schema: 'http://json-schema.org/draft-04/schema#', type: 'number', minimum: 0, exclusiveMinimum: true })).output as { schema: Record<string, unknown> };
    expect(schemaViolations(d04.schema, 0)).toMatch(/must be > 0/);
    expect(schemaViolations(d04.schema, 0.5)).toBeNull();
    // draft-04 names a schema with `id` (draft-06 renamed it `$id`): draft-04 generators write it at
    // the root, often in definitions; it was TASK_INVALID 'NOT SUPPORTED: keyword "id"'. A property
    // named id is a property.
    const withId = {
      $schema: 'http://json-schema.org/draft-04/schema#',
      id: 'http://example.com/invoice.json',
      type: 'object',
      required: ['id', 'line'],
      properties: { id: { type: 'string' }, line: { $ref: 'http://example.com/invoice.json#/definitions/line' } },
      definitions: { line: { id: '#line', type: 'object', required: ['amount'], properties: { amount: { type: 'number' } } } },
    };
    const d04id = loadTaskFile(schemaTask('d04id.json', withId)).output as { schema: Record<string, unknown> };
    expect(d04id.schema.id).toBe('http://example.com/invoice.json'); // the engine gets the schema as written
    expect(schemaViolations(d04id.schema, { id: 'A-1', line: { amount: 3 } })).toBeNull();
    expect(schemaViolations(d04id.schema, { id: 'A-1', line: {} })).toMatch(/must have required property 'amount'/);
    // 2019-09 keywords work in a 2019-09 schema.
    const d19 = loadTaskFile(schemaTask('d19.json', { $schema: 'https://json-schema.org/draft/2019-09/schema', type: 'object', properties: { a: {} }, unevaluatedProperties: false })).output as { schema: Record<string, unknown> };
    expect(schemaViolations(d19.schema, { a: 1, b: 2 })).toMatch(/unevaluated properties/);
    // A $schema naming no draft says which it takes.
    expect(failure(() => loadTaskFile(schemaTask('dx.json', { $schema: 'https://example.com/my-meta', ...total })))).toContain('names no JSON Schema draft docbatch knows');
  });

  it("a schema file's mistakes name the task file, its output.schema field, and the schema file", () => {
    const owner = file('s1.yaml', 'prompt: hi\noutput: { schema: nope.json }\n');
    expect(failure(() => loadTaskFile(owner))).toBe(`${owner}: line 2: field output.schema: TASK_INVALID: cannot read the JSON Schema ${join(dir, 'nope.json')} (no such file)`);
    file('bad.json', JSON.stringify({ type: 'object', properties: { a: { type: 'strin' } } }));
    expect(failure(() => loadTaskFile(file('s2.yaml', 'prompt: hi\noutput: { schema: bad.json }\n')))).toMatch(/s2\.yaml: line 2: field output\.schema: TASK_INVALID: the schema \(.*bad\.json\) is not a usable JSON Schema: .*properties\/a\/type/);
    file('broken.json', '{"type": ');
    expect(failure(() => loadTaskFile(file('s3.yaml', 'prompt: hi\noutput: { schema: broken.json }\n')))).toMatch(/s3\.yaml: line 2: field output\.schema: TASK_INVALID: the schema \(.*broken\.json\) is not valid JSON/);
    expect(failure(() => loadTaskFile(file('s4.yaml', 'prompt: hi\noutput: { type: text, schema: { type: object } }\n')))).toContain('field output: TASK_INVALID: output.type text cannot have a schema');
    expect(failure(() => loadTaskFile(file('s5.yaml', 'extends: transcribe\noutput: { schema: { type: object } }\nfallback: text-layer\n')))).toContain('field fallback: TASK_INVALID: fallback text-layer needs a text output');
  });
});

describe('the enqueue flags', () => {
  it('no task: the default of the kind', () => {
    expect(resolveTask({}, 'pdf')).toBe(BUILTIN_TASKS.transcribe);
    expect(resolveTask({}, 'image')).toBe(BUILTIN_TASKS.transcribe);
    expect(resolveTask({}, 'chat')).toBe(BUILTIN_TASKS.summarize);
  });

  it('--schema alone makes an extract task from the default task; --prompt replaces its prompt; --unit and --model apply', () => {
    const schema = file('flag-schema.json', JSON.stringify(SCHEMA));
    const extract = resolveTask({ schema }, 'pdf') as Task;
    expect(extract).toMatchObject({ name: 'extract', unit: 'page', prompt: defaultExtractPrompt('pdf'), output: { type: 'json', schema: SCHEMA }, fallback: 'none', textLayer: true });
    expect(extract.prompt).toContain('from this document');
    expect(extract.textLayerNote).toBeUndefined();
    // From a chat export: about the conversation, without summarize's system message.
    const chat = resolveTask({ schema }, 'chat') as Task;
    expect(chat).toMatchObject({ name: 'extract', unit: 'chunk', prompt: expect.stringContaining('from this conversation') });
    expect(chat.system).toBeUndefined();
    const custom = resolveTask({ schema, prompt: 'Totals only.', unit: 'document', models: ['m1', 'm2', 'm1'] }, 'pdf') as Task;
    expect(custom).toMatchObject({ name: 'extract', unit: 'document', prompt: 'Totals only.', models: ['m1', 'm2'] });
    expect(resolveTask({ prompt: 'Just the headings.' }, 'pdf')).toMatchObject({ name: 'custom', prompt: 'Just the headings.', output: { type: 'text' }, fallback: 'text-layer' });
    // The built-ins themselves are left as they were.
    expect(BUILTIN_TASKS.transcribe.output).toEqual({ type: 'text' });
  });

  it('--unit that does not fit the kind is a mismatch (the file is rejected), not a bad task', () => {
    expect(resolveTask({ unit: 'document' }, 'chat')).toEqual({ mismatch: expect.stringContaining('use chunk or conversation') });
    expect(resolveTask({ unit: 'chunk' }, 'pdf')).toEqual({ mismatch: expect.stringContaining('use page or document') });
  });

  it('--prompt naming a variable the kind has no value for: that kind of input is a mismatch, the others take it', () => {
    expect(resolveTask({ prompt: 'Summarize {{title}}.' }, 'chat')).toMatchObject({ unit: 'chunk', prompt: 'Summarize {{title}}.' });
    expect(resolveTask({ prompt: 'Summarize {{title}}.' }, 'pdf')).toEqual({ mismatch: '--prompt: {{title}} has no value in a page unit (see the variables in docs/tasks.md)' });
    expect(failure(() => resolveTask({ prompt: 'Summarize {{titel}}.' }, 'chat'))).toContain('unknown variable {{titel}} (did you mean "title"?)');
  });

  it('prompt and task files as Windows editors save them: CRLF, UTF-16 with its mark; Latin-1 refused, not read as U+FFFD', () => {
    const bytes = (name: string, data: Buffer) => {
      const path = join(dir, name);
      writeFileSync(path, data);
      return path;
    };
    // CRLF: the prompt the model gets, and the task's identity, are those of the LF file.
    const lf = file('lf.txt', 'Résumé of {{file}}.\nList the totals.\n');
    const crlf = file('crlf.txt', 'Résumé of {{file}}.\r\nList the totals.\r\n');
    expect(promptArgument(`@${crlf}`)).toBe(promptArgument(`@${lf}`));
    const hash = (prompt: string) => taskHash(resolveTask({ prompt }, 'pdf') as Task);
    expect(hash(promptArgument(`@${crlf}`))).toBe(hash(promptArgument(`@${lf}`)));
    // Notepad's "Unicode" (UTF-16 LE with its mark), and UTF-16 BE.
    const utf16le = bytes('u16le.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Résumé of {{file}}.\r\nList the totals.\r\n', 'utf16le')]));
    expect(promptArgument(`@${utf16le}`)).toBe(promptArgument(`@${lf}`));
    const be = Buffer.from('prompt: Résumé.\n', 'utf16le').swap16();
    expect(loadTaskFile(bytes('u16be.yaml', Buffer.concat([Buffer.from([0xfe, 0xff]), be]))).prompt).toBe('Résumé.');
    // Windows-1252 / Latin-1 "é" is 0xE9: refused with where, not sent as "�".
    const latin1 = bytes('latin1.txt', Buffer.from('Line one.\nR\xe9sum\xe9 of {{file}}.\n', 'latin1'));
    expect(failure(() => promptArgument(`@${latin1}`))).toContain(`field --prompt: TASK_INVALID: the prompt file ${latin1} is not UTF-8 (byte 11, 0xe9, on line 2): save it as UTF-8`);
    expect(failure(() => loadTaskFile(bytes('latin1.yaml', Buffer.from('prompt: R\xe9sum\xe9.\n', 'latin1'))))).toMatch(/latin1\.yaml: TASK_INVALID: the task file is not UTF-8 \(byte 9, 0xe9, on line 1\)/);
  });

  it('--unit checks the variables again; --prompt @FILE reads the file; an empty prompt is refused', () => {
    const paged = file('paged.yaml', 'prompt: "What is on page {{page}}?"\n');
    expect(failure(() => resolveTask({ task: paged, unit: 'document' }, 'pdf'))).toContain('paged.yaml: field prompt: TASK_INVALID: {{page}} has no value in a document unit');
    expect(promptArgument(`@${file('p.txt', 'From a file.')}`)).toBe('From a file.');
    expect(failure(() => promptArgument(`@${join(dir, 'nope.txt')}`))).toContain(`field --prompt: TASK_INVALID: cannot read the prompt file ${join(dir, 'nope.txt')} (no such file)`);
    expect(failure(() => resolveTask({ prompt: '  ' }, 'pdf'))).toContain('field prompt: TASK_INVALID: --prompt is empty');
  });

  it('a bad --schema names the schema file', () => {
    const bad = file('flag-bad.json', '[1, 2]');
    expect(failure(() => resolveTask({ schema: bad }, 'pdf'))).toBe(`${bad}: TASK_INVALID: the schema must be a JSON object`);
  });
});

describe('a mistyped built-in task name', () => {
  it('says which built-in it may be, not only that there is no such file', () => {
    const cwd = process.cwd();
    const dir = mkdtempSync(join(tmpdir(), 'docbatch-task-name-'));
    process.chdir(dir);
    try {
      let err: unknown;
      try {
        loadTaskFile('summarise');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DocbatchError);
      expect((err as DocbatchError).code).toBe('TASK_INVALID');
      expect((err as Error).message).toMatch(/no built-in task of that name \(did you mean "summarize"\?\); the built-in tasks are transcribe, summarize/);
      // A file of that name is read as a file.
      writeFileSync(join(dir, 'summarise'), 'prompt: Summarise it.\nunit: page\n');
      expect(loadTaskFile('summarise').prompt).toBe('Summarise it.');
    } finally {
      process.chdir(cwd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
