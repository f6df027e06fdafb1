//! What is added to a selected listing: the executables of its processes ([`exe`]), the
//! suspicious-listener findings ([`suspicious`]), the names of hosts, ports and users
//! ([`names`]), and the systemd unit and container a process or socket belongs to
//! ([`labels`]).

pub mod exe;
pub mod labels;
pub mod names;
pub mod published;
pub mod reach;
pub mod suspicious;
