//! What is added to a selected listing: the executables of its processes ([`exe`]), the
//! suspicious-listener findings ([`suspicious`]), and the names of hosts, ports and users
//! ([`names`]).

pub mod exe;
pub mod names;
pub mod suspicious;
