//! The FAQ matcher (DESIGN §6, routing step 7): customers ask in their own words — with typos,
//! in another word order, without accents — and the best entry of every FAQ collection answers.
//!
//! Built once at load. Questions become sets of normalized words without stop words; a word
//! weighs its inverse document frequency, so "delivery" counts for more than "please". A
//! customer's word matches an entry's word exactly, by a shared stem (`open`/`opening`), or
//! within a small edit distance; typo candidates come from a trigram index over the
//! vocabulary, and entries from an inverted index, so a question costs its own words, not the
//! collection's size. Synonyms the FAQ files declare are read as their group's first word
//! (typos of them too), and an unknown word made of two known ones (`giftwrap`) is split.
//!
//! An entry is judged on two sides, each a weighted share in 0..=1, so `threshold` means the
//! same in every collection:
//! - how much of the *question* the entry explains: each of the customer's words counts with
//!   its best match among all the entry's phrasings, or — weaker — among the words of its
//!   answer (a customer asking "do you take OVO" is answered by the entry whose answer lists
//!   OVO);
//! - how much of the entry's closest *phrasing* the question expresses.
//!
//! The score is their mean: a customer's extra words ("on Sundays") lower it less than missing
//! what the phrasing asks about.

mod synonyms;
mod words;

use std::collections::HashMap;
use std::ops::Range;

use crate::flow::bot::FaqCollection;

use synonyms::Synonyms;

pub use words::{answer_text, tokens};

/// One entry found for a question.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaqHit {
    /// Index of the collection in the bot's FAQs.
    pub collection: usize,
    /// Index of the entry in its collection.
    pub entry: usize,
    /// How well it matches, 0..=1.
    pub score: f64,
}

/// How alike two words with the same Indonesian root are (`pengiriman`, `kirim`).
const ROOT_SIMILARITY: f64 = 0.85;

/// How much a word found only in an entry's answer explains, against one in its questions.
const ANSWER_WEIGHT: f64 = 0.8;

/// The weight of a word no entry has, against an average word's: a little more, since a word
/// the FAQ never uses is usually what the question is about ("pepperoni", "parking").
const UNKNOWN_WEIGHT: f64 = 1.2;

/// How far the best entry must lead the next one to answer alone; closer, the customer
/// chooses from the suggestions.
pub const MARGIN: f64 = 0.1;

/// Whether the best of `hits` (best first) answers: it reaches `threshold` and leads the next
/// entry by at least [`MARGIN`].
#[must_use]
pub fn answers(hits: &[FaqHit], threshold: f64) -> bool {
    match hits {
        [best, next, ..] => best.score >= threshold && best.score - next.score >= MARGIN,
        [best] => best.score >= threshold,
        [] => false,
    }
}

/// One entry, as indexed.
#[derive(Debug)]
struct Entry {
    collection: usize,
    entry: usize,
    /// Its phrasings in [`FaqIndex::phrasings`].
    phrasings: Range<usize>,
    /// The words of its answer, sorted.
    answer: Vec<usize>,
}

/// One phrasing of one entry, as indexed.
#[derive(Debug)]
struct Phrasing {
    /// Its entry in [`FaqIndex::entries`].
    entry: usize,
    /// Its words, sorted.
    terms: Vec<usize>,
    /// The sum of its words' weights.
    weight: f64,
}

