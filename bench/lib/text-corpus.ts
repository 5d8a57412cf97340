/**
 * Deterministic text of many kinds, for calibrating the token estimate (test/ingest/tokens.test.ts,
 * bench/token-estimate.ts) and for filling generated exports (bench/lib/chatgpt-gen.ts).
 * Everything is derived from a seed, so a failing sample can be reproduced.
 */

/** mulberry32: a small, fast, seeded PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)] as T;
}

const ENGLISH = [
  'The committee met on Tuesday to review the budget for the coming year.',
  'Most of the discussion focused on whether the new warehouse should be leased or bought outright.',
  'She had always believed that a good explanation is worth more than a clever one.',
  "If you can't reproduce the bug, you can't be sure you've fixed it.",
  'Rain fell steadily through the night, and by morning the river had risen above its banks.',
  'The recipe calls for two cups of flour, a pinch of salt, and three eggs beaten until pale.',
  'Please summarize the attached report in no more than five bullet points.',
  'Our quarterly revenue grew by twelve percent, driven mainly by subscriptions in Europe.',
  'He paused, looked out of the window, and said nothing for a long while.',
  'Could you explain why the second approach is faster, even though it does more work?',
  'Photosynthesis converts light energy into chemical energy stored in glucose.',
  'The museum reopened after a two-year renovation that cost nearly forty million dollars.',
  'Remember to back up your files before upgrading the operating system.',
  'I think the argument is persuasive, but the evidence in chapter three is rather thin.',
  'Thanks! That worked perfectly, although I had to restart the server twice.',
  'Internationalization and accessibility requirements were underestimated by the contractors.',
  'Sure. Here is a shorter version of the paragraph, with the jargon removed.',
  'Notwithstanding the aforementioned considerations, the board approved the acquisition unanimously.',
];

const CODE = [
  'export async function loadConfig(path: string): Promise<Config> {',
  '  const raw = await readFile(path, "utf8");',
  '  if (!raw.trim()) throw new Error(`empty config: ${path}`);',
  '  return ConfigSchema.parse(JSON.parse(raw));',
  '}',
  'def fibonacci(n: int) -> list[int]:',
  '    a, b = 0, 1',
  '    out = []',
  '    for _ in range(n):',
  '        out.append(a); a, b = b, a + b',
  '    return out',
  'SELECT u.id, u.email, COUNT(o.id) AS orders FROM users u LEFT JOIN orders o ON o.user_id = u.id GROUP BY u.id;',
  'for f in *.log; do gzip -9 "$f" && mv "$f.gz" archive/; done',
  '<div class="card" data-id="42"><h2>{{ title }}</h2><p>{{ body | truncate(80) }}</p></div>',
  '.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(240px, 1fr)); gap: 1.5rem; }',
  'const re = /^(?:[a-z0-9!#$%&\'*+/=?^_`{|}~-]+)@([a-z0-9-]+\\.)+[a-z]{2,}$/i;',
  '    if (x->next != NULL && x->next->value >= threshold) { x = x->next; continue; }',
  'impl<T: Clone> Stack<T> { fn peek(&self) -> Option<&T> { self.items.last() } }',
  '#include <stdio.h>\nint main(void) { printf("%d\\n", 42); return 0; }',
  '      - name: Install dependencies\n        run: npm ci --no-audit --prefer-offline',
];

const CHINESE = [
  '今天天气很好，我们一起去公园散步吧。',
  '这个问题的关键在于如何设计数据库的索引结构。',
  '请帮我把这段文字翻译成英文，并保持原来的语气。',
  '他说明天早上八点在火车站门口等我们。',
  '机器学习模型的训练需要大量高质量的标注数据。',
  '我觉得这篇文章的论点很有说服力，但是证据不够充分。',
  '北京是中国的首都，也是一座历史悠久的文化名城。',
  '如果服务器在高峰期崩溃，用户就无法完成支付。',
];

const JAPANESE = [
  '東京は日本の首都で、世界でも有数の大都市です。',
  'このコードはなぜ動かないのか、詳しく説明してください。',
  '明日の会議は午後三時から第二会議室で行います。',
  '猫が窓のそばで気持ちよさそうに眠っている。',
  'データベースの移行作業は週末に実施する予定です。',
  'ありがとうございます。とても分かりやすい説明でした。',
];

const KOREAN = [
  '안녕하세요, 오늘 회의는 오후 세 시에 시작합니다.',
  '이 문제를 해결하려면 먼저 로그 파일을 확인해야 합니다.',
  '서울은 한국의 수도이며 인구가 매우 많은 도시입니다.',
  '감사합니다. 설명이 정말 이해하기 쉬웠어요.',
];

const ARABIC = [
  'مرحبا بكم في الاجتماع السنوي للشركة.',
  'هل يمكنك أن تشرح لي كيف تعمل هذه الخوارزمية؟',
  'تقع مدينة القاهرة على ضفاف نهر النيل.',
  'شكرا جزيلا على المساعدة، لقد حل الاقتراح المشكلة.',
  'يجب علينا مراجعة الميزانية قبل نهاية الشهر.',
];

const HEBREW = [
  'שלום, מה שלומך היום?',
  'הפגישה תתקיים מחר בשעה עשר בבוקר.',
  'ירושלים היא עיר עתיקה עם היסטוריה ארוכה.',
  'תודה רבה על העזרה, הפתרון עבד מצוין.',
  'אני צריך לסיים את הדוח עד סוף השבוע.',
];

const GREEK = [
  'Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.',
  'Μπορείτε να μου εξηγήσετε πώς λειτουργεί αυτός ο αλγόριθμος;',
  'Ευχαριστώ πολύ για τη βοήθειά σας.',
  'Η συνάντηση θα γίνει αύριο το πρωί.',
];

const CYRILLIC = [
  'Москва является столицей Российской Федерации.',
  'Пожалуйста, объясните, почему этот код не работает.',
  'Спасибо большое, ваше объяснение было очень понятным.',
  'Завтра утром мы поедем на вокзал встречать друзей.',
  'Київ — столиця України і одне з найстаріших міст Європи.',
  'Їжак знайшов ґудзик біля річки, і всі сміялися.',
  'Београд је главни град Србије, а Ниш је трећи по величини.',
];

const HINDI_THAI = [
  'नमस्ते, आज की बैठक दोपहर तीन बजे शुरू होगी।',
  'कृपया इस अनुच्छेद का सारांश तीन वाक्यों में लिखें।',
  'สวัสดีครับ วันนี้อากาศดีมาก',
  'กรุณาอธิบายว่าโค้ดนี้ทำงานอย่างไร',
];

/**
 * Natural text in scripts and symbols the tokenizers barely merge: more Indic and Southeast Asian
 * scripts, Ethiopic, Korean chat jamo (ㅋㅋ), halfwidth katakana, IPA, arrows and enclosed numbers.
 */
