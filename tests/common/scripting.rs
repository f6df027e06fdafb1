//! Helpers for tests that script a world (formats, wait, watch, audit, prometheus, netns).
//!
//! world.py builds a fixed world before a test starts; these tests also need sockets that
//! appear or vanish while lsports runs, sockets on addresses the world does not have, and
//! sockets of another user. [`Listener`] is a tiny python3 listener for that, started inside a
//! world's namespace from a `World::run_shell` script. It dies with the script's shell
//! (`PR_SET_PDEATHSIG`), so a failing test leaves nothing behind.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

/// Binds the sockets of a JSON spec, names itself, marks readiness, then sleeps (bounded).
const LISTEN_PY: &str = r#"
import ctypes, json, os, signal, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG: die with the script's shell
spec = json.load(open(sys.argv[1]))
held = []
for s in spec["sockets"]:
    fam = socket.AF_INET6 if ":" in s["addr"] else socket.AF_INET
    kind = socket.SOCK_STREAM if s.get("proto", "tcp") == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(fam, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if s.get("v6only") is not None:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(s["v6only"]))
    if s.get("device"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, s["device"].encode())
    addr, _, scope = s["addr"].partition("%")
    if scope:
        sock.bind((addr, s["port"], 0, socket.if_nametoindex(scope)))
    else:
        sock.bind((addr, s["port"]))
    if kind == socket.SOCK_STREAM:
        sock.listen(8)
    held.append(sock)
libc.prctl(15, ctypes.create_string_buffer(spec.get("name", "listener").encode(), 16), 0, 0, 0)
tmp = sys.argv[2] + ".tmp"
open(tmp, "w").write(str(os.getpid()))
os.rename(tmp, sys.argv[2])
time.sleep(spec.get("hold", 120))
"#;

/// A listener a shell script can start in the namespace.
pub struct Listener {
    /// Shell variable (without `$`) that holds the listener's pid once started.
    pub var: String,
    spec_path: String,
    ready_path: String,
    log_path: String,
    py_path: String,
    /// Holds the files; open to every user, since the listener may run as another one.
    _dir: tempfile::TempDir,
}

impl Listener {
    /// Prepare a listener called `name` (also its process name) with `sockets`, each
    /// `{"proto": "tcp"|"udp", "addr", "port", "v6only"?, "device"?}`.
    pub fn new(name: &str, sockets: Value) -> Listener {
        let temp = tempfile::Builder::new()
            .prefix("lsports-listener-")
            .tempdir()
            .unwrap();
        let dir = temp.path();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let py_path = dir.join("listen.py");
        std::fs::write(&py_path, LISTEN_PY).unwrap();
        let spec_path = dir.join(format!("{name}.json"));
        let spec = json!({"name": name, "sockets": sockets});
        std::fs::write(&spec_path, spec.to_string()).unwrap();
        Listener {
            var: format!(
                "L_{}",
                name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            ),
            spec_path: path_str(&spec_path),
            ready_path: path_str(&dir.join(format!("{name}.ready"))),
            log_path: path_str(&dir.join(format!("{name}.log"))),
            py_path: path_str(&py_path),
            _dir: temp,
        }
    }

    /// Shell lines that start the listener in the background (as `user` when given, via
    /// setpriv) and wait until its sockets are bound.
    pub fn start(&self, as_user: Option<u32>) -> String {
        let setpriv = as_user.map_or(String::new(), |uid| {
            format!("setpriv --reuid={uid} --regid={uid} --clear-groups -- ")
        });
        format!(
            "rm -f {ready}\n\
             {setpriv}python3 {py} {spec} {ready} >{log} 2>&1 &\n\
             {var}=$!\n\
             for _ in $(seq 600); do [ -e {ready} ] && break; kill -0 ${var} 2>/dev/null || {{ echo 'listener died:' >&2; cat {log} >&2; exit 97; }}; sleep 0.05; done\n\
             [ -e {ready} ] || {{ echo 'listener not ready' >&2; exit 98; }}\n",
            ready = self.ready_path,
            log = self.log_path,
            py = self.py_path,
            spec = self.spec_path,
            var = self.var,
        )
    }

    /// Shell line that stops the listener and waits until its sockets are gone.
    pub fn stop(&self) -> String {
        format!(
            "kill ${var}; wait ${var} 2>/dev/null || true\n",
            var = self.var
        )
    }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_string()
}

/// The published JSON Schema.
pub fn schema() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/lsports.schema.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).expect("schema file is JSON")
}

/// Validate `instance` (a whole `--json` array) against the schema file, with format checks.
pub fn assert_valid(instance: &Value, what: &str) {
    validate(&schema(), instance, what);
}

fn validate(schema: &Value, instance: &Value, what: &str) {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match schema/lsports.schema.json:\n{}\n{}",
        errors.join("\n"),
        serde_json::to_string_pretty(instance).unwrap()
    );
}

/// Every key of every socket and process object is documented in the schema, and every
/// documented key is present: nothing undocumented leaks into the contract.
pub fn assert_keys_documented(sockets: &Value) {
    let schema = schema();
    let documented = |def: &str| -> Vec<String> {
        let mut keys: Vec<String> = schema["$defs"][def]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    let keys = |object: &Value| -> Vec<String> {
        let mut keys: Vec<String> = object.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for socket in sockets.as_array().unwrap() {
        assert_eq!(
            keys(socket),
            documented("socket"),
            "socket keys of {socket}"
        );
        for process in socket["processes"].as_array().unwrap() {
            assert_eq!(keys(process), documented("process"), "process keys");
        }
    }
}

/// Parse RFC 4180 CSV (quoted fields may hold separators, doubled quotes and line breaks).
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field in CSV:\n{text}");
    assert!(
        field.is_empty() && row.is_empty(),
        "CSV must end with a newline:\n{text}"
    );
    rows
}

/// No raw control character (C0 but newline, DEL, C1), bidi override or zero-width char.
pub fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8(bytes.to_vec())
        .unwrap_or_else(|_| panic!("{what}: output is not UTF-8: {bytes:?}"));
    let bad: Vec<(usize, char)> = text
        .char_indices()
        .filter(|&(_, c)| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: raw control characters {bad:?} in:\n{text:?}"
    );
}

/// Split a script's stdout into the sections it printed after `=== NAME` marker lines.
pub fn sections(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("=== ") {
            current = Some(name.trim().to_string());
            map.insert(name.trim().to_string(), String::new());
        } else if let Some(name) = &current {
            map.get_mut(name).unwrap().push_str(line);
        }
    }
    map
}

/// Validate `instance` against one definition of the schema file (`socket`, `watch_event`,
/// `audit_report`, …), with format checks: the file's root with its `$ref` pointed there.
pub fn assert_valid_as(instance: &Value, def: &str, what: &str) {
    let mut schema = schema();
    assert!(
        schema["$defs"].get(def).is_some(),
        "no $defs/{def} in the schema"
    );
    let root = schema.as_object_mut().unwrap();
    root.remove("type");
    root.remove("items");
    root.insert("$ref".into(), json!(format!("#/$defs/{def}")));
    validate(&schema, instance, what);
}
