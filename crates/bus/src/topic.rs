//! AMQP topic matching for the in-process bus: the same rules a RabbitMQ topic exchange
//! applies, so bindings behave alike on both implementations.
//!
//! A routing key and a pattern are words separated by `.` (the empty string has no words).
//! In a pattern `*` matches exactly one word and `#` matches zero or more words.

/// A binding pattern split into words once, matched against many routing keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    words: Vec<String>,
}

impl Pattern {
    /// Parses a pattern; every string is a valid pattern.
    pub(crate) fn new(pattern: &str) -> Self {
        Self {
            words: words(pattern).map(str::to_owned).collect(),
        }
    }

    /// Whether a message with this routing key is routed through this binding.
    pub(crate) fn matches(&self, routing_key: &str) -> bool {
        let key: Vec<&str> = words(routing_key).collect();
        // `reachable[j]`: the pattern words seen so far can match the first `j` key words.
        // One pass per pattern word keeps this O(pattern × key) however many `#` there are.
        let mut reachable = vec![false; key.len() + 1];
        reachable[0] = true;
        for word in &self.words {
            let mut next = vec![false; key.len() + 1];
            if word == "#" {
                let mut seen = false;
                for (j, slot) in next.iter_mut().enumerate() {
                    seen |= reachable[j];
                    *slot = seen;
                }
            } else {
                for (j, key_word) in key.iter().enumerate() {
                    next[j + 1] = reachable[j] && (word == "*" || word == key_word);
                }
            }
            reachable = next;
        }
        reachable[key.len()]
    }
}

/// The words of a key or pattern; RabbitMQ treats the empty string as no words at all.
fn words(s: &str) -> impl Iterator<Item = &str> {
    (!s.is_empty()).then(|| s.split('.')).into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::Pattern;

    fn matches(pattern: &str, key: &str) -> bool {
        Pattern::new(pattern).matches(key)
    }

    #[test]
    fn literal_words_match_only_themselves() {
        assert!(matches("filetransfer.published", "filetransfer.published"));
        assert!(!matches("filetransfer.published", "filetransfer.purged"));
        assert!(!matches("filetransfer.published", "filetransfer"));
        assert!(!matches("filetransfer", "filetransfer.published"));
    }

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(matches("filetransfer.*", "filetransfer.published"));
        assert!(matches("*.published", "filetransfer.published"));
        assert!(!matches("filetransfer.*", "filetransfer"));
        assert!(!matches("filetransfer.*", "filetransfer.a.b"));
        assert!(matches("*", "a"));
        assert!(!matches("*", ""));
        assert!(matches("a.*.c", "a..c"));
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        assert!(matches("#", ""));
        assert!(matches("#", "a"));
        assert!(matches("#", "a.b.c"));
        assert!(matches("audit.#", "audit"));
        assert!(matches("audit.#", "audit.a.b"));
        assert!(!matches("audit.#", "auditing.a"));
        assert!(matches("#.published", "published"));
        assert!(matches("#.published", "a.b.published"));
        assert!(!matches("#.published", "a.published.b"));
        assert!(matches("a.#.z", "a.z"));
        assert!(matches("a.#.z", "a.b.c.z"));
        assert!(!matches("a.#.z", "a.b.c"));
    }

    #[test]
    fn wildcards_combine() {
        assert!(matches("#.*", "a"));
        assert!(!matches("#.*", ""));
        assert!(matches("*.#.*", "a.b"));
        assert!(!matches("*.#.*", "a"));
        assert!(matches("#.#", ""));
        assert!(matches("a.#.#.b", "a.x.y.b"));
        assert!(matches("#.b.#", "a.b.c"));
        assert!(!matches("#.b.#", "a.c"));
    }

    #[test]
    fn empty_pattern_matches_only_the_empty_key() {
        assert!(matches("", ""));
        assert!(!matches("", "a"));
    }
}
