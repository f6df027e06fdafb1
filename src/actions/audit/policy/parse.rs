//! Reading a policy file. Every key is checked, and an error names the file, the line of the
//! offending value and the rule it belongs to: `policy.toml:14: rule 3: port "ssh" is not a
//! port number (0-65535)`.
//!
//! | key | value |
//! |---|---|
//! | `action` | `"allow"` or `"deny"` (required) |
//! | `name`, `comment` | text, shown in the audit / for the reader |
//! | `proto` | `"tcp"` or `"udp"` |
//! | `port` | `22`, `"8000-8100"`, `"ephemeral"`, or a list of those |
//! | `address` | `"127.0.0.1"`, `"10.0.0.0/8"`, `"any"`, or a list |
//! | `exposure` | `"loopback"`, `"link-local"`, `"interface"`, `"specific"`, `"all"`, `"external"` (all but loopback), or a list |
//! | `program` | process name, exact or glob (`"python*"`), or a list |
//! | `exe` | executable path, exact or glob (`"/usr/sbin/*"`), or a list |
//! | `user` | user name or uid, or a list |
//! | `reach` | `"open"`, `"restricted"`, `"filtered"`, `"rejected"`, `"local"`, `"unknown"`, or a list: an allow rule matches when every address family's verdict is listed, a deny rule when any is |
//! | `required` | `true`: report the rule when no listener matches it (allow rules only) |

use std::ops::Range;

use serde::Deserialize;
use toml::{Spanned, Value};

use super::{Action, Matcher, Policy, Rule};
use crate::actions::audit::tomlfile::{FileError, Source};
use crate::filter::{self, Glob, PortSet};
use crate::model::Protocol;
use crate::model::exposure::{self, Exposure};
use crate::model::reach::Verdict;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    default: Option<Spanned<String>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: Spanned<String>,
    name: Option<String>,
    #[allow(dead_code)] // for the reader of the file only
    comment: Option<String>,
    required: Option<Spanned<bool>>,
    proto: Option<Spanned<String>>,
    port: Option<Spanned<Value>>,
    address: Option<Spanned<Value>>,
    exposure: Option<Spanned<Value>>,
    program: Option<Spanned<Value>>,
    exe: Option<Spanned<Value>>,
    user: Option<Spanned<Value>>,
    container: Option<Spanned<Value>>,
    unit: Option<Spanned<Value>>,
    netns: Option<Spanned<Value>>,
    reach: Option<Spanned<Value>>,
}

/// Read and check a policy.
pub fn parse(source: &Source) -> Result<Policy, FileError> {
    let raw: RawPolicy = source.parse()?;
    let default = match &raw.default {
        None => Action::Deny,
        Some(text) => action(text.get_ref()).ok_or_else(|| {
            source.error_at(Some(text.span()), "default must be \"allow\" or \"deny\"")
        })?,
    };
    let mut policy = Policy {
        path: source.path.clone(),
        default,
        rules: Vec::new(),
        warnings: Vec::new(),
    };
    for (index, raw_rule) in raw.rule.into_iter().enumerate() {
        let mut reader = RuleReader {
            source,
            number: index + 1,
            warnings: &mut policy.warnings,
        };
        let rule = reader.rule(raw_rule)?;
        policy.rules.push(rule);
    }
    Ok(policy)
}

fn action(text: &str) -> Option<Action> {
    match text {
        "allow" => Some(Action::Allow),
        "deny" => Some(Action::Deny),
        _ => None,
    }
}

/// Checks one rule, with what errors need to point at it.
struct RuleReader<'a> {
    source: &'a Source,
    number: usize,
    warnings: &'a mut Vec<String>,
}

