//! Errors as one line of text, for logs and API messages.

use std::error::Error;

/// The message followed by each cause in the `source()` chain, `: `-separated; a cause whose
/// text already ends the line (a message made with `format!("...: {e}")`) is not repeated.
pub fn cause_chain(e: &(dyn Error + 'static)) -> String {
    let mut line = e.to_string();
    let mut cur = e.source();
    while let Some(cause) = cur {
        let text = cause.to_string();
        if !line.ends_with(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cur = cause.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt;

    #[derive(Debug)]
    struct Outer(std::io::Error, bool);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            if self.1 {
                write!(f, "open config: {}", self.0)
            } else {
                write!(f, "open config")
            }
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn causes_are_joined_once() {
        let gone = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(
            cause_chain(&Outer(gone(), false)),
            "open config: no such file"
        );
        assert_eq!(
            cause_chain(&Outer(gone(), true)),
            "open config: no such file"
        );
    }
}
