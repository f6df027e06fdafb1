//! Service names on the command line (`--port ssh`, `--wait http-alt`), read from the same
//! services file the table names ports from, and only when a name is given.

use std::path::PathBuf;

use crate::enrich::names::Services;
use crate::filter::ports::PortSpecError;

/// The services file, loaded on the first name looked up.
#[derive(Debug)]
pub struct ServiceNames {
    path: PathBuf,
    loaded: Option<Result<Services, String>>,
}

impl ServiceNames {
    /// Names from the services file at `path` (`/etc/services` for a real run).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ServiceNames {
            path: path.into(),
            loaded: None,
        }
    }

    /// The ports of service `name`, or an error naming the file when it has none.
    pub fn lookup(&mut self, name: &str) -> Result<Vec<u16>, PortSpecError> {
        let path = self.path.display().to_string();
        let loaded = self.loaded.get_or_insert_with(|| {
            Services::load(&self.path).map_err(|error| format!("{path}: {error}"))
        });
        match loaded {
            Err(problem) => Err(PortSpecError::NoServices(name.into(), problem.clone())),
            Ok(services) => match services.ports_named(name) {
                ports if ports.is_empty() => Err(PortSpecError::UnknownService(name.into(), path)),
                ports => Ok(ports),
            },
        }
    }
}
