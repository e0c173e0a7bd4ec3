//! The FAQ evaluation (issue 9): the shipped example FAQ (`flows/shop_faq.yaml`) against the
//! questions customers really type. Prints top-1 accuracy, the wrong-answer and false-answer
//! rates and every miss with its top 3 hits, so a change to the matcher shows what it wins and
//! loses; fails below the floors.
//!
//! Two sets: `tests/fixtures/faq_eval.yaml` (159 questions), which the matcher's weights and the
//! FAQ's synonyms were tuned on, held to issue 9's 90 % accuracy with at most 10 % false
//! answers; and `tests/fixtures/faq_holdout.yaml` (60 questions), written before that tuning and
//! never used for it, held to a lower floor: its figures are the honest estimate of how the
//! matcher does on new questions.
//!
//! Run `cargo test --test faq_eval -- --nocapture` to see the report when it passes.

mod common;

use std::path::Path;

use chatflow::faq::{FaqHit, FaqIndex};
use chatflow::flow::Bot;
use chatflow::flow::bot::FaqCollection;
use serde::Deserialize;

/// The collection under evaluation.
const COLLECTION: &str = "shop_faq";
/// Channel the questions arrive on.
const CHANNEL: &str = "simulator";
/// Lowest share of in-scope questions answered with the right entry (issue 9's target).
const MIN_ACCURACY: f64 = 0.90;
/// The same for the hold-out set, which nobody tuned the matcher or the FAQ to.
const MIN_HOLDOUT_ACCURACY: f64 = 0.85;
/// Highest share of out-of-scope questions answered at all.
const MAX_FALSE_ANSWERS: f64 = 0.10;
/// The set must stay this large, so the floors keep their meaning.
const MIN_QUESTIONS: usize = 60;
const MIN_OUT_OF_SCOPE: usize = 15;

/// One question of the evaluation set.
#[derive(Debug, Deserialize)]
struct Case {
    q: String,
    expect: Expect,
}

/// What should answer a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawExpect")]
enum Expect {
    /// This entry of the collection (0-based, in file order).
    Entry(usize),
    /// Nothing: the FAQ must stay silent.
    Nothing,
}

/// `expect` as written: an entry index or the word `none`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawExpect {
    Entry(usize),
    Word(String),
}

impl TryFrom<RawExpect> for Expect {
    type Error = String;

    fn try_from(raw: RawExpect) -> Result<Self, Self::Error> {
        match raw {
            RawExpect::Entry(entry) => Ok(Self::Entry(entry)),
            RawExpect::Word(word) if word == "none" => Ok(Self::Nothing),
            RawExpect::Word(word) => Err(format!("expect is an entry index or none, not {word:?}")),
        }
    }
}

/// What the FAQ did with one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// In scope, answered by the expected entry.
    Right,
    /// In scope, answered by another entry.
    Wrong,
    /// In scope, not answered.
    Silent,
    /// Out of scope, not answered.
    Declined,
    /// Out of scope, answered anyway.
    FalseAnswer,
}

/// The tallies of a run.
#[derive(Debug, Default)]
struct Tally {
    right: usize,
    wrong: usize,
    silent: usize,
    declined: usize,
    false_answers: usize,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Right => self.right += 1,
            Outcome::Wrong => self.wrong += 1,
            Outcome::Silent => self.silent += 1,
            Outcome::Declined => self.declined += 1,
            Outcome::FalseAnswer => self.false_answers += 1,
        }
    }

    fn in_scope(&self) -> usize {
        self.right + self.wrong + self.silent
    }

    fn out_of_scope(&self) -> usize {
        self.declined + self.false_answers
    }

    fn accuracy(&self) -> f64 {
        ratio(self.right, self.in_scope())
    }

    fn wrong_answer_rate(&self) -> f64 {
        ratio(self.wrong, self.in_scope())
    }

    fn false_answer_rate(&self) -> f64 {
        ratio(self.false_answers, self.out_of_scope())
    }
}

/// One question and the hits the matcher found for it.
struct Run<'a> {
    case: &'a Case,
    hits: Vec<FaqHit>,
}