const RARE_SCRIPTS = [
  'నమస్కారం, ఈ రోజు సమావేశం మూడు గంటలకు ప్రారంభమవుతుంది.',
  'ದಯವಿಟ್ಟು ಈ ಪ್ಯಾರಾಗ್ರಾಫ್ ಅನ್ನು ಮೂರು ವಾಕ್ಯಗಳಲ್ಲಿ ಸಂಕ್ಷೇಪಿಸಿ.',
  'અમદાવાદ ગુજરાતનું સૌથી મોટું શહેર છે.',
  'ਕਿਰਪਾ ਕਰਕੇ ਇਸ ਪੈਰੇ ਦਾ ਤਿੰਨ ਵਾਕਾਂ ਵਿੱਚ ਸਾਰ ਦਿਓ।',
  'തിരുവനന്തപുരം കേരളത്തിന്റെ തലസ്ഥാനമാണ്.',
  'කරුණාකර මෙම ඡේදය වාක්‍ය තුනකින් සාරාංශ කරන්න.',
  'ရန်ကုန်သည် မြန်မာနိုင်ငံ၏ အကြီးဆုံးမြို့ ဖြစ်သည်။',
  'ສະບາຍດີ, ກອງປະຊຸມມື້ນີ້ຈະເລີ່ມເວລາສາມໂມງ.',
  'ལྷ་ས་ནི་བོད་ཀྱི་རྒྱལ་ས་ཡིན།',
  'እባክዎን ይህን አንቀጽ በሦስት ዓረፍተ ነገሮች ያጠቃልሉ።',
  'ㅋㅋㅋㅋㅋ 진짜 웃기다 ㅎㅎ ㅠㅠ',
  'ｱﾘｶﾞﾄｳｺﾞｻﾞｲﾏｽ｡',
  'water /ˈwɔːtər/ or /ˈwɑːtɚ/',
  'step 1 → step 2 ⇒ done ✓ ① prepare ② run ③ check ★★★☆☆',
];

