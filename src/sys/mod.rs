//! What the run needs from the system, below every stage: the one way into a proc root
//! ([`procroot`]), the one way to write a file ([`atomic`]), signal handling and cleanup
//! ([`signals`]), the timing marks of `LSPORTS_TIMING` ([`timing`]), work over a slice on two
//! cores with the result in order ([`parallel`]), freed memory given back ([`memory`]), and the
//! cgroup2 file system: where it is mounted and which path each cgroup id names
//! ([`cgroupfs`]; labels and the kernel event programs both need it), and output whose reader
//! may leave early without changing a verdict ([`pipe`]); who lsports runs as, for the
//! messages that say what would let it see more ([`privilege`]); whose view of the file system
//! a holder's executable path is in ([`mountns`]).

pub mod atomic;
pub mod cgroupfs;
pub mod memory;
pub mod mountns;
pub mod parallel;
pub mod pipe;
pub mod privilege;
pub mod procroot;
pub mod signals;
pub mod timing;