impl RuleReader<'_> {
    fn rule(&mut self, raw: Spanned<RawRule>) -> Result<Rule, FileError> {
        let line = self.source.line(raw.span().start);
        let raw = raw.into_inner();
        let action = action(raw.action.get_ref())
            .ok_or_else(|| self.error(raw.action.span(), "action must be \"allow\" or \"deny\""))?;
        let required = match &raw.required {
            Some(flag) if *flag.get_ref() && action == Action::Deny => {
                return Err(self.error(
                    flag.span(),
                    "required applies to allow rules: a deny rule cannot require a listener",
                ));
            }
            Some(flag) => *flag.get_ref(),
            None => false,
        };
        Ok(Rule {
            number: self.number,
            line,
            name: raw.name.clone(),
            action,
            required,
            matcher: Matcher {
                reach_in_every_family: action == Action::Allow,
                ..self.matcher(&raw)?
            },
        })
    }

    fn matcher(&mut self, raw: &RawRule) -> Result<Matcher, FileError> {
        let mut matcher = Matcher {
            protocol: raw.proto.as_ref().map(|p| self.protocol(p)).transpose()?,
            ..Matcher::default()
        };
        if let Some(port) = &raw.port {
            self.ports(port, &mut matcher)?;
        }
        if let Some(address) = &raw.address {
            matcher.addresses = self.addresses(address)?;
        }
        if let Some(exposure) = &raw.exposure {
            matcher.exposures = self.exposures(exposure)?;
        }
        let globs = |value: &Spanned<Value>, key| -> Result<Vec<Glob>, FileError> {
            let texts = self.texts(value, key)?;
            Ok(texts.iter().map(|t| Glob::new(t)).collect())
        };
        matcher.programs = raw
            .program
            .as_ref()
            .map(|v| globs(v, "program"))
            .transpose()?
            .unwrap_or_default();
        matcher.exes = raw
            .exe
            .as_ref()
            .map(|v| globs(v, "exe"))
            .transpose()?
            .unwrap_or_default();
        let optional_globs = |value: &Option<Spanned<Value>>, key| {
            value
                .as_ref()
                .map(|v| globs(v, key))
                .transpose()
                .map(Option::unwrap_or_default)
        };
        matcher.containers = optional_globs(&raw.container, "container")?;
        matcher.units = optional_globs(&raw.unit, "unit")?;
        matcher.netns = optional_globs(&raw.netns, "netns")?;
        if let Some(user) = &raw.user {
            matcher.uids = Some(self.users(user)?);
        }
        if let Some(reach) = &raw.reach {
            matcher.reach = self.reach(reach)?;
        }
        Ok(matcher)
    }

    fn protocol(&self, text: &Spanned<String>) -> Result<Protocol, FileError> {
        match text.get_ref().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            other => Err(self.error(
                text.span(),
                format!("proto {other:?} is not \"tcp\" or \"udp\""),
            )),
        }
    }

    fn ports(&self, value: &Spanned<Value>, matcher: &mut Matcher) -> Result<(), FileError> {
        let mut sets = Vec::new();
        for text in self.texts(value, "port")? {
            if text == "ephemeral" {
                matcher.ephemeral = true;
                continue;
            }
            let set: PortSet = text
                .parse()
                .map_err(|e| self.error(value.span(), format!("port: {e}")))?;
            sets.push(set);
        }
        matcher.ports = (!sets.is_empty()).then(|| PortSet::union(&sets));
        Ok(())
    }

    fn addresses(&self, value: &Spanned<Value>) -> Result<Vec<ipnet::IpNet>, FileError> {
        let mut nets = Vec::new();
        for text in self.texts(value, "address")? {
            if text == "any" {
                return Ok(Vec::new());
            }
            let net = filter::parse_network(&text)
                .map_err(|e| self.error(value.span(), format!("address: {e}")))?;
            nets.push(net);
        }
        Ok(nets)
    }

    fn exposures(&self, value: &Spanned<Value>) -> Result<Vec<Exposure>, FileError> {
        let mut exposures = Vec::new();
        for text in self.texts(value, "exposure")? {
            let words = exposure::parse_word(&text).map_err(|e| self.error(value.span(), e))?;
            exposures.extend(words);
        }
        Ok(exposures)
    }

    fn reach(&self, value: &Spanned<Value>) -> Result<Vec<Verdict>, FileError> {
        let names = Verdict::EVERY.map(Verdict::name).join(", ");
        self.texts(value, "reach")?
            .iter()
            .map(|text| {
                Verdict::from_name(text).ok_or_else(|| {
                    let message = format!("reach {text:?} is not one of {names}");
                    self.error(value.span(), message)
                })
            })
            .collect()
    }

    /// Users by name or uid. A name this host does not know is a warning, not an error: one
    /// policy may serve hosts with different software, and the rule simply matches nobody.
    fn users(&mut self, value: &Spanned<Value>) -> Result<Vec<u32>, FileError> {
        let mut uids = Vec::new();
        for text in self.texts(value, "user")? {
            match filter::resolve_user(&text) {
                Ok(uid) => uids.push(uid),
                Err(problem) => {
                    let at = self.source.line(value.span().start);
                    self.warnings.push(format!(
                        "{}:{at}: rule {}: {problem}; the rule matches no listener of that user",
                        self.source.path.display(),
                        self.number
                    ));
                }
            }
        }
        Ok(uids)
    }

    /// A string, a number, or a list of them, as texts.
    fn texts(&self, value: &Spanned<Value>, key: &str) -> Result<Vec<String>, FileError> {
        let one = |v: &Value| match v {
            Value::String(text) => Some(text.clone()),
            Value::Integer(n) => Some(n.to_string()),
            _ => None,
        };
        let texts = match value.get_ref() {
            Value::Array(items) => items.iter().map(one).collect::<Option<Vec<_>>>(),
            single => one(single).map(|t| vec![t]),
        };
        match texts {
            // An empty text would match nothing and hide the rule's mistake.
            Some(texts) if texts.iter().any(|t| t.trim().is_empty()) => Err(self.error(
                value.span(),
                format!("{key}: an empty value matches nothing"),
            )),
            Some(texts) if !texts.is_empty() => Ok(texts),
            _ => Err(self.error(
                value.span(),
                format!("{key} must be a string, a number or a non-empty list of them"),
            )),
        }
    }

    fn error(&self, span: Range<usize>, message: impl std::fmt::Display) -> FileError {
        self.source
            .error_at(Some(span), format!("rule {}: {message}", self.number))
    }
}
