//! nft-like text for the JSON of a rule, for the `by` of a verdict: `tcp dport { 22, 80 }
//! accept` reads better than the JSON it came from. What this does not know is shown as its
//! compact JSON, so nothing is hidden.

use serde_json::Value;

/// Longest text shown for one unknown expression.
const SHORT: usize = 160;

/// Compact JSON, cut to a readable length.
pub fn short(v: &Value) -> String {
    let mut s = v.to_string();
    if s.len() > SHORT {
        let mut cut = SHORT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// A value: `22`, `"eth0"`, `192.0.2.0/24`, `{ 22, 80-90 }`, `@allowed`, `tcp . 22`.
pub fn value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => {
            if *b {
                "exists".into()
            } else {
                "missing".into()
            }
        }
        Value::Array(a) => a.iter().map(value).collect::<Vec<_>>().join(","),
        Value::Object(_) => object_value(v),
        Value::Null => "null".into(),
    }
}

fn object_value(v: &Value) -> String {
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        let items: Vec<String> = set.iter().map(set_item).collect();
        return format!("{{ {} }}", items.join(", "));
    }
    if let Some(p) = v.get("prefix") {
        return format!("{}/{}", value(&p["addr"]), value(&p["len"]));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        return r.iter().map(value).collect::<Vec<_>>().join("-");
    }
    if let Some(c) = v.get("concat").and_then(Value::as_array) {
        return c.iter().map(value).collect::<Vec<_>>().join(" . ");
    }
    if v.get("payload").is_some()
        || v.get("meta").is_some()
        || v.get("ct").is_some()
        || v.get("fib").is_some()
    {
        return key(v);
    }
    short(v)
}

/// A set element: a value, or a map's `key : data`.
fn set_item(v: &Value) -> String {
    match v.as_array() {
        Some(pair) if pair.len() == 2 => format!("{} : {}", value(&pair[0]), stmt(&pair[1])),
        _ => value(v),
    }
}

/// A match's left-hand side: `tcp dport`, `iifname`, `ct state`, `fib daddr type`.
pub fn key(v: &Value) -> String {
    if let Some(p) = v.get("payload") {
        return format!("{} {}", value(&p["protocol"]), value(&p["field"]));
    }
    if let Some(m) = v.get("meta") {
        let k = value(&m["key"]);
        let bare = [
            "iif", "iifname", "oif", "oifname", "mark", "l4proto", "nfproto", "pkttype", "iiftype",
        ];
        return if bare.contains(&k.as_str()) && k != "l4proto" && k != "nfproto" {
            k
        } else {
            format!("meta {k}")
        };
    }
    if let Some(c) = v.get("ct") {
        return format!("ct {}", value(&c["key"]));
    }
    if let Some(f) = v.get("fib") {
        let flags = f["flags"]
            .as_array()
            .map(|a| a.iter().map(value).collect::<Vec<_>>().join(" . "));
        return format!("fib {} {}", flags.unwrap_or_default(), value(&f["result"]));
    }
    if let Some(c) = v.get("concat").and_then(Value::as_array) {
        return c.iter().map(key).collect::<Vec<_>>().join(" . ");
    }
    for op in ["&", "|", "^"] {
        if let Some([left, right]) = v.get(op).and_then(Value::as_array).map(Vec::as_slice) {
            let bits = match right.as_array() {
                Some(list) => list.iter().map(value).collect::<Vec<_>>().join("|"),
                None => value(right),
            };
            return format!("{} {op} ({bits})", key(left));
        }
    }
    short(v)
}

/// A match: `tcp dport { 22, 80 }`, `ip saddr != 10.0.0.0/8`.
pub fn matching(m: &Value) -> String {
    let op = m["op"].as_str().unwrap_or("==");
    // After a bitwise left side (`tcp flags & (syn|ack)`) an implicit `==` would misread.
    let bitwise = ["&", "|", "^"].iter().any(|o| m["left"].get(o).is_some());
    let op = if (op == "==" && !bitwise) || op == "in" {
        String::new()
    } else {
        format!("{op} ")
    };
    format!("{} {op}{}", key(&m["left"]), value(&m["right"]))
}

/// A statement: `accept`, `jump z_pub`, `limit rate 10/second`, `dnat to 10.0.0.2:80`.
pub fn stmt(s: &Value) -> String {
    let Some((name, body)) = s.as_object().and_then(|o| o.iter().next()) else {
        return short(s);
    };
    match name.as_str() {
        "match" => matching(body),
        "accept" | "drop" | "return" | "continue" | "notrack" => name.clone(),
        "jump" | "goto" => format!("{name} {}", value(&body["target"])),
        "reject" => match (body.get("type"), body.get("expr")) {
            (Some(t), Some(e)) => format!("reject with {} {}", value(t), value(e)),
            (Some(t), None) => format!("reject with {}", value(t)),
            _ => "reject".into(),
        },
        "counter" => "counter".into(),
        "log" => "log".into(),
        "limit" => limit(body),
        "vmap" => format!("{} vmap {}", key(&body["key"]), value(&body["data"])),
        "dnat" | "redirect" => nat(name, body),
        "mangle" => format!("{} set {}", key(&body["key"]), value(&body["value"])),
        "xt" => format!("xt {} {}", value(&body["type"]), value(&body["name"])),
        // `add @blacklist { ip saddr }`, as nft lists it.
        "set" | "map" if body.get("op").is_some() => {
            let name = body.get("set").or_else(|| body.get("map"));
            let name = name.map(value).unwrap_or_default();
            format!("{} {name} {{ {} }}", value(&body["op"]), key(&body["elem"]))
        }
        _ => short(s),
    }
}

fn limit(l: &Value) -> String {
    let over = if l["inv"].as_bool() == Some(true) {
        "over "
    } else {
        ""
    };
    let unit = l
        .get("rate_unit")
        .and_then(Value::as_str)
        .filter(|u| *u != "packets");
    let unit = unit.map(|u| format!(" {u}")).unwrap_or_default();
    format!(
        "limit rate {over}{}{unit}/{}",
        value(&l["rate"]),
        value(&l["per"])
    )
}

fn nat(name: &str, n: &Value) -> String {
    let addr = n.get("addr").map(value);
    let port = n.get("port").map(value);
    match (addr, port) {
        (Some(a), Some(p)) => format!("{name} to {a}:{p}"),
        (Some(a), None) => format!("{name} to {a}"),
        (None, Some(p)) => format!("{name} to :{p}"),
        (None, None) => name.to_string(),
    }
}