/// Every collection's entries, indexed for matching.
#[derive(Debug, Default)]
pub struct FaqIndex {
    entries: Vec<Entry>,
    phrasings: Vec<Phrasing>,
    /// Term text → id.
    vocabulary: HashMap<String, usize>,
    terms: Vec<String>,
    idf: Vec<f64>,
    /// Term id → entries with it in a phrasing or the answer.
    postings: Vec<Vec<usize>>,
    /// Spellings a term is found by: its own, and its synonyms' (`discount` for `promo`).
    forms: Vec<(String, usize)>,
    /// Trigram → forms containing it, for typo candidates.
    trigrams: HashMap<[char; 3], Vec<usize>>,
    /// Indonesian root → terms with it (`kirim`: `pengiriman`, `dikirim`).
    roots: HashMap<String, Vec<usize>>,
    /// The weight of a word no entry has. Such words keep an out-of-scope question's score
    /// down, without sinking a question with one odd word.
    unknown_idf: f64,
    /// Channels each collection serves (`None`: all).
    channels: Vec<Option<Vec<String>>>,
    /// Per term, whether some phrasing has it (else only answers do).
    asked_about: Vec<bool>,
    /// Every collection's synonyms.
    synonyms: Synonyms,
}

impl FaqIndex {
    /// Indexes every phrasing and answer of every entry.
    #[must_use]
    pub fn build(collections: &[FaqCollection]) -> Self {
        let mut index = Self {
            channels: collections.iter().map(|c| c.channels.clone()).collect(),
            synonyms: Synonyms::new(
                collections
                    .iter()
                    .flat_map(|c| c.synonyms.iter().map(Vec::as_slice)),
            ),
            ..Self::default()
        };
        for (c, collection) in collections.iter().enumerate() {
            for (e, entry) in collection.entries.iter().enumerate() {
                let id = index.entries.len();
                let first = index.phrasings.len();
                for question in &entry.questions {
                    let terms = index.terms_of(index.words(question));
                    index.phrasings.push(Phrasing {
                        entry: id,
                        terms,
                        weight: 0.0,
                    });
                }
                let answer = index.terms_of(
                    index
                        .synonyms
                        .apply(words::answer_tokens(&entry.answer_text)),
                );
                index.entries.push(Entry {
                    collection: c,
                    entry: e,
                    phrasings: first..index.phrasings.len(),
                    answer,
                });
            }
        }
        index.add_aliases();
        index.weigh();
        index
    }

    /// The words of `text` as the index keeps them: tokens, synonyms read as their group's.
    fn words(&self, text: &str) -> Vec<String> {
        self.synonyms.apply(tokens(text))
    }

    /// The ids of `words`, sorted and each once.
    fn terms_of(&mut self, words: Vec<String>) -> Vec<usize> {
        let mut terms: Vec<usize> = words.into_iter().map(|word| self.term(word)).collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    fn term(&mut self, word: String) -> usize {
        if let Some(&id) = self.vocabulary.get(&word) {
            return id;
        }
        let id = self.terms.len();
        self.add_form(word.clone(), id);
        self.roots
            .entry(words::indonesian_stem(&word))
            .or_default()
            .push(id);
        self.vocabulary.insert(word.clone(), id);
        self.terms.push(word);
        id
    }

    /// Lets `term` be found by a typo of `spelling`.
    fn add_form(&mut self, spelling: String, term: usize) {
        let form = self.forms.len();
        for trigram in trigrams(&spelling) {
            self.trigrams.entry(trigram).or_default().push(form);
        }
        self.forms.push((spelling, term));
    }

    /// Makes each synonym a spelling of its group's term, once the terms are known.
    fn add_aliases(&mut self) {
        let aliases: Vec<(String, usize)> = self
            .synonyms
            .aliases()
            .filter_map(|(alias, canonical)| {
                let term = *self.vocabulary.get(canonical)?;
                Some((alias.to_owned(), term))
            })
            .collect();
        for (alias, term) in aliases {
            self.add_form(alias, term);
        }
    }

    /// Document frequencies (phrasings and answers are the documents) to weights, the
    /// postings, and each phrasing's total weight.
    fn weigh(&mut self) {
        let mut df = vec![0_usize; self.terms.len()];
        let mut postings = vec![Vec::new(); self.terms.len()];
        self.asked_about = vec![false; self.terms.len()];
        for phrasing in &self.phrasings {
            for &term in &phrasing.terms {
                self.asked_about[term] = true;
                df[term] += 1;
                postings[term].push(phrasing.entry);
            }
        }
        for (id, entry) in self.entries.iter().enumerate() {
            for &term in &entry.answer {
                df[term] += 1;
                postings[term].push(id);
            }
        }
        for list in &mut postings {
            list.dedup();
        }
        self.postings = postings;
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let documents = (self.phrasings.len() + self.entries.len()).max(1) as f64;
        self.idf = df
            .iter()
            .map(|&count| {
                #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
                let count = count as f64;
                (1.0 + documents / count.max(1.0)).ln()
            })
            .collect();
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let terms = self.idf.len().max(1) as f64;
        self.unknown_idf = UNKNOWN_WEIGHT * self.idf.iter().sum::<f64>() / terms;
        for phrasing in &mut self.phrasings {
            phrasing.weight = phrasing.terms.iter().map(|&t| self.idf[t]).sum();
        }
    }

    /// The best entries for `question` on `channel`, best first, at most `limit`.
    #[must_use]
    pub fn search(&self, question: &str, channel: &str, limit: usize) -> Vec<FaqHit> {
        let words = self.split_compounds(self.words(question));
        if words.is_empty() {
            return Vec::new();
        }
        let question = Question::new(self, &words);
        let mut hits: Vec<FaqHit> = self
            .candidates(&question.matches)
            .into_iter()
            .map(|id| &self.entries[id])
            .filter(|entry| self.serves(entry.collection, channel))
            .map(|entry| FaqHit {
                collection: entry.collection,
                entry: entry.entry,
                score: self.score(&question, entry),
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.collection.cmp(&b.collection))
                .then(a.entry.cmp(&b.entry))
        });
        hits.truncate(limit);
        hits
    }

