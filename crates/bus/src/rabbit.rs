//! The production bus: RabbitMQ through lapin.
//!
//! One connection per [`RabbitBus`], with one confirm-mode channel for publishing and one
//! channel per [`Subscriber`] (so prefetch is per subscriber and dropping a subscriber closes
//! its channel, which makes RabbitMQ requeue what it had not acked). Everything is published
//! to one durable topic exchange as persistent messages, and [`Bus::publish`] waits for the
//! publisher confirm: only then is the message replicated and on disk in every quorum queue
//! it was routed to.
//!
//! Shared queues are quorum queues because they are the durable, replicated queue type that
//! RabbitMQ recommends for data that must not be lost, and they keep the `redelivered` flag
//! and a delivery count across redeliveries. Exclusive queues are classic, server-named,
//! exclusive and auto-delete: broadcast queues that vanish with their subscriber.
//!
//! Reconnection is on demand: when the connection is gone, publish fails (the outbox relay
//! retries) and the next publish or subscribe dials again. Subscribers of a lost connection
//! end with an error; their owners subscribe again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use lapin::message::Delivery as AmqpDelivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{
    Acker, BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};

use crate::{
    Bus, BusError, Delivery, Message, QueueKind, Receive, Settle, Subscriber, Subscription,
};

/// AMQP delivery mode of messages written to disk.
const PERSISTENT: u8 = 2;
/// How long dialling RabbitMQ may take before publish or subscribe gives up; without it a
/// black-holed address would stall the caller for the operating system's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The production message bus on RabbitMQ; see the module docs.
pub struct RabbitBus {
    url: String,
    exchange: ShortString,
    link: tokio::sync::Mutex<Option<Arc<Link>>>,
}

impl RabbitBus {
    /// Connects to `url` (e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`) and declares the
    /// durable topic exchange `exchange`; fails if RabbitMQ cannot be reached.
    pub async fn connect(url: &str, exchange: &str) -> Result<Self, BusError> {
        let exchange = short_string("exchange name", exchange)?;
        let link = Link::open(url, &exchange).await?;
        Ok(Self {
            url: url.to_owned(),
            exchange,
            link: tokio::sync::Mutex::new(Some(Arc::new(link))),
        })
    }

    /// The current connection, or a new one if there is none or it broke.
    async fn link(&self) -> Result<Arc<Link>, BusError> {
        let mut current = self.link.lock().await;
        if let Some(link) = current.as_ref().filter(|link| link.is_usable()) {
            return Ok(Arc::clone(link));
        }
        *current = None;
        tracing::info!(exchange = %self.exchange, "connecting to RabbitMQ");
        let link = Arc::new(Link::open(&self.url, &self.exchange).await?);
        *current = Some(Arc::clone(&link));
        Ok(link)
    }
}

