//! Words as the FAQ matcher sees them: normalized, without the stop words of the languages bots
//! are written in (English, Indonesian, Spanish), and compared with typo tolerance.

use crate::flow::normalize::normalize;

/// Words that carry no meaning for matching a question: question words, articles, pronouns,
/// auxiliaries and particles, in English, Indonesian and Spanish.
const STOP_WORDS: &[&str] = &[
    // English
    "a",
    "an",
    "the",
    "is",
    "are",
    "am",
    "was",
    "were",
    "be",
    "do",
    "does",
    "did",
    "i",
    "you",
    "we",
    "it",
    "me",
    "my",
    "your",
    "our",
    "to",
    "of",
    "in",
    "on",
    "for",
    "at",
    "by",
    "with",
    "and",
    "or",
    "can",
    "could",
    "would",
    "will",
    "please",
    "pls",
    "what",
    "which",
    "who",
    "how",
    "there",
    "this",
    "that",
    "any",
    "have",
    "has",
    "get",
    "u",
    "ur",
    "im",
    "hi",
    "hello",
    // Light verbs and contractions that ask rather than say what about.
    "make",
    "need",
    "want",
    "know",
    "whats",
    "wheres",
    "hows",
    "dont",
    "cant",
    "isnt",
    // Indonesian
    "apa",
    "apakah",
    "yang",
    "di",
    "ke",
    "dari",
    "dan",
    "atau",
    "saya",
    "aku",
    "kamu",
    "anda",
    "kak",
    "kakak",
    "min",
    "gan",
    "ini",
    "itu",
    "ada",
    "bisa",
    "mau",
    "dong",
    "ya",
    "yah",
    "nih",
    "sih",
    "kah",
    "tolong",
    "mohon",
    "untuk",
    "dengan",
    "nya",
    "gimana",
    "bagaimana",
    "halo",
    "ga",
    "gak",
    "nggak",
    "ngga",
    "engga",
    "gk",
    "kok",
    "aja",
    "saja",
    "deh",
    "kan",
    // Spanish
    "el",
    "la",
    "los",
    "las",
    "un",
    "una",
    "de",
    "del",
    "que",
    "y",
    "o",
    "en",
    "por",
    "para",
    "es",
    "son",
    "mi",
    "tu",
    "su",
    "se",
    "como",
    "hola",
];

/// Chat abbreviations and spellings, to the word the FAQ would use.
const SPELLINGS: &[(&str, &str)] = &[
    ("brp", "berapa"),
    ("jm", "jam"),
    ("dmn", "mana"),
    ("dimana", "mana"),
    ("gmn", "gimana"),
    ("sampe", "sampai"),
    ("dateng", "datang"),
    ("pake", "pakai"),
    ("gabisa", "bisa"),
    ("blm", "belum"),
    ("tdk", "tidak"),
    ("bs", "bisa"),
    ("hrs", "hours"),
    ("thx", "thanks"),
    ("sy", "saya"),
    ("udh", "sudah"),
    ("udah", "sudah"),
    ("telpon", "telepon"),
    ("yg", "yang"),
    ("utk", "untuk"),
    ("kalo", "kalau"),
];

/// Indonesian possessive and emphasis endings (`pesanannya`, `ongkirnya`, `tokoku`).
const SUFFIXES: &[&str] = &["nya", "ku", "mu", "lah", "kah"];

/// The question's meaningful words, normalized (case, accents, punctuation folded), with chat
/// spellings mapped and Indonesian endings dropped.
#[must_use]
pub fn tokens(text: &str) -> Vec<String> {
    normalize(text)
        .split(|c: char| !c.is_alphanumeric())
        .map(canonical)
        .filter(|word| !word.is_empty() && !STOP_WORDS.contains(&word.as_str()))
        .collect()
}

/// The words of an answer the matcher searches: its tokens, without bare numbers (prices and
/// times in an answer say nothing about which question it answers).
#[must_use]
pub fn answer_tokens(text: &str) -> Vec<String> {
    tokens(text)
        .into_iter()
        .filter(|word| !word.chars().all(|c| c.is_ascii_digit()))
        .collect()
}

/// The text a customer reads in an answer in DSL form (texts, bodies, captions, headers,
/// footers, titles and descriptions of buttons and rows), one piece per line; ids, links and
/// settings are left out.
#[must_use]
pub fn answer_text(answer: &serde_json::Value) -> String {
    const VISIBLE: &[&str] = &[
        "text",
        "body",
        "caption",
        "header",
        "footer",
        "title",
        "description",
        "address",
    ];
    let mut pieces = Vec::new();
    let mut pending = vec![answer];
    while let Some(value) = pending.pop() {
        match value {
            serde_json::Value::Object(object) => {
                for (key, value) in object {
                    match value {
                        serde_json::Value::String(text) if VISIBLE.contains(&key.as_str()) => {
                            pieces.push(text.as_str());
                        }
                        _ => pending.push(value),
                    }
                }
            }
            serde_json::Value::Array(items) => pending.extend(items),
            _ => {}
        }
    }
    pieces.join("\n")
}