const EMOJI = ['😀', '😂', '🚀', '✅', '❤️', '👍🏽', '🎉', '🔥', '🤔', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇫🇷', '🇯🇵', '🧑🏿‍💻', '✨', '🙏', '💡', '📎', '⚠️', '🐍'];

/** Latin text with accents spelled as combining marks (NFD), and "zalgo" stacks. */
const ACCENTED = [
  'Le café de la rue Émile-Zola ouvre à huit heures; crème brûlée et thé à volonté.',
  'Tiếng Việt có nhiều dấu thanh: sắc, huyền, hỏi, ngã, nặng.',
  'Ångström, naïve, façade, coöperate, São Paulo, Kraków, Dvořák, Øresund.',
];

export type SampleKind =
  | 'english' | 'code' | 'json' | 'urls' | 'numbers' | 'chinese' | 'japanese' | 'korean' | 'emoji'
  | 'arabic' | 'hebrew' | 'greek' | 'cyrillic' | 'hindi-thai' | 'combining' | 'zalgo' | 'whitespace'
  | 'hex-ids' | 'base64' | 'chat-mix' | 'rare-scripts';

export const SAMPLE_KINDS: readonly SampleKind[] = [
  'english', 'code', 'json', 'urls', 'numbers', 'chinese', 'japanese', 'korean', 'emoji', 'arabic',
  'hebrew', 'greek', 'cyrillic', 'hindi-thai', 'combining', 'zalgo', 'whitespace', 'hex-ids', 'base64',
  'chat-mix', 'rare-scripts',
];

function sentences(rand: () => number, pool: readonly string[], chars: number, sep: string): string {
  let out = '';
  while (out.length < chars) out += (out ? sep : '') + pick(rand, pool);
  return out;
}

function hex(rand: () => number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(rand() * 16)];
  return s;
}

