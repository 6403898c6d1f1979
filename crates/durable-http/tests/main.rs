//! Integration tests of the HTTP API over real HTTP: each test serves the router on 127.0.0.1
//! with a worker running the samples on a SQLite file, and talks to it with reqwest.

mod auth;
mod entities;
mod errors;
mod flows;
mod hostile;
mod list;
mod manage;
mod monitoring;
mod openapi;
mod purge;
mod start;
mod stats;
mod status;
mod support;
mod user_handlers;
