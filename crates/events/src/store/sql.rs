//! The SQL of [`EventStore`](super::EventStore), written once and instantiated for each database
//! by [`event_store_impl!`]. Every statement is plain SQL valid on both PostgreSQL and SQLite,
//! except where the [`Dialect`] completes it: the claims' lock clause (PostgreSQL locks and
//! skips the rows it claims; SQLite has a single writer and needs no lock) and the pull's type
//! patterns (PostgreSQL's case-sensitive `LIKE`, which SQLite only has as `GLOB`). Statements
//! with a list of values are built with one `$n` placeholder per value, never with the values.

use std::fmt::Display;

use chrono::{DateTime, Utc};

use super::{Delivery, DeliveryState, Outcome, PendingValidation, StoreError};
use crate::domain::cloud_event::CloudEvent;
use crate::domain::subscription::{Subscription, SubscriptionRequest};

/// Taken first by every append; see the migration.
pub(super) const TAKE_APPEND_TURN: &str =
    "UPDATE append_turn SET appends = appends + 1 WHERE id = 1";
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (id, resource, subject, payload, appended, event_type, traceparent)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
pub(super) const SELECT_EVENT: &str = "SELECT payload FROM events WHERE id = $1";
/// The SQL dialect a store speaks, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// PostgreSQL: row locks, and `LIKE` as Altinn's `getevents` uses it.
    Postgres,
    /// SQLite: one writer, and `GLOB` for a case-sensitive pattern.
    Sqlite,
}

/// A page of a resource's events after the one with id `$2` (an unknown id starts at the
/// beginning), with subject `$3` when not '', at most `$4`, of a type matching one of `types`
/// patterns (`$5`…, each as [`type_pattern`] writes it) when there are any.
pub(super) fn pull(dialect: Dialect, types: usize) -> String {
    let operator = match dialect {
        Dialect::Postgres => "LIKE",
        Dialect::Sqlite => "GLOB",
    };
    let types = if types == 0 {
        String::new()
    } else {
        let any: Vec<String> = (5..5 + types)
            .map(|n| format!("event_type {operator} ${n}"))
            .collect();
        format!("AND ({})", any.join(" OR "))
    };
    format!(
        "SELECT payload FROM events
         WHERE resource = $1
           AND seq > COALESCE((SELECT seq FROM events WHERE id = $2), 0)
           AND ($3 = '' OR subject = $3)
           {types}
         ORDER BY seq LIMIT $4"
    )
}

/// A pattern of PostgreSQL's `LIKE` (`%` any text, `_` any one character, `\` making the next
/// character literal, a trailing one literal itself) written for `dialect`: for PostgreSQL
/// with every literal escaped, for SQLite as the `GLOB` pattern that matches the same strings.
pub(super) fn type_pattern(dialect: Dialect, pattern: &str) -> String {
    let mut written = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        let literal = match c {
            '%' | '_' => {
                written.push(match (dialect, c) {
                    (Dialect::Postgres, c) => c,
                    (Dialect::Sqlite, '%') => '*',
                    (Dialect::Sqlite, _) => '?',
                });
                continue;
            }
            '\\' => chars.next().unwrap_or('\\'),
            c => c,
        };
        match (dialect, literal) {
            (Dialect::Postgres, '%' | '_' | '\\') => {
                written.push('\\');
                written.push(literal);
            }
            (Dialect::Sqlite, '*' | '?' | '[') => {
                written.push('[');
                written.push(literal);
                written.push(']');
            }
            _ => written.push(literal),
        }
    }
    written
}

const SUBSCRIPTION_COLUMNS: &str = "id, end_point, resource_filter, subject_filter,
       source_filter, type_filter, include_subunits, consumer, consumer_org, created_by, created,
       validated";
/// The first handshake is due when the subscription is created.
pub(super) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (end_point,
       resource_filter, subject_filter, source_filter, type_filter, include_subunits, consumer,
       created_by, created, validated, signing_secret, validation_attempts, next_validation,
       consumer_org)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE, $10, 0, $9, $11) RETURNING id";
