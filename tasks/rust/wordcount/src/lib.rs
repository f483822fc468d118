//! The `wordcount` task: word frequencies of a text.
//!
//! A word is a maximal run of characters that are alphanumeric
//! (`char::is_alphanumeric`) or an apostrophe, lowercased with
//! `str::to_lowercase`. The result is sorted by word in byte order, which is
//! `String`'s order and so `BTreeMap`'s.

wasp_guest::wit_bindgen::generate!({
    // The repository's wit/ first (it defines wasp:task), then our own.
    path: ["../../../wit", "wit"],
    world: "wasp:wordcount/task",
    runtime_path: "wasp_guest::wit_bindgen::rt",
    with: {
        "wasp:task/identity@0.1.0": wasp_guest::bindings::wasp::task::identity,
        "wasp:task/log@0.1.0": wasp_guest::bindings::wasp::task::log,
    },
});

use std::collections::BTreeMap;

use exports::wasp::wordcount::wordcount::{Guest, WordCount};

struct Wordcount;

impl Guest for Wordcount {
    fn count_words(text: String) -> Vec<WordCount> {
        into_list(count_words(&text))
    }
}

impl exports::wasp::wordcount::corpus::Guest for Wordcount {
    fn count_texts(texts: Vec<String>) -> Vec<WordCount> {
        let mut counts = BTreeMap::new();
        for text in &texts {
            add_words(&mut counts, text);
        }
        into_list(counts)
    }

    fn merge_counts(parts: Vec<Vec<WordCount>>) -> Vec<WordCount> {
        let mut counts = BTreeMap::new();
        for WordCount { word, count } in parts.into_iter().flatten() {
            let total: &mut u32 = counts.entry(word).or_insert(0);
            *total = total.saturating_add(count);
        }
        into_list(counts)
    }
}

export!(Wordcount);

fn count_words(text: &str) -> BTreeMap<String, u32> {
    let mut counts = BTreeMap::new();
    add_words(&mut counts, text);
    counts
}

fn add_words(counts: &mut BTreeMap<String, u32>, text: &str) {
    let words = text
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|word| !word.is_empty());
    for word in words {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
}

fn into_list(counts: BTreeMap<String, u32>) -> Vec<WordCount> {
    counts
        .into_iter()
        .map(|(word, count)| WordCount { word, count })
        .collect()
}
