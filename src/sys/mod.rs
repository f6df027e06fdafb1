//! The run's own plumbing, below every stage: signal handling and cleanup ([`signals`]) and
//! the timing marks of `LSPORTS_TIMING` ([`timing`]).

pub mod signals;
pub mod timing;