/// Altinn's `find_subscription`: `$1` endpoint, `$2` resource, `$3`–`$5` subject, source and
/// type filters (NULL matching NULL), `$6` subunits, `$7` consumer, `$8` whether signed.
pub(super) fn find_subscription() -> String {
    select_subscriptions(
        "end_point = $1 AND resource_filter = $2
         AND (($3 IS NULL AND subject_filter IS NULL) OR subject_filter = $3)
         AND (($4 IS NULL AND source_filter IS NULL) OR source_filter = $4)
         AND (($5 IS NULL AND type_filter IS NULL) OR type_filter = $5)
         AND include_subunits = $6 AND consumer = $7
         AND (signing_secret IS NOT NULL) = $8",
    )
}
/// Makes `$1`'s handshake due at `$2` with fresh attempts.
pub(super) const REARM_VALIDATION: &str =
    "UPDATE subscriptions SET validation_attempts = 0, next_validation = $2 WHERE id = $1";
pub(super) fn select_subscriptions(filter: &str) -> String {
    format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE {filter} ORDER BY id")
}
pub(super) const DELETE_SUBSCRIPTION_DELIVERIES: &str =
    "DELETE FROM deliveries WHERE subscription_id = $1";
pub(super) const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = $1";
pub(super) const MARK_VALIDATED: &str =
    "UPDATE subscriptions SET validated = TRUE, next_validation = NULL WHERE id = $1";
/// PostgreSQL's clause that locks the rows a claim reads and skips rows other claims hold;
/// SQLite has a single writer and needs none.
fn lock_clause(dialect: Dialect, table: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("FOR UPDATE OF {table} SKIP LOCKED"),
        Dialect::Sqlite => String::new(),
    }
}
/// Claims due handshakes by moving their due time to the lease's end.
pub(super) fn claim_validations(dialect: Dialect) -> String {
    let lock = lock_clause(dialect, "subscriptions");
    format!(
        "UPDATE subscriptions SET next_validation = $3 WHERE id IN (
           SELECT id FROM subscriptions
           WHERE next_validation IS NOT NULL AND next_validation <= $1
           ORDER BY next_validation, id LIMIT $2 {lock}) RETURNING id"
    )
}
/// The claimed subscriptions with their attempts so far.
pub(super) fn select_pending_validations(count: usize) -> String {
    format!(
        "SELECT {SUBSCRIPTION_COLUMNS}, validation_attempts FROM subscriptions
         WHERE id IN ({}) ORDER BY id",
        placeholders(1, count)
    )
}
/// `$2` whether it passed (a failure leaves a validated subscription validated), `$3` the next
/// handshake (NULL for none).
pub(super) const RECORD_VALIDATION: &str = "UPDATE subscriptions SET validated = (validated OR $2),
       validation_attempts = validation_attempts + 1, next_validation = $3
     WHERE id = $1";

/// Queues event `$1` for subscription `$2` unless the subscription was deleted since ingest
/// read it, which would otherwise fail the whole batch on the foreign key.
pub(super) const ENQUEUE: &str = "INSERT INTO deliveries (event_id, subscription_id, state,
       attempts, next_attempt, updated)
     SELECT $1, id, 'pending', 0, $3, $3 FROM subscriptions WHERE id = $2
     ON CONFLICT (event_id, subscription_id) DO NOTHING";
