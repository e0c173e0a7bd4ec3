//! The FAQ matcher: time per question on a generated collection of 10,000 entries (three
//! phrasings each over a vocabulary of 5,000 pseudo-words), and on the shipped `shop_faq`; and
//! the time to build the 10,000-entry index.
//!
//! `cargo bench --bench faq`; figures and what each group measures are in BENCHMARKS.md.

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chatflow::diagnostic::Diagnostics;
use chatflow::faq::{FaqIndex, answers, tokens};
use chatflow::flow::bot::FaqCollection;
use chatflow::flow::compile::compile_documents;
use chatflow::flow::loader::parse_document;
use chatflow::flow::{self, LoadOptions};
use criterion::{Criterion, criterion_group, criterion_main};

/// Entries of the generated collection.
const ENTRIES: usize = 10_000;
/// Phrasings per generated entry.
const PHRASINGS: usize = 3;
/// Distinct words the generated phrasings draw from.
const VOCABULARY: usize = 5_000;
/// The channel every question arrives on.
const CHANNEL: &str = "simulator";
/// Hits asked for, as the runtime does for suggestions.
const LIMIT: usize = 3;

/// A small deterministic generator (xorshift64*), so every run indexes the same collection.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (the modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    /// Uniform in 0..1.
    fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss, reason = "53 bits")]
        let unit = (self.next() >> 11) as f64 / (1_u64 << 53) as f64;
        unit
    }
}

/// A pronounceable pseudo-word of 2–4 consonant-vowel syllables, sometimes closed by a
/// consonant: 4–9 letters.
fn pseudo_word(rng: &mut Rng) -> String {
    const CONSONANTS: &[u8] = b"bdfgjklmnprstvz";
    const VOWELS: &[u8] = b"aeiou";
    let mut word = String::new();
    for _ in 0..2 + rng.below(3) {
        word.push(char::from(CONSONANTS[rng.below(CONSONANTS.len())]));
        word.push(char::from(VOWELS[rng.below(VOWELS.len())]));
    }
    if rng.below(3) == 0 {
        word.push(char::from(CONSONANTS[rng.below(CONSONANTS.len())]));
    }
    word
}

/// `count` distinct pseudo-words, none of them in `taken`, each its own token (not a stop word,
/// no suffix the matcher strips).
fn words(rng: &mut Rng, count: usize, taken: &HashSet<String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut words = Vec::with_capacity(count);
    while words.len() < count {
        let word = pseudo_word(rng);
        if !taken.contains(&word) && tokens(&word) == [word.clone()] && seen.insert(word.clone()) {
            words.push(word);
        }
    }
    words
}

/// The generated FAQ file: each phrasing 5–8 distinct words; a word's rank is drawn as
/// `VOCABULARY × u²`, so low ranks are common (the top word is in about 1 % of phrasings) and
/// the postings are skewed as in real text.
fn generated_yaml(vocabulary: &[String]) -> String {
    let mut rng = Rng(0x5EED_FAC0_0000_0001);
    let mut yaml = String::from("faq: generated\nentries:\n");
    for entry in 0..ENTRIES {
        yaml.push_str("  - questions:\n");
        for _ in 0..PHRASINGS {
            let length = 5 + rng.below(4);
            let mut phrasing: Vec<&str> = Vec::with_capacity(length);
            while phrasing.len() < length {
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss,
                    reason = "a rank below VOCABULARY"
                )]
                let rank = (VOCABULARY as f64 * rng.unit().powi(2)) as usize;
                if !phrasing.contains(&vocabulary[rank].as_str()) {
                    phrasing.push(&vocabulary[rank]);
                }
            }
            yaml.push_str(&format!("      - {}\n", phrasing.join(" ")));
        }
        yaml.push_str(&format!("    answer:\n      text: Answer {entry}.\n"));
    }
    yaml
}

/// The generated collection, compiled through the loader as a flow file would be.
fn generated(vocabulary: &[String]) -> Vec<FaqCollection> {
    let text = generated_yaml(vocabulary);
    let mut diagnostics = Diagnostics::default();
    let documents = parse_document(Path::new("generated_faq.yaml"), &text, &mut diagnostics)
        .into_iter()
        .collect();
    assert!(!diagnostics.has_errors(), "{diagnostics}");
    let bot = compile_documents(documents, &LoadOptions::default())
        .unwrap_or_else(|diagnostics| panic!("{diagnostics}"))
        .bot;
    assert_eq!(bot.faqs[0].entries.len(), ENTRIES);
    bot.faqs
}

