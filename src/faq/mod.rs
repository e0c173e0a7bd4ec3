//! The FAQ matcher (DESIGN §6, routing step 7): customers ask in their own words — with typos,
//! in another word order, without accents — and the best entry of every FAQ collection answers.
//!
//! Built once at load. Questions become sets of normalized words without stop words; a word
//! weighs its inverse document frequency, so "delivery" counts for more than "please". A
//! customer's word matches an entry's word exactly, by a shared stem (`open`/`opening`), or
//! within a small edit distance; typo candidates come from a trigram index over the
//! vocabulary, and entries from an inverted index, so a question costs its own words, not the
//! collection's size. The score is a weighted Dice coefficient over the two word sets, in
//! 0..=1, so `threshold` means the same in every collection: 1 for the same words, about 0.67
//! when a two-word question shares one word with a one-word entry.

mod words;

use std::collections::HashMap;

use crate::flow::bot::FaqCollection;

pub use words::tokens;

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

/// One phrasing of one entry, as indexed.
#[derive(Debug)]
struct Phrasing {
    collection: usize,
    entry: usize,
    terms: Vec<usize>,
    weight: f64,
}

/// Every collection's phrasings, indexed for matching.
#[derive(Debug, Default)]
pub struct FaqIndex {
    phrasings: Vec<Phrasing>,
    /// Term text → id.
    vocabulary: HashMap<String, usize>,
    terms: Vec<String>,
    idf: Vec<f64>,
    /// Term id → phrasings containing it.
    postings: Vec<Vec<usize>>,
    /// Trigram → terms containing it, for typo candidates.
    trigrams: HashMap<[char; 3], Vec<usize>>,
    /// Indonesian root → terms with it (`kirim`: `pengiriman`, `dikirim`).
    roots: HashMap<String, Vec<usize>>,
    /// The weight of a word no phrasing has: an average word's. Such words keep an
    /// out-of-scope question's score down, without sinking a question with one odd word.
    unknown_idf: f64,
    /// Channels each collection serves (`None`: all).
    channels: Vec<Option<Vec<String>>>,
}

impl FaqIndex {
    /// Indexes every phrasing of every entry.
    #[must_use]
    pub fn build(collections: &[FaqCollection]) -> Self {
        let mut index = Self {
            channels: collections.iter().map(|c| c.channels.clone()).collect(),
            ..Self::default()
        };
        for (c, collection) in collections.iter().enumerate() {
            for (e, entry) in collection.entries.iter().enumerate() {
                for question in &entry.questions {
                    let terms: Vec<usize> = tokens(question)
                        .into_iter()
                        .map(|word| index.term(word))
                        .collect();
                    index.phrasings.push(Phrasing {
                        collection: c,
                        entry: e,
                        terms,
                        weight: 0.0,
                    });
                }
            }
        }
        index.weigh();
        index
    }

    fn term(&mut self, word: String) -> usize {
        if let Some(&id) = self.vocabulary.get(&word) {
            return id;
        }
        let id = self.terms.len();
        for trigram in trigrams(&word) {
            self.trigrams.entry(trigram).or_default().push(id);
        }
        self.roots
            .entry(words::indonesian_stem(&word))
            .or_default()
            .push(id);
        self.vocabulary.insert(word.clone(), id);
        self.terms.push(word);
        self.postings.push(Vec::new());
        id
    }

    /// Document frequencies to weights, and each phrasing's total weight.
    fn weigh(&mut self) {
        let mut df = vec![0_usize; self.terms.len()];
        for (p, phrasing) in self.phrasings.iter_mut().enumerate() {
            phrasing.terms.sort_unstable();
            phrasing.terms.dedup();
            for &term in &phrasing.terms {
                df[term] += 1;
                self.postings[term].push(p);
            }
        }
        #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
        let documents = self.phrasings.len().max(1) as f64;
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
        self.unknown_idf = self.idf.iter().sum::<f64>() / terms;
        for phrasing in &mut self.phrasings {
            phrasing.weight = phrasing.terms.iter().map(|&t| self.idf[t]).sum();
        }
    }

    /// The best entries for `question` on `channel`, best first, at most `limit`, each entry
    /// once (its best phrasing).
    #[must_use]
    pub fn search(&self, question: &str, channel: &str, limit: usize) -> Vec<FaqHit> {
        let words = tokens(question);
        if words.is_empty() {
            return Vec::new();
        }
        let matches: Vec<Vec<(usize, f64)>> = words.iter().map(|w| self.similar(w)).collect();
        // A word weighs what its closest known word weighs; one no entry has, the most.
        let asked: f64 = matches
            .iter()
            .map(|m| {
                m.iter()
                    .max_by(|a, b| a.1.total_cmp(&b.1))
                    .map_or(self.unknown_idf, |&(t, _)| self.idf[t])
            })
            .sum();
        let mut best: HashMap<(usize, usize), f64> = HashMap::new();
        for p in self.candidates(&matches) {
            let phrasing = &self.phrasings[p];
            if !self.serves(phrasing.collection, channel) {
                continue;
            }
            let shared: f64 = matches
                .iter()
                .map(|m| {
                    m.iter()
                        .filter(|(t, _)| phrasing.terms.binary_search(t).is_ok())
                        .map(|&(t, sim)| self.idf[t] * sim)
                        .fold(0.0, f64::max)
                })
                .sum();
            let score = score(shared, asked, phrasing.weight);
            let slot = best
                .entry((phrasing.collection, phrasing.entry))
                .or_default();
            *slot = slot.max(score);
        }
        let mut hits: Vec<FaqHit> = best
            .into_iter()
            .map(|((collection, entry), score)| FaqHit {
                collection,
                entry,
                score,
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

    fn serves(&self, collection: usize, channel: &str) -> bool {
        self.channels[collection]
            .as_ref()
            .is_none_or(|channels| channels.iter().any(|c| c == channel))
    }

    /// Phrasings sharing at least one matched term.
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
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for trigram in trigrams(word) {
            for &term in self.trigrams.get(&trigram).into_iter().flatten() {
                *counts.entry(term).or_default() += 1;
            }
        }
        let mut similar: Vec<(usize, f64)> = counts
            .into_keys()
            .filter_map(|term| {
                words::similarity(word, &self.terms[term]).map(|similarity| (term, similarity))
            })
            .collect();
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

/// Half the weighted Dice coefficient of the two word sets, half how much of the stored
/// phrasing the question covers: a customer's extra words ("on Sundays") lower the score less
/// than missing the phrasing's own words, and the result stays in 0..=1.
fn score(shared: f64, asked: f64, phrasing: f64) -> f64 {
    if phrasing <= 0.0 {
        return 0.0;
    }
    let dice = 2.0 * shared / (asked + phrasing);
    let covered = shared / phrasing;
    (dice + covered).clamp(0.0, 2.0) / 2.0
}

/// The word's character trigrams, padded so short words have some.
fn trigrams(word: &str) -> Vec<[char; 3]> {
    let padded: Vec<char> = std::iter::once(' ')
        .chain(word.chars())
        .chain(std::iter::once(' '))
        .collect();
    padded.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}
