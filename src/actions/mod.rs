//! The actions a run can take, each a thin layer over the stages: [`audit`] (with its
//! baseline and policy files), [`watch`], [`continuous`] (netstat -c), [`wait`] and
//! [`generate`] (man page, completions).

pub mod audit;
pub mod continuous;
pub mod generate;
pub mod wait;
pub mod watch;
