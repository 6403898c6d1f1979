//! Wake-ups across processes. Each store LISTENs on its hub's channel on a connection of its
//! own and turns notifications from other stores into [`Notifier`] signals. Its own changes
//! are announced by a background task that sends one NOTIFY for whatever accumulated while the
//! previous one was in flight: a NOTIFY commits on its own, so one per change would cost a
//! flush each under load. Notifications are a hint; the runtime's slow poll stays the safety net.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use deadpool_postgres::Pool;
use durable_store::{Notifier, StoreResult};
use futures::FutureExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

use crate::error::db;
use crate::hub::Hub;

pub(crate) const ORCHESTRATIONS: u8 = 1;
pub(crate) const ACTIVITIES: u8 = 2;
pub(crate) const CHANGED: u8 = 4;

/// Flags waiting to be announced.
#[derive(Debug, Default)]
pub(crate) struct Announcer {
    flags: AtomicU8,
    wake: Notify,
}

impl Announcer {
    pub fn announce(&self, flags: u8) {
        if flags != 0 {
            self.flags.fetch_or(flags, Ordering::SeqCst);
            self.wake.notify_one();
        }
    }
}

fn encode(flags: u8) -> String {
    let mut s = String::new();
    for (bit, c) in [(ORCHESTRATIONS, 'o'), (ACTIVITIES, 'a'), (CHANGED, 'c')] {
        if flags & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// Sends the accumulated flags as `<token>:<letters>` until the store is dropped.
pub(crate) fn spawn_announcer(
    announcer: Arc<Announcer>,
    pool: Pool,
    hub: Arc<Hub>,
    token: String,
    mut stop: watch::Receiver<()>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = announcer.wake.notified() => {}
                _ = stop.changed() => return,
            }
            let flags = announcer.flags.swap(0, Ordering::SeqCst);
            if flags == 0 {
                continue;
            }
            let payload = format!("{token}:{}", encode(flags));
            let sent = match pool.get().await {
                Ok(client) => client
                    .execute("SELECT pg_notify($1, $2)", &[&hub.channel(), &payload])
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = sent {
                tracing::debug!(error = %e, "could not announce work to other processes");
            }
        }
    });
}

/// A live LISTEN connection: the client keeps it open, the pump reads its messages.
struct Session {
    _client: Client,
    pump: JoinHandle<()>,
}

fn deliver(notifier: &Notifier, token: &str, payload: &str) {
    let Some((from, letters)) = payload.split_once(':') else {
        return;
    };
    if from == token {
        return; // our own announcement: this process was signalled directly
    }
    for c in letters.chars() {
        match c {
            'o' => notifier.orchestration_work(),
            'a' => notifier.activity_work(),
            'c' => notifier.all_changed(),
            _ => {}
        }
    }
}

async fn listen(
    config: &Config,
    hub: &Hub,
    token: &str,
    notifier: &Arc<Notifier>,
) -> Result<Session, tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (notifier, token) = (notifier.clone(), token.to_string());
    let pump = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(n))) => deliver(&notifier, &token, n.payload()),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "notification connection failed");
                    return;
                }
                None => return,
            }
        }
    });
    // The channel name contains ':', so it is quoted; the schema part is a plain identifier.
    if let Err(e) = client
        .batch_execute(&format!("LISTEN \"{}\"", hub.channel()))
        .await
    {
        pump.abort();
        return Err(e);
    }
    Ok(Session {
        _client: client,
        pump,
    })
}

/// Starts listening; returns once LISTEN is in effect, so no later notification is missed.
/// After a lost connection it reconnects with backoff and signals everything, since
/// notifications may have been missed meanwhile.
pub(crate) async fn start_listener(
    config: Config,
    hub: Arc<Hub>,
    token: String,
    notifier: Arc<Notifier>,
    mut stop: watch::Receiver<()>,
) -> StoreResult<()> {
    let mut session = listen(&config, &hub, &token, &notifier).await.map_err(db)?;
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = (&mut session.pump).map(|_| ()) => {}
                _ = stop.changed() => {
                    session.pump.abort();
                    return;
                }
            }
            tracing::warn!(channel = %hub.channel(), "lost the PostgreSQL notification connection; reconnecting");
            let mut backoff = Duration::from_millis(100);
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                match listen(&config, &hub, &token, &notifier).await {
                    Ok(s) => {
                        session = s;
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reconnect the notification connection yet");
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
            notifier.orchestration_work();
            notifier.activity_work();
            notifier.all_changed();
        }
    });
    Ok(())
}