/// Claims and leases in one statement: of the first `$2` due rows, at most `$4` per endpoint,
/// leaving out `excluded` endpoints (`$5`…). The window function ranks candidates that the
/// innermost select has already locked, as PostgreSQL allows no row lock beside a window.
pub(super) fn claim_due(dialect: Dialect, excluded: usize) -> String {
    let exclusion = if excluded == 0 {
        String::new()
    } else {
        format!("AND s.end_point NOT IN ({})", placeholders(5, excluded))
    };
    let lock = lock_clause(dialect, "d");
    format!(
        "UPDATE deliveries SET claimed_until = $3 WHERE id IN (
           SELECT id FROM (
             SELECT id, ROW_NUMBER() OVER (
                      PARTITION BY end_point ORDER BY next_attempt, id) AS place
             FROM (
               SELECT d.id, d.next_attempt, s.end_point
               FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id
               WHERE d.state = 'pending' AND d.next_attempt <= $1
                 AND (d.claimed_until IS NULL OR d.claimed_until <= $1)
                 {exclusion}
               ORDER BY d.next_attempt, d.id LIMIT $2 {lock}
             ) candidates
           ) ranked
           WHERE place <= $4) RETURNING id"
    )
}
/// `$first`, `$first+1`, … `count` of them, comma-separated.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}
/// Deliveries with their event, endpoint and secret, selected by `filter`.
fn select_deliveries(filter: &str) -> String {
    format!(
        "SELECT d.id, d.subscription_id, s.end_point, e.payload, d.attempts, d.state,
                d.last_error, d.updated, s.signing_secret, e.traceparent
         FROM deliveries d
         JOIN events e ON e.id = d.event_id
         JOIN subscriptions s ON s.id = d.subscription_id
         WHERE {filter}"
    )
}
/// The deliveries with these `count` ids.
pub(super) fn select_claimed(count: usize) -> String {
    select_deliveries(&format!(
        "d.id IN ({}) ORDER BY d.id",
        placeholders(1, count)
    ))
}
/// Dead letters after `$1`, at most `$2`.
pub(super) fn select_dead() -> String {
    select_deliveries("d.state = 'dead' AND d.id > $1 ORDER BY d.id LIMIT $2")
}
/// `$2` the new state, `$3` the next attempt (kept when NULL), `$4` the error, `$5` now, `$6`
/// the recorder's lease.
pub(super) const RECORD: &str = "UPDATE deliveries SET state = $2,
       next_attempt = COALESCE($3, next_attempt), last_error = $4, updated = $5,
       attempts = attempts + 1, claimed_until = NULL
     WHERE id = $1 AND state = 'pending' AND claimed_until = $6";
/// Served by the partial index of due rows, so counting stays cheap.
pub(super) const COUNT_PENDING: &str = "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'";
pub(super) const RELEASE: &str = "UPDATE deliveries SET claimed_until = NULL
     WHERE id = $1 AND state = 'pending' AND claimed_until = $2";
pub(super) const REDRIVE: &str = "UPDATE deliveries SET state = 'pending', attempts = 0,
       next_attempt = $2, claimed_until = NULL, updated = $2
     WHERE id = $1 AND state = 'dead'";
pub(super) const REDRIVE_ALL: &str = "UPDATE deliveries SET state = 'pending', attempts = 0,
       next_attempt = $1, claimed_until = NULL, updated = $1
     WHERE state = 'dead'";

/// The stored state, next attempt (none keeps it) and error of an outcome.
pub(super) fn outcome_columns(outcome: &Outcome) -> (DeliveryState, Option<i64>, Option<&str>) {
    match outcome {
        Outcome::Delivered => (DeliveryState::Delivered, None, None),
        Outcome::Retry {
            next_attempt,
            error,
        } => (
            DeliveryState::Pending,
            Some(millis(*next_attempt)),
            Some(error.as_str()),
        ),
        Outcome::DeadLetter { error } => (DeliveryState::Dead, None, Some(error.as_str())),
    }
}

/// A stored value that must parse, or the row is corrupt.
pub(super) fn stored<T, E: Display>(what: &str, result: Result<T, E>) -> Result<T, StoreError> {
    result.map_err(|error| StoreError::Corrupt(format!("{what}: {error}")))
}

/// Unix milliseconds, as every time is stored.
pub(super) fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

fn time(what: &str, millis: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| StoreError::Corrupt(format!("{what}: {millis} is out of range")))
}

/// The event as stored.
pub(super) fn event_json(event: &CloudEvent) -> Result<String, StoreError> {
    stored("encoding an event", serde_json::to_string(event))
}

/// A stored event.
pub(super) fn event_from(payload: &str) -> Result<CloudEvent, StoreError> {
    stored("event payload", serde_json::from_str(payload))
}

pub(super) type SubscriptionRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    String,
    String,
    String,
    i64,
    bool,
);

pub(super) fn subscription_from(row: SubscriptionRow) -> Result<Subscription, StoreError> {
    let (
        id,
        end_point,
        resource_filter,
        subject_filter,
        source_filter,
        type_filter,
        include_subunits,
        consumer,
        consumer_org,
        created_by,
        created,
        validated,
    ) = row;
    Ok(Subscription {
        id,
        request: SubscriptionRequest {
            end_point,
            resource_filter,
            subject_filter,
            source_filter,
            type_filter,
            include_subunits,
        },
        consumer,
        consumer_org,
        created_by,
        created: time("subscription created", created)?,
        validated,
    })
}

