//! Problems found in the operator's input, each pointing at a file, line,
//! column and key, with a suggestion where one is likely.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem is: a file, and a position in it when one is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Where {
    pub path: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
}

impl Where {
    pub fn file(path: &Path) -> Where {
        Where { path: path.to_path_buf(), line: None, column: None }
    }
    pub fn at(path: &Path, line: u64, column: u64) -> Where {
        Where { path: path.to_path_buf(), line: Some(line), column: Some(column) }
    }
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        Ok(())
    }
}

/// One thing wrong with the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub at: Where,
    pub key: Option<String>,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn new(at: Where, message: impl Into<String>) -> Problem {
        Problem { at, key: None, message: message.into(), hint: None }
    }

    pub fn key(mut self, key: &str) -> Problem {
        self.key = Some(key.to_string());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Problem {
        self.hint = Some(hint.into());
        self
    }

    /// Adds "did you mean `x`?" when one of `known` is close to `word`.
    pub fn suggest_from(self, word: &str, known: &[&str]) -> Problem {
        match closest(word, known) {
            Some(best) => self.hint(format!("did you mean `{best}`?")),
            None => self,
        }
    }

    pub fn hint_if_none(self, hint: impl Into<String>) -> Problem {
        if self.hint.is_some() { self } else { self.hint(hint) }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  help: {hint}")?;
        }
        Ok(())
    }
}

/// Everything wrong with the input, in the order it was found.
#[derive(Debug, thiserror::Error)]
pub struct InputError(pub Vec<Problem>);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} problems in the input; nothing was done", self.0.len())?;
        }
        Ok(())
    }
}

/// The known word nearest to `word`, if it is near enough to be a typo:
/// at most a third of its letters wrong, and never more than 3.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (distance(&word.to_lowercase(), k), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: Levenshtein plus swapped neighbours,
/// which is the commonest typo (`sever` for `server` is a deletion,
/// `sevrer` a swap).
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1).min(d[i][j - 1] + 1).min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        let known = ["server_flavor", "server_image", "hostname", "domain"];
        assert_eq!(closest("sever_flavor", &known), Some("server_flavor"));
        assert_eq!(closest("server_flavour", &known), Some("server_flavor"));
        assert_eq!(closest("hostnmae", &known), Some("hostname"));
        assert_eq!(closest("Domain", &known), Some("domain"));
        assert_eq!(closest("completely_else", &known), None);
        assert_eq!(closest("x", &known), None);
    }

    #[test]
    fn distance_counts_swaps_as_one() {
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
    }
}