impl std::fmt::Debug for RabbitBus {
    /// Leaves out the URL, which holds the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitBus")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for RabbitBus {
    async fn publish(&self, message: Message) -> Result<(), BusError> {
        message.validate()?;
        let mut headers = FieldTable::default();
        for (name, value) in &message.headers {
            headers.insert(
                short_string("header name", name)?,
                AMQPValue::LongString(value.as_str().into()),
            );
        }
        let properties = BasicProperties::default()
            .with_message_id(short_string("message id", &message.id)?)
            .with_delivery_mode(PERSISTENT)
            .with_headers(headers);
        let routing_key = short_string("routing key", &message.routing_key)?;

        let link = self.link().await?;
        let confirmation = link
            .publisher
            .basic_publish(
                self.exchange.clone(),
                routing_key,
                BasicPublishOptions::default(),
                &message.payload,
                properties,
            )
            .await?
            .await?;
        match confirmation {
            Confirmation::Ack(_) => Ok(()),
            Confirmation::Nack(_) => Err(BusError::Nacked),
            Confirmation::NotRequested => Err(BusError::Protocol(
                "publisher confirms are not enabled on the publishing channel".into(),
            )),
        }
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<Subscriber, BusError> {
        subscription.validate()?;
        let link = self.link().await?;
        let channel = link.connection.create_channel().await?;
        channel
            .basic_qos(subscription.prefetch, BasicQosOptions::default())
            .await?;
        let (name, options, arguments) = match &subscription.queue {
            QueueKind::Shared(name) => {
                let mut arguments = FieldTable::default();
                arguments.insert(
                    "x-queue-type".into(),
                    AMQPValue::LongString("quorum".into()),
                );
                let options = QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                };
                (short_string("queue name", name)?, options, arguments)
            }
            QueueKind::Exclusive => {
                let options = QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                };
                // An empty name asks the server to pick a unique one.
                (ShortString::default(), options, FieldTable::default())
            }
        };
        let queue = channel
            .queue_declare(name, options, arguments)
            .await?
            .name()
            .clone();
        for pattern in &subscription.bindings {
            channel
                .queue_bind(
                    queue.clone(),
                    self.exchange.clone(),
                    short_string("binding pattern", pattern)?,
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        let consumer = channel
            .basic_consume(
                queue,
                ShortString::default(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Subscriber {
            inner: Box::new(RabbitConsumer {
                consumer,
                _channel: channel,
                ended: false,
            }),
        })
    }
}

/// The RabbitMQ side of a [`Subscriber`].
#[derive(Debug)]
struct RabbitConsumer {
    consumer: lapin::Consumer,
    /// Keeps the channel, and with it the connection, open as long as the subscriber lives.
    _channel: Channel,
    /// Set after the first error or cancellation, so the error is followed by `None`.
    ended: bool,
}

#[async_trait]
impl Receive for RabbitConsumer {
    async fn next(&mut self) -> Option<Result<Delivery, BusError>> {
        if self.ended {
            return None;
        }
        let next = self.consumer.next().await;
        self.ended = !matches!(next, Some(Ok(_)));
        next.map(|result| result.map(delivery).map_err(BusError::from))
    }
}

/// Converts a lapin delivery; header values that are not strings (such as the
/// `x-delivery-count` quorum queues add) are left out.
fn delivery(amqp: AmqpDelivery) -> Delivery {
    let AmqpDelivery {
        routing_key,
        redelivered,
        properties,
        data,
        acker,
        ..
    } = amqp;
    let headers: BTreeMap<String, String> = properties
        .headers()
        .iter()
        .flat_map(|table| table.inner())
        .filter_map(|(name, value)| {
            let value = match value {
                AMQPValue::LongString(value) => String::from_utf8_lossy(value.as_bytes()).into(),
                AMQPValue::ShortString(value) => value.to_string(),
                _ => return None,
            };
            Some((name.to_string(), value))
        })
        .collect();
    Delivery {
        message: Message {
            id: properties
                .message_id()
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            routing_key: routing_key.to_string(),
            headers,
            payload: data.into(),
        },
        redelivered,
        settle: Box::new(RabbitAcker(Some(acker))),
    }
}

/// The RabbitMQ side of a [`Delivery`]: nacks with requeue on drop unless settled.
#[derive(Debug)]
struct RabbitAcker(Option<Acker>);

impl RabbitAcker {
    /// The acker, unless already used.
    fn take(&mut self) -> Result<Acker, BusError> {
        self.0.take().ok_or(BusError::Closed)
    }
}

/// lapin answers `false` when the channel closed: the server requeued the message already.
fn settled(outcome: Result<bool, lapin::Error>) -> Result<(), BusError> {
    if outcome? {
        Ok(())
    } else {
        Err(BusError::Closed)
    }
}

#[async_trait]
impl Settle for RabbitAcker {
    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        settled(self.take()?.ack(BasicAckOptions::default()).await)
    }

    async fn nack(mut self: Box<Self>, requeue: bool) -> Result<(), BusError> {
        let options = BasicNackOptions {
            requeue,
            ..BasicNackOptions::default()
        };
        settled(self.take()?.nack(options).await)
    }
}

impl Drop for RabbitAcker {
    fn drop(&mut self) {
        let Some(acker) = self.0.take() else {
            return;
        };
        // Without a runtime there is nobody to send the nack; closing the channel, when the
        // subscriber goes, requeues the message instead.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let options = BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                };
                if let Err(error) = acker.nack(options).await {
                    tracing::debug!(%error, "requeueing a dropped delivery failed");
                }
            });
        }
    }
}

/// A live connection and its confirm-mode publishing channel.
struct Link {
    connection: Connection,
    publisher: Channel,
}

impl Link {
    /// Connects, declares the exchange and enables publisher confirms.
    async fn open(url: &str, exchange: &ShortString) -> Result<Self, BusError> {
        let connect = Connection::connect(url, ConnectionProperties::default());
        let connection = tokio::time::timeout(CONNECT_TIMEOUT, connect)
            .await
            .map_err(|elapsed| BusError::Connection(Box::new(elapsed)))??;
        let publisher = connection.create_channel().await?;
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        publisher
            .exchange_declare(
                exchange.clone(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Self {
            connection,
            publisher,
        })
    }

    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// Validates and converts a name to an AMQP short string (at most 255 bytes).
fn short_string(what: &'static str, value: &str) -> Result<ShortString, BusError> {
    ShortString::try_new(value).map_err(|error| BusError::Invalid {
        what,
        reason: error.to_string(),
    })
}

impl From<lapin::Error> for BusError {
    fn from(error: lapin::Error) -> Self {
        // Soft errors close a channel for a reason the server gave (not found, precondition
        // failed, access refused); everything else means the connection is unusable.
        if error.is_amqp_soft_error() {
            BusError::Protocol(Box::new(error))
        } else {
            BusError::Connection(Box::new(error))
        }
    }
}
