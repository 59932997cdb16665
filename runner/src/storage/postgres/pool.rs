//! PostgreSQL connections kept for the next tenant job of this process.
//!
//! A connection is a server process: opening one (fork, authentication,
//! settings) costs more than all the queries of a job that finds a tenant up
//! to date, and a runner does such jobs by the thousand. A connection goes
//! back only when clean (no transaction open), with its prepared statements,
//! so the next job does not prepare them again.

use ::postgres as pg;
use pg::types::ToSql;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Idle connections kept per process: a runner's workers hold two each
/// while they work (the tenant lock's and the data's).
const MAX_IDLE: usize = 16;
/// Prepared statements kept per connection. Record statements name a
/// tenant's tables, so over many tenants the cache starts over past this.
const MAX_STATEMENTS: usize = 512;
/// A connection idle longer than this is checked with a round trip before
/// it is used again: the server may have closed it meanwhile.
const CHECK_AFTER: Duration = Duration::from_secs(10);

/// `statement_timeout` as the server has it is not known (a rolled back
/// transaction or savepoint undoes a `SET` made inside it).
pub const TIMEOUT_UNKNOWN: u64 = u64::MAX;

static IDLE: Mutex<Vec<Idle>> = Mutex::new(Vec::new());

struct Idle {
    url: String,
    client: pg::Client,
    statements: HashMap<String, pg::Statement>,
    timeout_ms: u64,
    since: Instant,
}

/// A connection of the pool; back to it when dropped, if clean.
pub struct Connection {
    url: String,
    client: Option<pg::Client>,
    statements: HashMap<String, pg::Statement>,
    /// A transaction is open: the connection is not given back.
    pub in_transaction: bool,
    /// Statements ran since the store's write savepoint was last moved
    /// (`execute`, `batch_execute`: DDL, metadata): the next guarded write
    /// moves it first, so that a failed write never undoes them.
    pub unsaved: bool,
    /// The `statement_timeout` last set on the server, in milliseconds (0:
    /// none), or [`TIMEOUT_UNKNOWN`].
    pub timeout_ms: u64,
    reusable: bool,
}

/// Close the idle connections to `url`: before the database is copied or
/// dropped, which PostgreSQL refuses while anyone is connected to it.
#[cfg(any(test, feature = "test-support"))]
pub fn close_idle(url: &str) {
    let closed: Vec<Idle> = {
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        let (closed, kept) = std::mem::take(&mut *idle)
            .into_iter()
            .partition(|c| c.url == url);
        *idle = kept;
        closed
    };
    // Each client ends its session as it is dropped, outside the lock.
    drop(closed);
}

impl Connection {
    /// A connection to `url`: one this process has finished with, or a new
    /// one (with the `graft` schema made sure of).
    pub fn get(url: &str) -> anyhow::Result<Connection> {
        loop {
            let idle = {
                let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
                idle.iter()
                    .rposition(|c| c.url == url)
                    .map(|i| idle.swap_remove(i))
            };
            let Some(mut idle) = idle else { break };
            if idle.client.is_closed()
                || (idle.since.elapsed() > CHECK_AFTER && idle.client.simple_query("").is_err())
            {
                continue;
            }
            return Ok(Connection {
                url: idle.url,
                client: Some(idle.client),
                statements: idle.statements,
                in_transaction: false,
                unsaved: false,
                timeout_ms: idle.timeout_ms,
                reusable: true,
            });
        }
        Ok(Connection {
            url: url.to_string(),
            client: Some(super::schema::connect(url)?),
            statements: HashMap::new(),
            in_transaction: false,
            unsaved: false,
            timeout_ms: 0,
            reusable: true,
        })
    }

    /// Close this connection when dropped instead of giving it back (its
    /// session is in a state the next user must not inherit).
    pub fn discard(&mut self) {
        self.reusable = false;
    }

    /// `sql` prepared on this connection, once.
    pub fn statement(&mut self, sql: &str) -> Result<pg::Statement, pg::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    /// Forget the prepared statements (a rollback may have dropped tables
    /// they read).
    pub fn forget_statements(&mut self) {
        self.statements.clear();
    }

    // The client's query calls, on statements prepared once.

    pub fn query(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<pg::Row>, pg::Error> {
        let statement = self.statement(sql)?;
        self.deref_mut().query(&statement, params)
    }

    pub fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<pg::Row>, pg::Error> {
        let statement = self.statement(sql)?;
        self.deref_mut().query_opt(&statement, params)
    }

    pub fn query_one(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<pg::Row, pg::Error> {
        let statement = self.statement(sql)?;
        self.deref_mut().query_one(&statement, params)
    }

    pub fn execute(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, pg::Error> {
        let statement = self.statement(sql)?;
        self.unsaved = true;
        self.deref_mut().execute(&statement, params)
    }

    /// `Client::batch_execute`, noting that something may have been written
    /// (see `unsaved`).
    pub fn batch_execute(&mut self, sql: &str) -> Result<(), pg::Error> {
        self.unsaved = true;
        self.deref_mut().batch_execute(sql)
    }
}

impl Deref for Connection {
    type Target = pg::Client;
    fn deref(&self) -> &pg::Client {
        self.client
            .as_ref()
            .expect("the client is taken only on drop")
    }
}

impl DerefMut for Connection {
    fn deref_mut(&mut self) -> &mut pg::Client {
        self.client
            .as_mut()
            .expect("the client is taken only on drop")
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if !self.reusable || self.in_transaction || client.is_closed() {
            return;
        }
        let mut statements = std::mem::take(&mut self.statements);
        if statements.len() > MAX_STATEMENTS {
            statements.clear();
        }
        let mut idle = IDLE.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                url: std::mem::take(&mut self.url),
                client,
                statements,
                timeout_ms: self.timeout_ms,
                since: Instant::now(),
            });
        }
    }
}
