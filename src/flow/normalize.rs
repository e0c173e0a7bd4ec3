//! Text normalization for matching: what a user typed and what an author wrote compare equal when
//! they differ only in case, accents, spacing, or punctuation and emoji at the edges.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds case and accents, collapses whitespace and trims non-alphanumerics from both ends.
///
/// `"  ¡Órder   PIZZA!! 🍕"` becomes `"order pizza"`.
#[must_use]
pub fn normalize(text: &str) -> String {
    let folded: String = text
        .nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.trim_matches(|c: char| !c.is_alphanumeric()).to_owned()
}

/// True when `c` continues a word, so `contains` matches stop at word boundaries.
#[must_use]
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_spacing_and_edges() {
        assert_eq!(normalize("  ¡Órder   PIZZA!! 🍕"), "order pizza");
        assert_eq!(normalize("Café\tcrème"), "cafe creme");
        assert_eq!(normalize("MENU"), "menu");
        assert_eq!(normalize("👋 hi 👋"), "hi");
    }

    #[test]
    fn keeps_inner_punctuation() {
        assert_eq!(normalize("Order-pizza, now?"), "order-pizza, now");
    }

    #[test]
    fn empty_and_symbol_only_texts_normalize_to_nothing() {
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("!!! 🍕"), "");
    }

    #[test]
    fn fullwidth_and_compatibility_forms_fold() {
        assert_eq!(normalize("ＰＩＺＺＡ"), "pizza");
    }
}