    /// How well `entry` answers `question`, 0..=1 (see the module documentation).
    fn score(&self, question: &Question, entry: &Entry) -> f64 {
        let explained: f64 = question
            .matches
            .iter()
            .zip(&question.weights)
            .zip(&question.asked_about)
            .map(|((matches, weight), &asked_about)| {
                let in_questions = self.phrasings[entry.phrasings.clone()]
                    .iter()
                    .map(|p| best_similarity(matches, &p.terms))
                    .fold(0.0, f64::max);
                // Answers speak only for words no phrasing asks about, so an answer mentioning
                // "cash" doesn't compete with the entry asking about cash.
                let in_answer = if asked_about {
                    0.0
                } else {
                    ANSWER_WEIGHT * best_similarity(matches, &entry.answer)
                };
                weight * in_questions.max(in_answer)
            })
            .sum();
        let expressed = self.phrasings[entry.phrasings.clone()]
            .iter()
            .map(|phrasing| self.expressed(question, phrasing))
            .fold(0.0, f64::max);
        (explained / question.weight + expressed) / 2.0
    }

    /// The share of `phrasing`'s weight the question's words match.
    fn expressed(&self, question: &Question, phrasing: &Phrasing) -> f64 {
        if phrasing.weight <= 0.0 {
            return 0.0;
        }
        let shared: f64 = question
            .matches
            .iter()
            .map(|matches| {
                matches
                    .iter()
                    .filter(|(t, _)| phrasing.terms.binary_search(t).is_ok())
                    .map(|&(t, similarity)| self.idf[t] * similarity)
                    .fold(0.0, f64::max)
            })
            .sum();
        (shared / phrasing.weight).min(1.0)
    }

    /// `words` with each unknown one written as two known words (`giftwrap`, `ongkoskirim`)
    /// split in two.
    fn split_compounds(&self, words: Vec<String>) -> Vec<String> {
        let mut out = Vec::with_capacity(words.len());
        for word in words {
            match self.compound(&word) {
                Some((first, second)) => out.extend([first.to_owned(), second.to_owned()]),
                None => out.push(word),
            }
        }
        out
    }

