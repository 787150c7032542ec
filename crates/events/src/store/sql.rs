//! The SQL of [`EventStore`](super::EventStore), written once and instantiated for each database
//! by [`event_store_impl!`]. Every statement is plain SQL valid on both PostgreSQL and SQLite,
//! except the delivery claim, which each backend passes in (PostgreSQL locks and skips the rows
//! it claims; SQLite has a single writer and needs no lock).

use std::fmt::Display;

use chrono::{DateTime, Utc};

use super::{Delivery, DeliveryState, StoreError};
use crate::domain::cloud_event::CloudEvent;
use crate::domain::subscription::{Subscription, SubscriptionRequest};

/// Taken first by every append; see the migration.
pub(super) const TAKE_APPEND_TURN: &str =
    "UPDATE append_turn SET appends = appends + 1 WHERE id = 1";
pub(super) const INSERT_EVENT: &str =
    "INSERT INTO events (id, resource, subject, payload, appended)
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING";
pub(super) const SELECT_EVENT: &str = "SELECT payload FROM events WHERE id = $1";
/// `$2` is the last seen id ('' for none); an unknown id starts at the beginning.
pub(super) const PULL: &str = "SELECT payload FROM events
     WHERE resource = $1
       AND seq > COALESCE((SELECT seq FROM events WHERE id = $2), 0)
       AND ($3 = '' OR subject = $3)
     ORDER BY seq LIMIT $4";

const SUBSCRIPTION_COLUMNS: &str = "id, end_point, resource_filter, subject_filter,
       source_filter, type_filter, include_subunits, consumer, created_by, created, validated";
pub(super) const INSERT_SUBSCRIPTION: &str = "INSERT INTO subscriptions (end_point,
       resource_filter, subject_filter, source_filter, type_filter, include_subunits, consumer,
       created_by, created, validated)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, FALSE) RETURNING id";
pub(super) fn select_subscriptions(filter: &str) -> String {
    format!("SELECT {SUBSCRIPTION_COLUMNS} FROM subscriptions WHERE {filter} ORDER BY id")
}
pub(super) const DELETE_SUBSCRIPTION_DELIVERIES: &str =
    "DELETE FROM deliveries WHERE subscription_id = $1";
pub(super) const DELETE_SUBSCRIPTION: &str = "DELETE FROM subscriptions WHERE id = $1";
pub(super) const MARK_VALIDATED: &str = "UPDATE subscriptions SET validated = TRUE WHERE id = $1";

pub(super) const ENQUEUE: &str = "INSERT INTO deliveries (event_id, subscription_id, state,
       attempts, next_attempt, updated)
     VALUES ($1, $2, 'pending', 0, $3, $3) ON CONFLICT (event_id, subscription_id) DO NOTHING";
/// Claims and leases in one statement; the lock clause goes inside the sub-select.
macro_rules! claim_due {
    ($lock:literal) => {
        concat!(
            "UPDATE deliveries SET claimed_until = $3 WHERE id IN (
               SELECT id FROM deliveries
               WHERE state = 'pending' AND next_attempt <= $1
                 AND (claimed_until IS NULL OR claimed_until <= $1)
               ORDER BY next_attempt, id LIMIT $2 ",
            $lock,
            ") RETURNING id"
        )
    };
}
pub(super) const CLAIM_DUE_POSTGRES: &str = claim_due!("FOR UPDATE SKIP LOCKED");
pub(super) const CLAIM_DUE_SQLITE: &str = claim_due!("");
/// A delivery with its event and endpoint, selected by `$where` (a literal).
macro_rules! select_delivery {
    ($where:literal) => {
        concat!(
            "SELECT d.id, d.subscription_id, s.end_point, e.payload, d.attempts, d.state,
                    d.last_error
             FROM deliveries d
             JOIN events e ON e.id = d.event_id
             JOIN subscriptions s ON s.id = d.subscription_id
             WHERE ",
            $where
        )
    };
}
pub(super) const SELECT_DELIVERY: &str = select_delivery!("d.id = $1");
pub(super) const SELECT_DEAD: &str = select_delivery!("d.state = 'dead' ORDER BY d.id LIMIT $1");
/// `$2` the new state, `$3` the next attempt (kept when NULL), `$4` the error, `$5` now, `$6`
/// the recorder's lease.
pub(super) const RECORD: &str = "UPDATE deliveries SET state = $2,
       next_attempt = COALESCE($3, next_attempt), last_error = $4, updated = $5,
       attempts = attempts + 1, claimed_until = NULL
     WHERE id = $1 AND state = 'pending' AND claimed_until = $6";
pub(super) const REDRIVE: &str = "UPDATE deliveries SET state = 'pending', attempts = 0,
       next_attempt = $2, claimed_until = NULL, updated = $2
     WHERE id = $1 AND state = 'dead'";

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
        created_by,
        created: time("subscription created", created)?,
        validated,
    })
}

pub(super) type DeliveryRow = (i64, i64, String, String, i64, String, Option<String>);

pub(super) fn delivery_from(row: DeliveryRow) -> Result<Delivery, StoreError> {
    let (id, subscription_id, end_point, payload, attempts, state, last_error) = row;
    Ok(Delivery {
        id,
        subscription_id,
        end_point,
        event: event_from(&payload)?,
        attempts: stored("delivery attempts", u32::try_from(attempts))?,
        state: DeliveryState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?,
        last_error,
    })
}

