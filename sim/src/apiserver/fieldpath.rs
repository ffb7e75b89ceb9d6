//! Sets of field paths, the unit of server-side-apply ownership, and their `FieldsV1` encoding.
//!
//! A path is a sequence of elements from the object root: a field name (`f:spec`), a list item
//! named by its key fields (`k:{"type":"Ready"}`), a set item named by its value (`v:"a"`), or a
//! list index (`i:0`, atomic-free deduced lists only). `FieldsV1` nests these as JSON objects;
//! `".": {}` marks a path that is itself in the set *and* has members below it, and a leaf is
//! `{}` (structured-merge-diff `fieldpath/serialize.go`).

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fmt;

/// A key field of a list-map (`x-kubernetes-list-map-keys`) and the default a missing one takes.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyField {
    pub name: String,
    pub default: Option<Value>,
}

#[cfg(test)]
impl KeyField {
    pub fn new(name: &str) -> Self {
        KeyField {
            name: name.to_string(),
            default: None,
        }
    }
}

/// One step of a path. Keys and values hold their canonical JSON text so paths order and compare
/// as plain data; the text is also exactly what `FieldsV1` and error messages print.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Element {
    Field(String),
    /// Compact JSON of the key fields, sorted by name: `{"port":80,"protocol":"TCP"}`.
    Key(String),
    /// Compact JSON of a set member: `"a"`.
    Value(String),
    Index(usize),
}

impl Element {
    /// The list-map key element of `item` by `keys`: a missing key field takes its default
    /// (a Service port's `protocol` is `TCP`), or null when it has none.
    pub fn key_of(item: &Value, keys: &[KeyField]) -> Element {
        let mut fields = Map::new();
        for k in keys {
            let value = item.get(&k.name).or(k.default.as_ref());
            fields.insert(k.name.clone(), value.cloned().unwrap_or(Value::Null));
        }
        // serde_json's map is ordered by key: the text is canonical whatever the key order.
        Element::Key(Value::Object(fields).to_string())
    }

    pub fn value_of(item: &Value) -> Element {
        Element::Value(item.to_string())
    }

    fn encode(&self) -> String {
        match self {
            Element::Field(f) => format!("f:{f}"),
            Element::Key(k) => format!("k:{k}"),
            Element::Value(v) => format!("v:{v}"),
            Element::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Element> {
        let (tag, rest) = s.split_once(':')?;
        match tag {
            "f" => Some(Element::Field(rest.to_string())),
            // Re-serialize so the stored text is canonical whatever spacing a client sent.
            "k" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Element::Key(v.to_string())),
            "v" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Element::Value(v.to_string())),
            "i" => rest.parse().ok().map(Element::Index),
            _ => None,
        }
    }
}

/// How structured-merge-diff prints a path in conflict messages: `.spec.ports[port=80,protocol="TCP"]`.
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Element::Field(name) => write!(f, ".{name}"),
            Element::Key(json) => {
                let fields: Map<String, Value> = serde_json::from_str(json).unwrap_or_default();
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            Element::Value(json) => write!(f, "[={json}]"),
            Element::Index(i) => write!(f, "[{i}]"),
        }
    }
}

pub type Path = Vec<Element>;

pub fn path_string(path: &[Element]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A set of paths. Plain ordered paths keep the set algebra obvious; objects are small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet(BTreeSet<Path>);

impl FieldSet {
    pub fn new() -> Self {
        FieldSet::default()
    }

    pub fn insert(&mut self, path: Path) {
        self.0.insert(path);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Path> {
        self.0.iter()
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.union(&other.0).cloned().collect())
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.difference(&other.0).cloned().collect())
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        FieldSet(self.0.intersection(&other.0).cloned().collect())
    }

    /// Whether some member lies strictly below `path`.
    pub fn has_descendant(&self, path: &[Element]) -> bool {
        self.0
            .range(path.to_vec()..)
            .take_while(|p| p.starts_with(path))
            .any(|p| p.len() > path.len())
    }

    /// Drops the members `keep` rejects.
    pub fn retain(&mut self, keep: impl Fn(&Path) -> bool) {
        self.0.retain(|p| keep(p));
    }

    pub fn to_fields_v1(&self) -> Value {
        let mut root = Map::new();
        for path in &self.0 {
            let mut node = &mut root;
            for element in path {
                let child = node
                    .entry(element.encode())
                    .or_insert_with(|| Value::Object(Map::new()));
                node = child.as_object_mut().expect("FieldsV1 nodes are objects");
            }
            // Marked for now; `finish` turns the mark into "." where the node has children.
            node.insert(MEMBER.into(), Value::Bool(true));
        }
        finish(&mut root);
        Value::Object(root)
    }

    /// Decodes a `FieldsV1` object; `None` when it is not one.
    pub fn from_fields_v1(value: &Value) -> Option<FieldSet> {
        let mut set = FieldSet::new();
        decode_node(value.as_object()?, &mut Vec::new(), &mut set)?;
        Some(set)
    }
}

const MEMBER: &str = "\u{0}member";

fn finish(node: &mut Map<String, Value>) {
    let member = node.remove(MEMBER).is_some();
    for child in node.values_mut() {
        finish(child.as_object_mut().expect("FieldsV1 nodes are objects"));
    }
    if member && !node.is_empty() {
        node.insert(".".into(), Value::Object(Map::new()));
    }
}

fn decode_node(node: &Map<String, Value>, at: &mut Path, set: &mut FieldSet) -> Option<()> {
    for (k, child) in node {
        if k == "." {
            set.insert(at.clone());
            continue;
        }
        at.push(Element::decode(k)?);
        let child = child.as_object()?;
        if child.is_empty() {
            set.insert(at.clone());
        } else {
            decode_node(child, at, set)?;
        }
        at.pop();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> Element {
        Element::Field(name.into())
    }

    #[test]
    fn encodes_like_the_apiserver_and_round_trips() {
        let mut set = FieldSet::new();
        set.insert(vec![f("data"), f("a")]);
        set.insert(vec![f("data")]);
        let cond = Element::key_of(
            &json!({"type": "Ready", "status": "True"}),
            &[KeyField::new("type")],
        );
        set.insert(vec![f("status"), f("conditions"), cond.clone()]);
        set.insert(vec![f("status"), f("conditions"), cond, f("status")]);
        set.insert(vec![
            f("metadata"),
            f("finalizers"),
            Element::value_of(&json!("x")),
        ]);
        let encoded = set.to_fields_v1();
        assert_eq!(
            encoded,
            json!({
                "f:data": {".": {}, "f:a": {}},
                "f:metadata": {"f:finalizers": {"v:\"x\"": {}}},
                "f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}}}}
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&encoded), Some(set));
    }

    #[test]
    fn paths_print_as_in_conflict_messages() {
        let protocol = KeyField {
            name: "protocol".into(),
            default: Some(json!("TCP")),
        };
        let key = Element::key_of(&json!({"port": 80}), &[protocol, KeyField::new("port")]);
        assert_eq!(
            path_string(&[f("spec"), f("ports"), key, f("name")]),
            ".spec.ports[port=80,protocol=\"TCP\"].name"
        );
        assert_eq!(
            path_string(&[f("m"), Element::value_of(&json!("a"))]),
            ".m[=\"a\"]"
        );
    }

    #[test]
    fn descendants() {
        let mut set = FieldSet::new();
        set.insert(vec![f("spec"), f("a"), f("b")]);
        assert!(set.has_descendant(&[f("spec")]));
        assert!(!set.has_descendant(&[f("spec"), f("a"), f("b")]));
        assert!(!set.has_descendant(&[f("status")]));
    }
}