/// One word as the index keeps it.
fn canonical(word: &str) -> String {
    if let Some(&(_, spelled)) = SPELLINGS.iter().find(|(short, _)| *short == word) {
        return spelled.to_owned();
    }
    SUFFIXES
        .iter()
        .find_map(|suffix| {
            word.strip_suffix(suffix)
                .filter(|stem| stem.chars().count() >= 4)
        })
        .unwrap_or(word)
        .to_owned()
}

/// How alike a customer's word and a vocabulary word are: 1.0 the same; 0.85 sharing a stem
/// (one starts with the other, both at least 4 letters: `open`/`opening`); 0.8 one edit apart
/// (words of 4+ letters); 0.65 two edits apart (7+ letters); otherwise not alike.
#[must_use]
pub fn similarity(word: &str, term: &str) -> Option<f64> {
    if word == term {
        return Some(1.0);
    }
    let (shorter, longer) = if word.len() <= term.len() {
        (word, term)
    } else {
        (term, word)
    };
    let short_len = shorter.chars().count();
    if short_len >= 4 && longer.starts_with(shorter) {
        return Some(0.85);
    }
    let distance = strsim::damerau_levenshtein(word, term);
    match (distance, short_len) {
        (1, 4..) => Some(0.8),
        (2, 7..) => Some(0.65),
        _ => None,
    }
}

/// An Indonesian word's root, roughly: `pengiriman` → `kirim`, `pembayaran` → `bayar`,
/// `dikembalikan` → `kembali`. Only used to relate a word the vocabulary lacks to one it has.
#[must_use]
pub fn indonesian_stem(word: &str) -> String {
    let mut stem = word.to_owned();
    for suffix in ["kan", "an", "i"] {
        if let Some(rest) = stem.strip_suffix(suffix)
            && rest.chars().count() >= 4
        {
            stem = rest.to_owned();
            break;
        }
    }
    // Prefix and the letter its nasal replaced: peng-irim → kirim, pem-bayar → bayar.
    for (prefix, restore) in [
        ("peng", "k"),
        ("meng", "k"),
        ("pem", ""),
        ("mem", ""),
        ("pen", "t"),
        ("men", "t"),
        ("di", ""),
        ("ber", ""),
        ("ter", ""),
        ("ke", ""),
    ] {
        if let Some(rest) = stem.strip_prefix(prefix)
            && rest.chars().count() >= 4
        {
            let vowel = rest.starts_with(['a', 'e', 'i', 'o', 'u']);
            return if vowel && !restore.is_empty() {
                format!("{restore}{rest}")
            } else {
                rest.to_owned()
            };
        }
    }
    stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_go_and_accents_fold() {
        assert_eq!(tokens("What are your opening HOURS?"), ["opening", "hours"]);
        assert_eq!(
            tokens("Jam berapa toko-nya buka, kak?"),
            ["jam", "berapa", "toko", "buka"]
        );
        assert_eq!(tokens("¿Cuál es el envío?"), ["cual", "envio"]);
    }

    #[test]
    fn an_answer_shows_its_texts_and_titles_not_its_ids_or_links() {
        let answer = serde_json::json!([
            {"text": "We take Visa"},
            {"buttons": {"body": "Pay now?", "buttons": [{"id": "pay_ovo", "title": "OVO"}]}},
            {"image": {"url": "https://example.com/qris.png", "caption": "Scan QRIS"}},
        ]);
        let text = answer_text(&answer);
        for shown in ["We take Visa", "Pay now?", "OVO", "Scan QRIS"] {
            assert!(text.contains(shown), "{shown} in {text:?}");
        }
        for hidden in ["pay_ovo", "example.com"] {
            assert!(!text.contains(hidden), "{hidden} in {text:?}");
        }
        assert_eq!(answer_tokens("Open 11:00–22:00, 7 days"), ["open", "days"]);
    }

    #[test]
    fn indonesian_words_meet_at_their_root() {
        for (word, root) in [
            ("pengiriman", "kirim"),
            ("dikirim", "kirim"),
            ("pembayaran", "bayar"),
            ("dikembalikan", "kembali"),
            ("pengembalian", "kembali"),
            ("dibungkus", "bungkus"),
        ] {
            assert_eq!(indonesian_stem(word), root, "{word}");
        }
    }

    #[test]
    fn typos_and_stems_are_alike_but_short_words_must_match() {
        assert_eq!(similarity("open", "opening"), Some(0.85));
        assert_eq!(similarity("delivry", "delivery"), Some(0.8));
        assert_eq!(similarity("deliveyr", "delivery"), Some(0.8));
        assert_eq!(similarity("dleivry", "delivery"), Some(0.65));
        assert_eq!(similarity("cod", "cot"), None);
        assert_eq!(
            similarity("hours", "house"),
            None,
            "two edits in a short word"
        );
    }
}