/// The whole [`EventStore`](super::EventStore) for a store type with `pool` and `writes` fields.
macro_rules! event_store_impl {
    ($store:ty, $claim:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::EventStore for $store {
            async fn append(
                &self,
                events: &[$crate::domain::cloud_event::CloudEvent],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::store::Inserted>, $crate::store::StoreError> {
                use $crate::store::{Inserted, sql};
                let rows = events
                    .iter()
                    .map(sql::event_json)
                    .collect::<Result<Vec<_>, _>>()?;
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                sqlx::query(sql::TAKE_APPEND_TURN).execute(&mut *tx).await?;
                let mut inserted = Vec::with_capacity(events.len());
                for (event, payload) in events.iter().zip(&rows) {
                    let done = sqlx::query(sql::INSERT_EVENT)
                        .bind(event.id.to_string())
                        .bind(&event.resource)
                        .bind(&event.subject)
                        .bind(payload)
                        .bind(sql::millis(at))
                        .execute(&mut *tx)
                        .await?;
                    inserted.push(if done.rows_affected() == 1 {
                        Inserted::New
                    } else {
                        Inserted::AlreadyExists
                    });
                }
                tx.commit().await?;
                Ok(inserted)
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
                let rows: Vec<(String,)> = sqlx::query_as(sql::PULL)
                    .bind(&query.resource)
                    .bind(query.after.map(|id| id.to_string()).unwrap_or_default())
                    .bind(query.subject.as_deref().unwrap_or_default())
                    .bind(i64::from(query.size))
                    .fetch_all(&self.pool)
                    .await?;
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
                    .fetch_one(&self.pool)
                    .await?;
                Ok($crate::domain::subscription::Subscription {
                    id,
                    request: request.clone(),
                    consumer: new.consumer.clone(),
                    created_by: new.created_by.clone(),
                    // As stored, so a read returns the same value.
                    created: chrono::DateTime::from_timestamp_millis(sql::millis(new.created))
                        .unwrap_or(new.created),
                    validated: false,
                })
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

            async fn enqueue(
                &self,
                event: uuid::Uuid,
                subscriptions: &[i64],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<usize, $crate::store::StoreError> {
                use $crate::store::sql;
                let event = event.to_string();
                let _turn = self.writes.enter().await;
                let mut tx = self.pool.begin().await?;
                let mut new = 0;
                for subscription in subscriptions {
                    let done = sqlx::query(sql::ENQUEUE)
                        .bind(&event)
                        .bind(subscription)
                        .bind(sql::millis(at))
                        .execute(&mut *tx)
                        .await?;
                    new += usize::from(done.rows_affected() == 1);
                }
                tx.commit().await?;
                Ok(new)
            }

            async fn claim_due(
                &self,
                now: chrono::DateTime<chrono::Utc>,
                limit: u32,
                lease_until: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::store::Delivery>, $crate::store::StoreError> {
                use $crate::store::sql;
                let claimed: Vec<(i64,)> = {
                    let _turn = self.writes.enter().await;
                    sqlx::query_as($claim)
                        .bind(sql::millis(now))
                        .bind(i64::from(limit))
                        .bind(sql::millis(lease_until))
                        .fetch_all(&self.pool)
                        .await?
                };
                let mut deliveries = Vec::with_capacity(claimed.len());
                for (id,) in claimed {
                    let row: sql::DeliveryRow = sqlx::query_as(sql::SELECT_DELIVERY)
                        .bind(id)
                        .fetch_one(&self.pool)
                        .await?;
                    deliveries.push(sql::delivery_from(row)?);
                }
                deliveries.sort_by_key(|delivery| delivery.id);
                Ok(deliveries)
            }

            async fn record(
                &self,
                delivery: i64,
                lease_until: chrono::DateTime<chrono::Utc>,
                outcome: &$crate::store::Outcome,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<bool, $crate::store::StoreError> {
                use $crate::store::{DeliveryState, Outcome, sql};
                let (state, next_attempt, error) = match outcome {
                    Outcome::Delivered => (DeliveryState::Delivered, None, None),
                    Outcome::Retry {
                        next_attempt,
                        error,
                    } => (
                        DeliveryState::Pending,
                        Some(sql::millis(*next_attempt)),
                        Some(error.as_str()),
                    ),
                    Outcome::DeadLetter { error } => {
                        (DeliveryState::Dead, None, Some(error.as_str()))
                    }
                };
                let _turn = self.writes.enter().await;
                let done = sqlx::query(sql::RECORD)
                    .bind(delivery)
                    .bind(state.as_str())
                    .bind(next_attempt)
                    .bind(error)
                    .bind(sql::millis(at))
                    .bind(sql::millis(lease_until))
                    .execute(&self.pool)
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn dead_letters(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::store::Delivery>, $crate::store::StoreError> {
                use $crate::store::sql;
                let rows: Vec<sql::DeliveryRow> = sqlx::query_as(sql::SELECT_DEAD)
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
        }
    };
}
pub(super) use event_store_impl;