function uuid(rand: () => number): string {
  const h = hex(rand, 32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

function zalgo(rand: () => number, chars: number): string {
  let s = '';
  while (s.length < chars) {
    s += pick(rand, ['a', 'e', 'o', 'z', 'H', ' ']);
    const marks = 1 + Math.floor(rand() * 6);
    for (let i = 0; i < marks; i++) s += String.fromCharCode(0x300 + Math.floor(rand() * 0x70));
  }
  return s;
}

/** One sample of about `chars` UTF-16 units of the given kind. */
export function sampleText(kind: SampleKind, seed: number, chars = 4000): string {
  const rand = rng(seed);
  switch (kind) {
    case 'english': return sentences(rand, ENGLISH, chars, rand() < 0.5 ? ' ' : '\n\n');
    case 'code': return sentences(rand, CODE, chars, '\n');
    case 'json': {
      const items: unknown[] = [];
      while (JSON.stringify(items).length < chars * 0.8) {
        items.push({ id: uuid(rand), name: pick(rand, ENGLISH).slice(0, 30), count: Math.floor(rand() * 1e6),
          price: Math.round(rand() * 1e4) / 100, tags: ['alpha', 'beta', 'gamma'].slice(0, 1 + Math.floor(rand() * 3)),
          active: rand() < 0.5, created: new Date(1.6e12 + rand() * 1e11).toISOString() });
      }
      return JSON.stringify(items, null, rand() < 0.5 ? 2 : undefined);
    }
    case 'urls': {
      let s = '';
      while (s.length < chars) {
        s += `https://${pick(rand, ['example.com', 'docs.python.org', 'github.com', 'cdn.shop-assets.net'])}/` +
          `${pick(rand, ['api/v2/items', 'en/3/library', 'user/repo/blob/main/src', 'img'])}/${uuid(rand)}` +
          `?page=${Math.floor(rand() * 100)}&sort=${pick(rand, ['asc', 'desc'])}&q=${hex(rand, 6)}#L${Math.floor(rand() * 500)}\n`;
      }
      return s;
    }
    case 'numbers': {
      let s = '';
      while (s.length < chars) {
        const n = rand();
        s += n < 0.3 ? `${Math.floor(rand() * 1e9)} ` : n < 0.6 ? `${(rand() * 1e4).toFixed(3)}, ` :
          n < 0.8 ? `+1-${Math.floor(100 + rand() * 900)}-555-${Math.floor(1000 + rand() * 9000)}\n` : `${Math.floor(rand() * 1e15)}\n`;
      }
      return s;
    }
    case 'chinese': return sentences(rand, CHINESE, chars, '');
    case 'japanese': return sentences(rand, JAPANESE, chars, '');
    case 'korean': return sentences(rand, KOREAN, chars, ' ');
    case 'emoji': {
      let s = '';
      while (s.length < chars) s += rand() < 0.6 ? pick(rand, EMOJI) : rand() < 0.5 ? ' ' : pick(rand, ['ok', 'wow', 'yes!', 'lol']);
      return s;
    }
    case 'arabic': return sentences(rand, ARABIC, chars, ' ');
    case 'hebrew': return sentences(rand, HEBREW, chars, ' ');
    case 'greek': return sentences(rand, GREEK, chars, ' ');
    case 'cyrillic': return sentences(rand, CYRILLIC, chars, ' ');
    case 'hindi-thai': return sentences(rand, HINDI_THAI, chars, ' ');
    case 'rare-scripts': return sentences(rand, RARE_SCRIPTS, chars, ' ');
    case 'combining': return sentences(rand, ACCENTED, chars, ' ').normalize('NFD');
    case 'zalgo': return zalgo(rand, chars);
    case 'whitespace': {
      let s = '';
      while (s.length < chars) {
        s += ' '.repeat(Math.floor(rand() * 40)) + pick(rand, ['x', 'col', '|', '--', '']) +
          pick(rand, ['\n', '\n\n\n\n', '\t\t\t', '\r\n', '   \t ', '\n'.repeat(Math.floor(rand() * 12))]);
      }
      return s;
    }
    case 'hex-ids': {
      let s = '';
      while (s.length < chars) s += rand() < 0.5 ? `${uuid(rand)}\n` : `sha256:${hex(rand, 64)} `;
      return s;
    }
    case 'base64': {
      let s = '';
      while (s.length < chars) s += B64[Math.floor(rand() * 64)];
      return `data:image/png;base64,${s}==`;
    }
    case 'chat-mix': {
      const kinds: SampleKind[] = ['english', 'english', 'english', 'code', 'json', 'urls', 'chinese', 'emoji', 'cyrillic', 'arabic', 'combining'];
      let s = '';
      while (s.length < chars) s += `${pick(rand, ['user', 'assistant'])}: ${sampleText(pick(rand, kinds), Math.floor(rand() * 1e9), 300)}\n\n`;
      return s;
    }
  }
}
