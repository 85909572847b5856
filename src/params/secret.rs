//! A string that must never be printed, logged or serialised by accident:
//! secrecy's `SecretString` (zeroed when dropped, redacted in `Debug`),
//! with the comparisons and the `***` display this tool's types need.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(SecretString::from(s.into()))
    }
    /// For the OpenStack SDK, which takes secrecy's type itself.
    pub fn to_secret_string(&self) -> SecretString {
        self.0.clone()
    }
    /// The only way to the text. Call it where the secret is sent, nowhere else.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// Parameters compare whole (a re-run sees whether a password changed).
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_shows_only_stars_and_compares_by_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s} {s:?}"), "*** Secret(***)");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, Secret::new("hunter2"));
        assert_ne!(s, Secret::new("hunter3"));
    }
}
