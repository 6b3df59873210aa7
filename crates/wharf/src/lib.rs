//! The wharf binary's library: configuration, the application, HTTP and background jobs.
//! `main.rs` is only the command line.

pub mod app;
pub mod config;
mod http;

pub use http::ClientAddr;
pub mod jobs;
pub mod server;

pub use app::{App, AppState};
pub use config::{Config, Overrides};