pub(super) type PendingValidationRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    String,
    String,
    String,
    i64,
    bool,
    i64,
);

pub(super) fn pending_validation_from(
    row: PendingValidationRow,
) -> Result<PendingValidation, StoreError> {
    let (a, b, c, d, e, f, g, h, i, j, k, l, attempts) = row;
    Ok(PendingValidation {
        subscription: subscription_from((a, b, c, d, e, f, g, h, i, j, k, l))?,
        attempts: stored("validation attempts", u32::try_from(attempts))?,
    })
}

pub(super) type DeliveryRow = (
    i64,
    i64,
    String,
    String,
    i64,
    String,
    Option<String>,
    i64,
    Option<String>,
    Option<String>,
);

pub(super) fn delivery_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
    let (
        id,
        subscription_id,
        end_point,
        payload,
        attempts,
        state,
        last_error,
        updated,
        secret,
        traceparent,
    ) = row;
    Ok(Delivery {
        id,
        subscription_id,
        end_point,
        event: event_from(&payload)?,
        attempts: stored("delivery attempts", u32::try_from(attempts))?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?,
        last_error,
        updated: time("delivery updated", updated)?,
        signing_secret: secret.map(crate::delivery::signing::SigningSecret::new),
        traceparent,
    })
}

/// The whole [`EventStore`](super::EventStore) for a store type with `pool` and `writes` fields.
macro_rules! event_store_impl {
    ($store:ty, $dialect:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::EventStore for $store {
            async fn append(
                &self,
                events: &[$crate::store::NewEvent],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::store::Appended, $crate::store::StoreError> {
                use $crate::store::{Appended, sql};
                let rows = events
                    .iter()
                    .map(|new| sql::event_json(&new.event))
                    .collect::<Result<Vec<_>, _>>()?;
                let at = sql::millis(at);
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(sql::TAKE_APPEND_TURN).execute(&mut *tx).await?;
                let mut appended = Appended::default();
                for (new, payload) in events.iter().zip(&rows) {
                    let event = &new.event;
                    let id = event.id.to_string();
                    let done = sqlx::query(sql::INSERT_EVENT)
                        .bind(&id)
                        .bind(&event.resource)
                        .bind(&event.subject)
                        .bind(payload)
                        .bind(at)
                        .bind(&event.event_type)
                        .bind(&new.traceparent)
                        .execute(&mut *tx)
                        .await?;
                    appended.events += usize::from(done.rows_affected() == 1);
                    for subscription in &new.subscriptions {
                        let done = sqlx::query(sql::ENQUEUE)
                            .bind(&id)
                            .bind(subscription)
                            .bind(at)
                            .execute(&mut *tx)
                            .await?;
                        appended.deliveries += usize::from(done.rows_affected() == 1);
                    }
                }
                tx.commit().await?;
                Ok(appended)
            }

            async fn event(
                &self,
                id: uuid::Uuid,
            ) -> Result<Option<$crate::domain::cloud_event::CloudEvent>, $crate::store::StoreError>
            {
                let payload: Option<(String,)> =
                    sqlx::query_as($crate::store::sql::SELECT_EVENT)
                        .bind(id.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                payload
                    .map(|(payload,)| $crate::store::sql::event_from(&payload))
                    .transpose()
            }

            async fn pull(
                &self,
                query: &$crate::store::PullQuery,
            ) -> Result<Vec<$crate::domain::cloud_event::CloudEvent>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let statement = sql::pull($dialect, query.types.len());
                let mut select = sqlx::query_as(sqlx::AssertSqlSafe(statement))
                    .bind(&query.resource)
                    .bind(&query.after)
                    .bind(query.subject.as_deref().unwrap_or_default())
                    .bind(i64::from(query.size));
                for pattern in &query.types {
                    select = select.bind(sql::type_pattern($dialect, pattern));
                }
                let rows: Vec<(String,)> = select.fetch_all(&self.pool).await?;
                rows.iter()
                    .map(|(payload,)| sql::event_from(payload))
                    .collect()
            }

            async fn create_subscription(
                &self,
                new: &$crate::store::NewSubscription,
            ) -> Result<$crate::domain::subscription::Subscription, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let request = &new.request;
                let _turn = self.writes.enter().await;
                let (id,): (i64,) = sqlx::query_as(sql::INSERT_SUBSCRIPTION)
                    .bind(&request.end_point)
                    .bind(&request.resource_filter)
                    .bind(&request.subject_filter)
                    .bind(&request.source_filter)
                    .bind(&request.type_filter)
                    .bind(request.include_subunits)
                    .bind(&new.consumer)
                    .bind(&new.created_by)
                    .bind(sql::millis(new.created))
                    .bind(
                        new.signing_secret
                            .as_ref()
                            .map($crate::delivery::signing::SigningSecret::expose),
                    )
                    .bind(&new.consumer_org)
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::domain::subscription::Subscription {
                    id,
                    request: request.clone(),
                    consumer: new.consumer.clone(),
                    consumer_org: new.consumer_org.clone(),
                    created_by: new.created_by.clone(),
                    // As stored, so a read returns the same value.
                    created: chrono::DateTime::from_timestamp_millis(sql::millis(new.created))
                        .unwrap_or(new.created),
                    validated: false,
                })
            }

            async fn find_subscription(
                &self,
                new: &$crate::store::NewSubscription,
            ) -> Result<Option<$crate::domain::subscription::Subscription>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let request = &new.request;
                let row: Option<sql::SubscriptionRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::find_subscription()))
                        .bind(&request.end_point)
                        .bind(&request.resource_filter)
                        .bind(&request.subject_filter)
                        .bind(&request.source_filter)
                        .bind(&request.type_filter)
                        .bind(request.include_subunits)
                        .bind(&new.consumer)
                        .bind(new.signing_secret.is_some())
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(sql::subscription_from).transpose()
            }

            async fn rearm_validation(
                &self,
                id: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                let done = sqlx::query($crate::store::sql::REARM_VALIDATION)
                    .bind(id)
                    .bind($crate::store::sql::millis(at))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn subscription(
                &self,
                id: i64,
            ) -> Result<Option<$crate::domain::subscription::Subscription>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let row: Option<sql::SubscriptionRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::select_subscriptions("id = $1")))
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await?;
                row.map(sql::subscription_from).transpose()
            }

            async fn subscriptions_of(
                &self,
                consumer: &str,
            ) -> Result<Vec<$crate::domain::subscription::Subscription>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let rows: Vec<sql::SubscriptionRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::select_subscriptions("consumer = $1")))
                        .bind(consumer)
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(sql::subscription_from).collect()
            }

            async fn validated_subscriptions(
                &self,
                resource: &str,
            ) -> Result<Vec<$crate::domain::subscription::Subscription>, $crate::store::StoreError>
            {
                use $crate::store::sql;
                let rows: Vec<sql::SubscriptionRow> = sqlx::query_as(sqlx::AssertSqlSafe(
                    sql::select_subscriptions("resource_filter = $1 AND validated"),
                ))
                .bind(resource)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(sql::subscription_from).collect()
            }

            async fn delete_subscription(&self, id: i64) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::sql;
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(sql::DELETE_SUBSCRIPTION_DELIVERIES)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                let done = sqlx::query(sql::DELETE_SUBSCRIPTION)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(done.rows_affected() == 1)
            }

            async fn mark_validated(&self, id: i64) -> Result<bool, $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                let done = sqlx::query($crate::store::sql::MARK_VALIDATED)
                    .bind(id)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn claim_due(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
                lease_until: chrono::DateTime<chrono::Utc>,
                per_endpoint: u32,
                exclude_endpoints: &[String],
            ) -> Result<Vec<$crate::store::Delivery>, $crate::store::StoreError> {
                use $crate::store::sql;
                let claim = sql::claim_due($dialect, exclude_endpoints.len());
                let claimed: Vec<(i64,)> = {
                    let _turn = self.writes.enter().await;
                    let mut query = sqlx::query_as(sqlx::AssertSqlSafe(claim))
                        .bind(sql::millis(now))
                        .bind(i64::from(limit))
                        .bind(sql::millis(lease_until))
                        .bind(i64::from(per_endpoint));
                    for end_point in exclude_endpoints {
                        query = query.bind(end_point);
                    }
                    query.fetch_all(&self.pool).await?
                };
                if claimed.is_empty() {
                    return Ok(Vec::new());
                }
                let mut select =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::select_claimed(claimed.len())));
                for (id,) in &claimed {
                    select = select.bind(id);
                }
                let rows: Vec<sql::DeliveryRow> = select.fetch_all(&self.pool).await?;
                rows.into_iter().map(sql::delivery_from).collect()
            }

            async fn release(
                &self,
                delivery: i64,
                lease_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                let done = sqlx::query($crate::store::sql::RELEASE)
                    .bind(delivery)
                    .bind($crate::store::sql::millis(lease_until))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record(
                &self,
                attempts: &[$crate::store::Attempt],
            ) -> Result<Vec<bool>, $crate::store::StoreError> {
                use $crate::store::sql;
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let mut held = Vec::with_capacity(attempts.len());
                for attempt in attempts {
                    let (state, next_attempt, error) = sql::outcome_columns(&attempt.outcome);
                    let done = sqlx::query(sql::RECORD)
                        .bind(attempt.delivery)
                        .bind(state.as_str())
                        .bind(next_attempt)
                        .bind(error)
                        .bind(sql::millis(attempt.at))
                        .bind(sql::millis(attempt.lease_until))
                        .execute(&mut *tx)
                        .await?;
                    held.push(done.rows_affected() == 1);
                }
                tx.commit().await?;
                Ok(held)
            }

            async fn pending_count(&self) -> Result<u64, $crate::store::StoreError> {
                use $crate::store::sql;
                let count: i64 = sqlx::query_scalar(sql::COUNT_PENDING)
                    .fetch_one(&self.pool)
                    .await?;
                sql::stored("pending count", u64::try_from(count))
            }

            async fn dead_letters(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<$crate::store::Delivery>, $crate::store::StoreError> {
                use $crate::store::sql;
                let rows: Vec<sql::DeliveryRow> =
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::select_dead()))
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(&self.pool)
                        .await?;
                rows.into_iter().map(sql::delivery_from).collect()
            }

            async fn redrive(
                &self,
                delivery: i64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                let done = sqlx::query($crate::store::sql::REDRIVE)
                    .bind(delivery)
                    .bind($crate::store::sql::millis(at))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn redrive_all(
                &self,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::store::StoreError> {
                let _turn = self.writes.enter().await;
                let done = sqlx::query($crate::store::sql::REDRIVE_ALL)
                    .bind($crate::store::sql::millis(at))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn claim_validations(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
                lease_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::store::PendingValidation>, $crate::store::StoreError> {
                use $crate::store::sql;
                let claimed: Vec<(i64,)> = {
                    let _turn = self.writes.enter().await;
                    sqlx::query_as(sqlx::AssertSqlSafe(sql::claim_validations($dialect)))
                        .bind(sql::millis(now))
                        .bind(i64::from(limit))
                        .bind(sql::millis(lease_until))
                        .fetch_all(&self.pool)
                        .await?
                };
                if claimed.is_empty() {
                    return Ok(Vec::new());
                }
                let statement = sql::select_pending_validations(claimed.len());
                let mut select = sqlx::query_as(sqlx::AssertSqlSafe(statement));
                for (id,) in &claimed {
                    select = select.bind(id);
                }
                let rows: Vec<sql::PendingValidationRow> = select.fetch_all(&self.pool).await?;
                rows.into_iter().map(sql::pending_validation_from).collect()
            }

            async fn record_validation(
                &self,
                subscription: i64,
                outcome: $crate::store::ValidationOutcome,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::{ValidationOutcome, sql};
                let (validated, next) = match outcome {
                    ValidationOutcome::Validated => (true, None),
                    ValidationOutcome::RetryAt(at) => (false, Some(sql::millis(at))),
                    ValidationOutcome::GiveUp => (false, None),
                };
                let _turn = self.writes.enter().await;
                let done = sqlx::query(sql::RECORD_VALIDATION)
                    .bind(subscription)
                    .bind(validated)
                    .bind(next)
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}
pub(super) use event_store_impl;
