//! Percent-encoding of one URL component (a query key or value, a path segment).

/// Encodes everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - _ . ~`), each byte
/// of the UTF-8 form as `%XX` with upper-case hex digits.
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_pass_the_rest_is_escaped() {
        assert_eq!(encode("aZ0-_.~"), "aZ0-_.~");
        assert_eq!(
            encode("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        assert_eq!(encode("{\"a\":[1]} x"), "%7B%22a%22%3A%5B1%5D%7D%20x");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(encode(""), "");
    }
}
