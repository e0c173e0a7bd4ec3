//! Encodings providers need on the wire: base64 for Basic auth, and ids made safe as one URL
//! path segment. Written once here, not per provider.

use std::fmt::Write as _;

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as Basic auth encodes its credentials.
#[must_use]
pub fn base64(bytes: &[u8]) -> String {
    let mut encoded = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let byte = |index: usize| u32::from(chunk.get(index).copied().unwrap_or(0));
        let group = (byte(0) << 16) | (byte(1) << 8) | byte(2);
        for position in 0..4 {
            if position <= chunk.len() {
                let sextet = (group >> (18 - 6 * position)) & 0x3f;
                encoded.push(char::from(BASE64[sextet as usize]));
            } else {
                encoded.push('=');
            }
        }
    }
    encoded
}

/// `id` percent-encoded as one path segment, so an id from a webhook cannot reach another
/// endpoint; `None` for an empty id or one of dots only, which URL normalisation would turn
/// into a parent path.
#[must_use]
pub fn path_segment(id: &str) -> Option<String> {
    if id.bytes().all(|byte| byte == b'.') {
        return None;
    }
    let mut segment = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            segment.push(char::from(byte));
        } else {
            let _ = write!(segment, "%{byte:02X}");
        }
    }
    Some(segment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn ids_stay_one_segment() {
        assert_eq!(path_segment("ABGG_-TG0-").as_deref(), Some("ABGG_-TG0-"));
        assert_eq!(path_segment("../me?x").as_deref(), Some("..%2Fme%3Fx"));
        assert_eq!(path_segment(".."), None);
        assert_eq!(path_segment(""), None);
    }
}
