//! Conditional requests on versioned entities, as Altinn's Resource Registry evaluates them
//! (`RequestConditionCollection`, RFC 9110 §13.1): `If-Match` and `If-None-Match` name versions
//! (or `*`), `If-Unmodified-Since` counts only without `If-Match` and `If-Modified-Since` only
//! without `If-None-Match`. A read whose `If-None-Match` or `If-Modified-Since` fails is "not
//! modified" (304); any other failure is "precondition failed" (412).
//!
//! Evaluating a condition only decides the answer; the write itself stays a compare-and-set on
//! the version it read, so a condition never weakens optimistic concurrency.

/// The versions a tag header names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tags {
    /// `*`.
    Any,
    /// These versions.
    Versions(Vec<i64>),
}

impl Tags {
    fn match_(&self, entity: Option<Entity>) -> bool {
        match (self, entity) {
            (_, None) => false,
            (Self::Any, Some(_)) => true,
            (Self::Versions(versions), Some(entity)) => versions.contains(&entity.version),
        }
    }
}

/// What the entity is now, for the conditions to compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entity {
    /// Its version.
    pub version: i64,
    /// When it last changed, Unix seconds.
    pub updated_at: i64,
}

impl Entity {
    fn modified_since(self, since: i64) -> bool {
        self.updated_at > since
    }
}

/// How a request's conditions judge the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Go on.
    Proceed,
    /// A read of an entity the client has already: 304.
    NotModified,
    /// 412.
    Failed,
}

/// The conditions of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `If-Match`.
    pub if_match: Option<Tags>,
    /// `If-None-Match`.
    pub if_none_match: Option<Tags>,
    /// `If-Modified-Since`, Unix seconds.
    pub if_modified_since: Option<i64>,
    /// `If-Unmodified-Since`, Unix seconds.
    pub if_unmodified_since: Option<i64>,
    /// Whether the request reads (GET).
    pub read: bool,
}

impl Conditions {
    /// Whether the request sets any condition.
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }

    /// The outcome for `entity` (`None`: it does not exist).
    pub fn evaluate(&self, entity: Option<Entity>) -> Outcome {
        let failed = |ok: bool, otherwise: Outcome| if ok { Outcome::Proceed } else { otherwise };
        let unmodified = if self.read {
            Outcome::NotModified
        } else {
            Outcome::Failed
        };
        let modified_since = |since| entity.is_some_and(|entity| entity.modified_since(since));
        let mut outcomes = Vec::with_capacity(2);
        match (&self.if_match, self.if_unmodified_since) {
            (Some(tags), _) => outcomes.push(failed(tags.match_(entity), Outcome::Failed)),
            (None, Some(since)) => outcomes.push(failed(!modified_since(since), Outcome::Failed)),
            (None, None) => {}
        }
        match (&self.if_none_match, self.if_modified_since) {
            (Some(tags), _) => outcomes.push(failed(!tags.match_(entity), unmodified)),
            (None, Some(since)) => outcomes.push(failed(modified_since(since), unmodified)),
            (None, None) => {}
        }
        outcomes.into_iter().max().unwrap_or(Outcome::Proceed)
    }

    /// Whether an upsert may create the entity: the conditions hold for one that does not exist
    /// (`If-Match` never does; `If-None-Match: *` does).
    pub fn allow_create(&self) -> bool {
        self.evaluate(None) == Outcome::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Entity = Entity {
        version: 5,
        updated_at: 1000,
    };

    fn conditions(read: bool) -> Conditions {
        Conditions {
            read,
            ..Conditions::default()
        }
    }

    /// Mirrors `EtagHeadersTests` (`Works_With_Matching_ETag`, `Returns_Mismatch_When_ETag_Is_Up_To_Date`,
    /// `Returns_PreconditionFailed_When_Etag_Is_Old`).
    #[test]
    fn tags_match_the_current_version() {
        for read in [true, false] {
            let matching = Conditions {
                if_match: Some(Tags::Versions(vec![4, 5])),
                ..conditions(read)
            };
            assert_eq!(matching.evaluate(Some(NOW)), Outcome::Proceed);
            let old = Conditions {
                if_match: Some(Tags::Versions(vec![4])),
                ..conditions(read)
            };
            assert_eq!(old.evaluate(Some(NOW)), Outcome::Failed);
        }
        let none_match = |read| Conditions {
            if_none_match: Some(Tags::Versions(vec![5])),
            ..conditions(read)
        };
        assert_eq!(none_match(true).evaluate(Some(NOW)), Outcome::NotModified);
        assert_eq!(none_match(false).evaluate(Some(NOW)), Outcome::Failed);
    }

    /// Mirrors `Works_With_UnmodifiedSince`, `Returns_Mismatch_When_ModifiedSince_Is_Up_To_Date`
    /// and `Returns_PreconditionFailed_When_ModifiedSince_Is_Old`.
    #[test]
    fn dates_compare_with_the_last_change() {
        let unmodified = |since| Conditions {
            if_unmodified_since: Some(since),
            ..conditions(false)
        };
        assert_eq!(unmodified(1000).evaluate(Some(NOW)), Outcome::Proceed);
        assert_eq!(unmodified(999).evaluate(Some(NOW)), Outcome::Failed);
        let modified = |since, read| Conditions {
            if_modified_since: Some(since),
            ..conditions(read)
        };
        assert_eq!(
            modified(1000, true).evaluate(Some(NOW)),
            Outcome::NotModified
        );
        assert_eq!(modified(1000, false).evaluate(Some(NOW)), Outcome::Failed);
        assert_eq!(modified(999, true).evaluate(Some(NOW)), Outcome::Proceed);
    }

    /// `If-Unmodified-Since` counts only without `If-Match`, as Altinn's binder reads them.
    #[test]
    fn tags_take_precedence_over_dates() {
        let both = Conditions {
            if_match: Some(Tags::Versions(vec![5])),
            if_unmodified_since: Some(1),
            ..conditions(false)
        };
        assert_eq!(both.evaluate(Some(NOW)), Outcome::Proceed);
    }

    /// Mirrors `Can_Require_Existing_List`, `Can_Require_New_List` and
    /// `AllowsCreatingNewEntity`.
    #[test]
    fn wildcards_require_existence_or_absence() {
        let exists = Conditions {
            if_match: Some(Tags::Any),
            ..conditions(false)
        };
        assert!(!exists.allow_create());
        assert_eq!(exists.evaluate(Some(NOW)), Outcome::Proceed);
        let new = Conditions {
            if_none_match: Some(Tags::Any),
            ..conditions(false)
        };
        assert!(new.allow_create());
        assert_eq!(new.evaluate(Some(NOW)), Outcome::Failed);
        assert!(Conditions::default().allow_create());
        assert!(Conditions::default().is_empty());
    }
}
