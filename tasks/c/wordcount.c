// The `wordcount` task in C: word frequencies (wasp:wordcount/wordcount)
// and their scatter/reduce over a corpus (wasp:wordcount/corpus).
//
// A word is a maximal run of alphanumeric characters (`iswalnum`, Unicode
// in wasi-libc whatever the locale) or apostrophes, lowercased one code
// point at a time with `towlower`, sorted by word in byte order. The Rust
// task lowercases with full case mapping (`str::to_lowercase`): the two
// agree except for the few characters whose lowercase is several.

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wctype.h>

#include "task.h"

typedef exports_wasp_wordcount_wordcount_word_count_t word_count_t;

static void *checked(void *p) {
  if (p == NULL) {
    fprintf(stderr, "wordcount: out of memory\n");
    abort();
  }
  return p;
}

// Decodes one UTF-8 code point at s[*i] (the host passes valid UTF-8).
static uint32_t decode(const uint8_t *s, size_t len, size_t *i) {
  uint32_t c = s[(*i)++];
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  c &= extra == 3 ? 0x07 : extra == 2 ? 0x0F : extra == 1 ? 0x1F : 0x7F;
  while (extra-- > 0 && *i < len) c = (c << 6) | (s[(*i)++] & 0x3F);
  return c;
}

static size_t encode(uint32_t c, uint8_t *out) {
  if (c < 0x80) { out[0] = (uint8_t)c; return 1; }
  if (c < 0x800) {
    out[0] = (uint8_t)(0xC0 | (c >> 6));
    out[1] = (uint8_t)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (uint8_t)(0xE0 | (c >> 12));
    out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (uint8_t)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (uint8_t)(0xF0 | (c >> 18));
  out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (uint8_t)(0x80 | (c & 0x3F));
  return 4;
}

// A word and its count, pointing into a buffer or an argument.
typedef struct {
  const uint8_t *ptr;
  size_t len;
  uint32_t count;
} entry_t;

typedef struct {
  entry_t *items;
  size_t len, cap;
} entries_t;

static void push(entries_t *e, const uint8_t *ptr, size_t len, uint32_t count) {
  if (e->len == e->cap) {
    e->cap = e->cap ? 2 * e->cap : 64;
    e->items = checked(realloc(e->items, e->cap * sizeof *e->items));
  }
  e->items[e->len++] = (entry_t){ptr, len, count};
}

// Appends the lowercased words of `text` to `buf` (4 bytes per input byte
// suffice) and an entry with count 1 for each; returns the bytes used.
static size_t add_words(entries_t *e, uint8_t *buf, const task_string_t *text) {
  size_t used = 0, i = 0, start = 0;
  int in_word = 0;
  while (i < text->len) {
    uint32_t c = decode(text->ptr, text->len, &i);
    if (iswalnum((wint_t)c) || c == '\'') {
      if (!in_word) start = used;
      in_word = 1;
      used += encode((uint32_t)towlower((wint_t)c), buf + used);
    } else if (in_word) {
      push(e, buf + start, used - start, 1);
      in_word = 0;
    }
  }
  if (in_word) push(e, buf + start, used - start, 1);
  return used;
}

static int by_word(const void *a, const void *b) {
  const entry_t *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
  if (c != 0) return c;
  return (x->len > y->len) - (x->len < y->len);
}

// Sorts the entries by word and sums the counts of equal words (saturating)
// into `ret`, copying the words. Frees the entries, not what they point to.
static void reduce(entries_t *e, exports_wasp_wordcount_wordcount_list_word_count_t *ret) {
  if (e->len > 0) qsort(e->items, e->len, sizeof *e->items, by_word);
  word_count_t *counts = checked(malloc((e->len + 1) * sizeof *counts));
  size_t n = 0;
  for (size_t i = 0; i < e->len; i++) {
    if (i > 0 && by_word(&e->items[i - 1], &e->items[i]) == 0) {
      uint32_t *total = &counts[n - 1].count;
      *total = *total > UINT32_MAX - e->items[i].count ? UINT32_MAX : *total + e->items[i].count;
      continue;
    }
    // The bindings free every word (and the list) after the call returns.
    task_string_dup_n(&counts[n].word, (const char *)e->items[i].ptr, e->items[i].len);
    counts[n].count = e->items[i].count;
    n++;
  }
  free(e->items);
  ret->ptr = counts;
  ret->len = n;
}

void exports_wasp_wordcount_wordcount_count_words(
    task_string_t *text, exports_wasp_wordcount_wordcount_list_word_count_t *ret) {
  entries_t e = {0};
  uint8_t *buf = checked(malloc(text->len * 4 + 1));
  add_words(&e, buf, text);
  reduce(&e, ret);
  free(buf);
  task_string_free(text);
}

void exports_wasp_wordcount_corpus_count_texts(
    task_list_string_t *texts, exports_wasp_wordcount_corpus_list_word_count_t *ret) {
  size_t total = 0;
  for (size_t t = 0; t < texts->len; t++) total += texts->ptr[t].len;
  entries_t e = {0};
  uint8_t *buf = checked(malloc(total * 4 + 1));
  size_t used = 0;
  for (size_t t = 0; t < texts->len; t++) used += add_words(&e, buf + used, &texts->ptr[t]);
  reduce(&e, (exports_wasp_wordcount_wordcount_list_word_count_t *)ret);
  free(buf);
  task_list_string_free(texts);
}

void exports_wasp_wordcount_corpus_merge_counts(
    exports_wasp_wordcount_corpus_list_list_word_count_t *counts,
    exports_wasp_wordcount_corpus_list_word_count_t *ret) {
  entries_t e = {0};
  for (size_t p = 0; p < counts->len; p++) {
    for (size_t w = 0; w < counts->ptr[p].len; w++) {
      word_count_t *item = &counts->ptr[p].ptr[w];
      push(&e, item->word.ptr, item->word.len, item->count);
    }
  }
  reduce(&e, (exports_wasp_wordcount_wordcount_list_word_count_t *)ret);
  exports_wasp_wordcount_corpus_list_list_word_count_free(counts);
}
