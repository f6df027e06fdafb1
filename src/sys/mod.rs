//! What the run needs from the system, below every stage: the one way into a proc root
//! ([`procroot`]), the one way to write a file ([`atomic`]), signal handling and cleanup
//! ([`signals`]), and the timing marks of `LSPORTS_TIMING` ([`timing`]).

pub mod atomic;
pub mod procroot;
pub mod signals;
pub mod timing;
