"""The `wordcount` task in Python: word frequencies (wasp:wordcount/wordcount)
and their scatter/reduce over a corpus (wasp:wordcount/corpus).

A word is a maximal run of alphanumeric characters (`str.isalnum`) or
apostrophes, lowercased with `str.lower`, sorted by word: code point order,
which is the byte order of UTF-8 that the Rust task sorts by.
"""

from collections import Counter
from typing import List

from wit_world import exports
from wit_world.exports.wordcount import WordCount


def words(text: str):
    word: List[str] = []
    for c in text:
        if c.isalnum() or c == "'":
            word.append(c)
        elif word:
            yield "".join(word).lower()
            word = []
    if word:
        yield "".join(word).lower()


U32_MAX = 2**32 - 1


def into_list(counts: Counter) -> List[WordCount]:
    return [WordCount(word, min(count, U32_MAX)) for word, count in sorted(counts.items())]


class Wordcount(exports.Wordcount):
    def count_words(self, text: str) -> List[WordCount]:
        return into_list(Counter(words(text)))


class Corpus(exports.Corpus):
    def count_texts(self, texts: List[str]) -> List[WordCount]:
        counts: Counter = Counter()
        for text in texts:
            counts.update(words(text))
        return into_list(counts)

    def merge_counts(self, counts: List[List[WordCount]]) -> List[WordCount]:
        total: Counter = Counter()
        for part in counts:
            for item in part:
                total[item.word] += item.count
        return into_list(total)