/// The shipped `shop_faq`, loaded with the rest of `flows/` (an entry has a `goto`).
fn shop() -> Vec<FaqCollection> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let options = LoadOptions {
        flows_dir: root.join("flows"),
        scripts_dir: root.join("scripts"),
        ..LoadOptions::default()
    };
    let bot = flow::load(&options)
        .unwrap_or_else(|problems| panic!("the shipped flows load: {problems}"))
        .bot;
    bot.faqs
        .into_iter()
        .filter(|faq| faq.id == "shop_faq")
        .collect()
}

/// Every token of every phrasing, with how many phrasings hold it.
fn frequencies(collection: &FaqCollection) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for entry in &collection.entries {
        for question in &entry.questions {
            let distinct: HashSet<String> = tokens(question).into_iter().collect();
            for word in distinct {
                *counts.entry(word).or_default() += 1;
            }
        }
    }
    counts
}

/// `phrasing` with its longest word's 2nd and 3rd letters swapped: one edit, and not a word of
/// the collection, so the matcher takes the typo path for it.
fn with_typo(phrasing: &str, known: &HashMap<String, usize>) -> String {
    let longest = phrasing
        .split(' ')
        .max_by_key(|word| word.len())
        .expect("a word");
    let mut letters: Vec<char> = longest.chars().collect();
    letters.swap(1, 2);
    let typo: String = letters.into_iter().collect();
    assert!(!known.contains_key(&typo), "{typo} is a word of the FAQ");
    phrasing.replacen(longest, &typo, 1)
}

/// The six words most phrasings hold, most common first.
fn common_words(known: &HashMap<String, usize>) -> String {
    let mut ranked: Vec<(&String, &usize)> = known.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let top: Vec<&str> = ranked.iter().take(6).map(|(w, _)| w.as_str()).collect();
    top.join(" ")
}

/// The three questions of a collection: a phrasing of `entry` with one typo (checked to answer
/// with that entry), an out-of-scope question (checked not to answer; it may still be offered suggestions), its most common words.
fn questions(
    collections: &[FaqCollection],
    index: &FaqIndex,
    entry: usize,
    out_of_scope: &str,
) -> [(&'static str, String); 3] {
    let collection = &collections[0];
    let known = frequencies(collection);
    let matched = with_typo(&collection.entries[entry].questions[0], &known);
    let hits = index.search(&matched, CHANNEL, LIMIT);
    assert_eq!(
        hits[0].entry, entry,
        "{matched:?} finds its entry: {hits:?}"
    );
    assert!(answers(&hits, collection.threshold), "{matched:?} answers");
    let hits = index.search(out_of_scope, CHANNEL, LIMIT);
    assert!(
        !answers(&hits, collection.threshold),
        "{out_of_scope:?} is out of scope: {hits:?}"
    );
    let common = common_words(&known);
    [
        ("matched", matched),
        ("out_of_scope", out_of_scope.to_owned()),
        ("common", common),
    ]
}

fn search_group(c: &mut Criterion, name: &str, index: &FaqIndex, questions: &[(&str, String)]) {
    let mut group = c.benchmark_group(name);
    group
        .sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (label, question) in questions {
        println!("{name}/{label}: {question:?}");
        group.bench_function(*label, |b| {
            b.iter(|| index.search(black_box(question), CHANNEL, LIMIT));
        });
    }
    group.finish();
}

fn faq(c: &mut Criterion) {
    let mut rng = Rng(0xC0FF_EE00_0000_0001);
    let vocabulary = words(&mut rng, VOCABULARY, &HashSet::new());
    let collections = generated(&vocabulary);
    let index = FaqIndex::build(&collections);
    // Words the collection does not have, from the same letters: their trigrams still find
    // vocabulary words, so the typo path runs for each.
    let taken: HashSet<String> = vocabulary.iter().cloned().collect();
    let unknown = words(&mut Rng(0xBAD_5EED), 6, &taken).join(" ");
    let generated = questions(&collections, &index, ENTRIES / 2, &unknown);
    search_group(c, "faq/search/10k", &index, &generated);

    let mut group = c.benchmark_group("faq/build");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    group.bench_function("10k", |b| b.iter(|| FaqIndex::build(&collections)));
    group.finish();

    let collections = shop();
    let index = FaqIndex::build(&collections);
    let shop = questions(
        &collections,
        &index,
        0,
        "who won the football match last night",
    );
    search_group(c, "faq/search/shop", &index, &shop);
}

criterion_group!(benches, faq);
criterion_main!(benches);