#[test]
fn the_example_faq_answers_what_customers_ask_and_nothing_else() {
    let tally = evaluate("faq_eval.yaml");
    assert!(
        tally.accuracy() >= MIN_ACCURACY && tally.false_answer_rate() <= MAX_FALSE_ANSWERS,
        "below the floor (accuracy ≥ {:.0} %, false answers ≤ {:.0} %); see the report above",
        MIN_ACCURACY * 100.0,
        MAX_FALSE_ANSWERS * 100.0,
    );
}

#[test]
fn questions_nobody_tuned_the_matcher_to_are_answered_about_as_well() {
    let tally = evaluate("faq_holdout.yaml");
    assert!(
        tally.accuracy() >= MIN_HOLDOUT_ACCURACY && tally.false_answer_rate() <= MAX_FALSE_ANSWERS,
        "below the hold-out floor (accuracy ≥ {:.0} %, false answers ≤ {:.0} %); see the report above",
        MIN_HOLDOUT_ACCURACY * 100.0,
        MAX_FALSE_ANSWERS * 100.0,
    );
}

/// Runs the question set `file` (in tests/fixtures/) against the shipped bot, prints the
/// report and returns the tallies.
fn evaluate(file: &str) -> Tally {
    let bot = common::shipped_bot();
    let collection = collection_index(&bot);
    let cases = cases(file, bot.faqs[collection].entries.len());
    let index = FaqIndex::build(&bot.faqs);
    let runs: Vec<Run> = cases
        .iter()
        .map(|case| Run {
            case,
            hits: index.search(&case.q, CHANNEL, 3),
        })
        .collect();
    let eval = Eval {
        faqs: &bot.faqs,
        collection,
    };
    let tally = eval.tally(&runs, None);
    println!("{file}: {}", eval.report(&tally, &runs));
    tally
}

/// Where the evaluated collection is among the bot's FAQs.
fn collection_index(bot: &Bot) -> usize {
    bot.faqs
        .iter()
        .position(|faq| faq.id == COLLECTION)
        .expect("flows/ holds the shop_faq collection")
}

/// A question set, checked against the collection's size and the set's own minimums.
fn cases(file: &str, entries: usize) -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let cases: Vec<Case> =
        serde_yaml::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    for case in &cases {
        if let Expect::Entry(entry) = case.expect {
            assert!(
                entry < entries,
                "{:?} expects entry {entry}; shop_faq has {entries}",
                case.q
            );
        }
    }
    let out_of_scope = cases.iter().filter(|c| c.expect == Expect::Nothing).count();
    assert!(
        cases.len() >= MIN_QUESTIONS && out_of_scope >= MIN_OUT_OF_SCOPE,
        "{file} has {} questions, {out_of_scope} out of scope; keep at least {MIN_QUESTIONS} and {MIN_OUT_OF_SCOPE}",
        cases.len()
    );
    cases
}

/// The collection under evaluation among the bot's FAQs.
struct Eval<'a> {
    faqs: &'a [FaqCollection],
    collection: usize,
}

