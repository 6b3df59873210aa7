//! Reports: the seeds' CSV columns ([`columns`]), report periods ([`period`]), the row types
//! and CSV writer ([`rows`]), and the rows computed from a period's classified pulls
//! ([`compute`]). No database here: the jobs load records and reuse these.

pub mod columns;
pub mod compute;
pub mod period;
pub mod rows;

pub use compute::{MIN_PAIR_USERS, PullRecord};
pub use period::{Granularity, Period};
pub use rows::{Report, write_csv};

#[cfg(test)]
mod tests;
