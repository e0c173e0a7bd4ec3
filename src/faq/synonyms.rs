//! Synonyms an FAQ file declares (`synonyms: [[fee, charge, cost], [cs, customer service]]`):
//! words and phrases customers use for the same thing, read as the group's first member in
//! questions, phrasings and answers alike.

use std::collections::HashMap;

use super::words::tokens;

/// The longest phrase, in words, a synonym may have.
const LONGEST_PHRASE: usize = 4;

/// Word sequences to the word the index keeps for their group.
#[derive(Debug, Default)]
pub struct Synonyms {
    canonical: HashMap<Vec<String>, String>,
    longest: usize,
}

impl Synonyms {
    /// The groups of every collection; a member of two groups keeps the first.
    #[must_use]
    pub fn new<'a>(groups: impl IntoIterator<Item = &'a [String]>) -> Self {
        let mut synonyms = Self::default();
        for group in groups {
            let mut members = group.iter().map(|member| tokens(member));
            let Some(first) = members.next().filter(|first| !first.is_empty()) else {
                continue;
            };
            let canonical = first.join(" ");
            for member in std::iter::once(first).chain(members) {
                if member.is_empty() || member.len() > LONGEST_PHRASE {
                    continue;
                }
                synonyms.longest = synonyms.longest.max(member.len());
                synonyms
                    .canonical
                    .entry(member)
                    .or_insert_with(|| canonical.clone());
            }
        }
        synonyms
    }

    /// Each one-word member other than its group's word, with that word: customers misspell
    /// synonyms too, so the index finds them by their own spelling.
    pub fn aliases(&self) -> impl Iterator<Item = (&str, &str)> {
        self.canonical
            .iter()
            .filter_map(|(member, canonical)| match member.as_slice() {
                [word] if word != canonical => Some((word.as_str(), canonical.as_str())),
                _ => None,
            })
    }

    /// `words` with every synonym, longest phrase first, replaced by its group's word.
    #[must_use]
    pub fn apply(&self, words: Vec<String>) -> Vec<String> {
        if self.canonical.is_empty() {
            return words;
        }
        let mut out = Vec::with_capacity(words.len());
        let mut at = 0;
        while at < words.len() {
            let longest = self.longest.min(words.len() - at);
            let found = (1..=longest).rev().find_map(|len| {
                self.canonical
                    .get(&words[at..at + len])
                    .map(|canonical| (len, canonical))
            });
            match found {
                Some((len, canonical)) => {
                    out.push(canonical.clone());
                    at += len;
                }
                None => {
                    out.push(words[at].clone());
                    at += 1;
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(members: &[&str]) -> Vec<String> {
        members.iter().map(|m| (*m).to_owned()).collect()
    }

    #[test]
    fn words_and_phrases_become_their_groups_first_member() {
        let groups = [
            group(&["fee", "charge", "cost"]),
            group(&["cs", "customer service", "customer care"]),
        ];
        let synonyms = Synonyms::new(groups.iter().map(Vec::as_slice));
        let words = |text| synonyms.apply(tokens(text));
        assert_eq!(words("what is the delivery charge"), ["delivery", "fee"]);
        assert_eq!(words("Customer Service number"), ["cs", "number"]);
        assert_eq!(words("customer number"), ["customer", "number"]);
    }
}