    /// An unknown word's two known halves of at least 3 letters each.
    fn compound<'w>(&self, word: &'w str) -> Option<(&'w str, &'w str)> {
        if self.vocabulary.contains_key(word) {
            return None;
        }
        word.char_indices()
            .map(|(at, _)| word.split_at(at))
            .filter(|(first, second)| first.chars().count() >= 3 && second.chars().count() >= 3)
            .find(|(first, second)| {
                self.vocabulary.contains_key(*first) && self.vocabulary.contains_key(*second)
            })
    }

    fn serves(&self, collection: usize, channel: &str) -> bool {
        self.channels[collection]
            .as_ref()
            .is_none_or(|channels| channels.iter().any(|c| c == channel))
    }

    /// Entries sharing at least one matched term.
    fn candidates(&self, matches: &[Vec<(usize, f64)>]) -> Vec<usize> {
        let mut found: Vec<usize> = matches
            .iter()
            .flatten()
            .flat_map(|&(term, _)| self.postings[term].iter().copied())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    /// Vocabulary terms like `word`, with their similarity: itself 1.0; a shared stem or one or
    /// two edits (by length) less.
    fn similar(&self, word: &str) -> Vec<(usize, f64)> {
        // A known word is itself; looking further would match `open` with `oven`.
        if let Some(&exact) = self.vocabulary.get(word) {
            return vec![(exact, 1.0)];
        }
        let mut forms: Vec<usize> = trigrams(word)
            .iter()
            .flat_map(|trigram| self.trigrams.get(trigram).into_iter().flatten().copied())
            .collect();
        forms.sort_unstable();
        forms.dedup();
        let mut similar: Vec<(usize, f64)> = Vec::new();
        for form in forms {
            let (spelling, term) = &self.forms[form];
            let Some(similarity) = words::similarity(word, spelling) else {
                continue;
            };
            match similar.iter_mut().find(|(t, _)| t == term) {
                Some(found) => found.1 = found.1.max(similarity),
                None => similar.push((*term, similarity)),
            }
        }
        for &term in self
            .roots
            .get(&words::indonesian_stem(word))
            .into_iter()
            .flatten()
        {
            if !similar.iter().any(|&(t, _)| t == term) {
                similar.push((term, ROOT_SIMILARITY));
            }
        }
        similar
    }
}

/// A customer's question: each word's matching terms and its weight.
struct Question {
    /// Per word, the vocabulary terms like it with their similarity.
    matches: Vec<Vec<(usize, f64)>>,
    /// Per word, the weight of its closest term, or of an unknown word.
    weights: Vec<f64>,
    /// Per word, whether some phrasing asks about a term like it.
    asked_about: Vec<bool>,
    /// The sum of `weights`.
    weight: f64,
}

impl Question {
    fn new(index: &FaqIndex, words: &[String]) -> Self {
        let matches: Vec<Vec<(usize, f64)>> = words.iter().map(|w| index.similar(w)).collect();
        let weights: Vec<f64> = matches
            .iter()
            .map(|m| {
                m.iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(index.unknown_idf, |&(t, _)| index.idf[t])
            })
            .collect();
        let asked_about = matches
            .iter()
            .map(|m| m.iter().any(|&(t, _)| index.asked_about[t]))
            .collect();
        let weight = weights.iter().sum();
        Self {
            matches,
            weights,
            asked_about,
            weight,
        }
    }
}

/// The highest similarity of a matched term found in `terms` (sorted), 0 when none is.
fn best_similarity(matches: &[(usize, f64)], terms: &[usize]) -> f64 {
    matches
        .iter()
        .filter(|(t, _)| terms.binary_search(t).is_ok())
        .map(|&(_, similarity)| similarity)
        .fold(0.0, f64::max)
}

/// The word's character trigrams, padded so short words have some.
fn trigrams(word: &str) -> Vec<[char; 3]> {
    let padded: Vec<char> = std::iter::once(' ')
        .chain(word.chars())
        .chain(std::iter::once(' '))
        .collect();
    padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}
