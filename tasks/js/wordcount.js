// The `wordcount` task in JavaScript: word frequencies
// (wasp:wordcount/wordcount) and their scatter/reduce over a corpus
// (wasp:wordcount/corpus).
//
// A word is a maximal run of word characters, lowercased with
// `toLowerCase`, sorted by word in UTF-8 byte order (which is code point
// order, not JavaScript's default UTF-16 order). The Rust task's word
// characters are Unicode letters and numbers (`char::is_alphanumeric`) and
// the apostrophe; componentize-js's SpiderMonkey is built without ICU, so
// `\p{L}` in a regular expression is a SyntaxError there. This task takes
// ASCII digits, the apostrophe and every cased letter (one whose lowercase
// and uppercase differ): the same as Rust for Latin, Greek and Cyrillic
// text, not for uncased scripts (CJK, Arabic, ...) or non-ASCII digits.

function isWordChar(c) {
  return (c >= "0" && c <= "9") || c === "'" || c.toLowerCase() !== c.toUpperCase();
}

function* words(text) {
  let word = "";
  for (const c of text) {
    if (isWordChar(c)) {
      word += c;
    } else if (word) {
      yield word.toLowerCase();
      word = "";
    }
  }
  if (word) yield word.toLowerCase();
}

function byCodePoint(a, b) {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

const U32_MAX = 2 ** 32 - 1;

function add(counts, word, count) {
  counts.set(word, Math.min((counts.get(word) ?? 0) + count, U32_MAX));
}

function intoList(counts) {
  return [...counts.keys()]
    .sort(byCodePoint)
    .map((word) => ({ word, count: counts.get(word) }));
}

export const wordcount = {
  countWords(text) {
    return corpus.countTexts([text]);
  },
};

export const corpus = {
  countTexts(texts) {
    const counts = new Map();
    for (const text of texts) {
      for (const word of words(text)) add(counts, word, 1);
    }
    return intoList(counts);
  },

  mergeCounts(parts) {
    const counts = new Map();
    for (const part of parts) {
      for (const { word, count } of part) add(counts, word, count);
    }
    return intoList(counts);
  },
};
