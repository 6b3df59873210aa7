//! Reports: the seeds' CSV columns, report periods, and the rows computed from classified
//! pulls.

pub mod period;