impl Eval<'_> {
    /// The outcomes of every run, answering at each collection's own threshold or at `at`.
    fn tally(&self, runs: &[Run], at: Option<f64>) -> Tally {
        let mut tally = Tally::default();
        for run in runs {
            tally.add(self.judge(run, at));
        }
        tally
    }

    /// What answering by the top hit did, given what was expected.
    fn judge(&self, run: &Run, at: Option<f64>) -> Outcome {
        // As the bot decides: the top hit answers when it reaches the threshold and leads the
        // next one by the margin.
        let answered = run.hits.first().filter(|top| {
            chatflow::faq::answers(&run.hits, at.unwrap_or(self.faqs[top.collection].threshold))
        });
        match (run.case.expect, answered) {
            (Expect::Nothing, None) => Outcome::Declined,
            (Expect::Nothing, Some(_)) => Outcome::FalseAnswer,
            (Expect::Entry(_), None) => Outcome::Silent,
            (Expect::Entry(entry), Some(top)) if self.is(top, entry) => Outcome::Right,
            (Expect::Entry(_), Some(_)) => Outcome::Wrong,
        }
    }

    /// Whether a hit is this entry of the evaluated collection.
    fn is(&self, hit: &FaqHit, entry: usize) -> bool {
        hit.collection == self.collection && hit.entry == entry
    }

    /// In-scope questions whose expected entry ranks first, whatever its score: what a better
    /// calibrated score could reach without changing the ranking.
    fn ranked_first(&self, runs: &[Run]) -> usize {
        runs.iter()
            .filter(|run| match (run.case.expect, run.hits.first()) {
                (Expect::Entry(entry), Some(top)) => self.is(top, entry),
                _ => false,
            })
            .count()
    }

    /// Unanswered in-scope questions whose expected entry the "did you mean" list would offer.
    fn suggested(&self, runs: &[Run]) -> usize {
        runs.iter()
            .filter(|run| self.judge(run, None) == Outcome::Silent)
            .filter(|run| {
                let Expect::Entry(entry) = run.case.expect else {
                    return false;
                };
                run.hits.iter().any(|hit| {
                    self.is(hit, entry) && hit.score >= self.faqs[hit.collection].suggest_threshold
                })
            })
            .count()
    }

    /// The figures, the same at other thresholds, then every miss.
    fn report(&self, tally: &Tally, runs: &[Run]) -> String {
        let mut text = format!(
            "FAQ evaluation of {COLLECTION}: {} in scope, {} out of scope\n\
             top-1 accuracy   {:5.1} %  ({} right)\n\
             wrong answers    {:5.1} %  ({} wrong, {} not answered)\n\
             false answers    {:5.1} %  ({} of the out-of-scope answered)\n\
             ranked first     {:5.1} %  (the right entry on top, whatever its score)\n\
             suggested        {:>5}    (not answered, but the right entry in the did-you-mean list)\n",
            tally.in_scope(),
            tally.out_of_scope(),
            tally.accuracy() * 100.0,
            tally.right,
            tally.wrong_answer_rate() * 100.0,
            tally.wrong,
            tally.silent,
            tally.false_answer_rate() * 100.0,
            tally.false_answers,
            ratio(self.ranked_first(runs), tally.in_scope()) * 100.0,
            self.suggested(runs),
        );
        text.push_str(&self.sweep(runs));
        let misses: Vec<String> = runs.iter().filter_map(|run| self.miss(run)).collect();
        text.push_str(&format!("misses ({}):\n", misses.len()));
        for miss in misses {
            text.push_str(&format!("  {miss}\n"));
        }
        text
    }

    /// Accuracy and false answers if every collection answered at other thresholds.
    fn sweep(&self, runs: &[Run]) -> String {
        let mut text = String::from("at threshold     accuracy  wrong  false answers\n");
        for step in 6..=12 {
            let at = f64::from(step) * 0.05;
            let tally = self.tally(runs, Some(at));
            text.push_str(&format!(
                "  {at:.2}           {:5.1} %  {:5.1} %  {:5.1} %\n",
                tally.accuracy() * 100.0,
                tally.wrong_answer_rate() * 100.0,
                tally.false_answer_rate() * 100.0,
            ));
        }
        text
    }

    /// A run that went wrong: the question, what was expected, and the top hits with scores.
    fn miss(&self, run: &Run) -> Option<String> {
        let outcome = self.judge(run, None);
        if matches!(outcome, Outcome::Right | Outcome::Declined) {
            return None;
        }
        let expected = match run.case.expect {
            Expect::Entry(entry) => format!("entry {entry}"),
            Expect::Nothing => "none".to_owned(),
        };
        let mut line = format!("{outcome:?}: {:?} (expected {expected})", run.case.q);
        if run.hits.is_empty() {
            line.push_str("\n      no hits");
        }
        for hit in &run.hits {
            let faq = &self.faqs[hit.collection];
            let first = faq.entries[hit.entry]
                .questions
                .first()
                .map_or("", String::as_str);
            line.push_str(&format!(
                "\n      {:.3}  {}[{}] {first:?}",
                hit.score, faq.id, hit.entry
            ));
        }
        Some(line)
    }
}

/// `part / whole`, 0 when there is nothing to divide.
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    #[allow(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    let (part, whole) = (part as f64, whole as f64);
    part / whole
}
