//! The JSONPath subset CRD `additionalPrinterColumns` use: `.a.b`, `.a[0]`, `.a[*]`,
//! `.a['dotted\.key']`, `.a.dotted\.key` and filters `.a[?(@.type=="Ready")].status`
//! (`==`, `!=` against a string, number or boolean). It covers every column of this repo's CRDs
//! and the CAPI and cert-manager fixtures; anything else is an error naming what is unsupported.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(usize),
    All,
    Filter {
        path: Vec<String>,
        equal: bool,
        literal: Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

impl JsonPath {
    /// Parses a column path, with or without the `{…}` template braces.
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let inner = trimmed
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .unwrap_or(trimmed);
        let mut parser = Parser {
            chars: inner.chars().collect(),
            at: 0,
            text,
        };
        let mut steps = Vec::new();
        while parser.at < parser.chars.len() {
            steps.push(parser.step()?);
        }
        Ok(JsonPath { steps })
    }

    /// Every value the path selects in `root`, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match step {
                    Step::Field(name) => next.extend(value.get(name.as_str())),
                    Step::Index(i) => next.extend(value.get(*i)),
                    Step::All => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(map) => next.extend(map.values()),
                        _ => {}
                    },
                    Step::Filter {
                        path,
                        equal,
                        literal,
                    } => {
                        if let Value::Array(items) = value {
                            next.extend(items.iter().filter(|item| {
                                let found =
                                    path.iter().try_fold(*item, |v, key| v.get(key.as_str()));
                                found.is_some_and(|f| (f == literal) == *equal)
                            }));
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

struct Parser<'a> {
    chars: Vec<char>,
    at: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> String {
        format!(
            "unsupported JSONPath {:?} at character {}: {what}",
            self.text, self.at
        )
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn step(&mut self) -> Result<Step, String> {
        if self.eat('.') {
            if self.eat('*') {
                return Ok(Step::All);
            }
            let name = self.field_name();
            if name.is_empty() {
                return Err(self.error("expected a field name after '.'"));
            }
            Ok(Step::Field(name))
        } else if self.eat('[') {
            let step = self.bracket()?;
            if !self.eat(']') {
                return Err(self.error("expected ']'"));
            }
            Ok(step)
        } else {
            Err(self.error("expected '.' or '['"))
        }
    }

    /// A bare field name: up to the next unescaped '.' or '['; `\.` is a literal dot.
    fn field_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' if self.chars.get(self.at + 1).is_some() => {
                    name.push(self.chars[self.at + 1]);
                    self.at += 2;
                }
                '.' | '[' => break,
                _ => {
                    name.push(c);
                    self.at += 1;
                }
            }
        }
        name
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or_else(|| self.error("expected a quote"))?;
        self.at += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('\\') if self.chars.get(self.at + 1).is_some() => {
                    out.push(self.chars[self.at + 1]);
                    self.at += 2;
                }
                Some(c) if c == quote => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.at += 1;
                }
            }
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(' ') {
            self.at += 1;
        }
    }

    fn bracket(&mut self) -> Result<Step, String> {
        match self.peek() {
            Some('\'' | '"') => Ok(Step::Field(self.quoted()?)),
            Some('*') => {
                self.at += 1;
                Ok(Step::All)
            }
            Some('?') => {
                self.at += 1;
                if !self.eat('(') || !self.eat('@') {
                    return Err(self.error("a filter must start with ?(@"));
                }
                let mut path = Vec::new();
                while self.eat('.') {
                    path.push(self.field_name_in_filter());
                }
                self.skip_spaces();
                let equal = if self.eat('=') && self.eat('=') {
                    true
                } else if self.eat('!') && self.eat('=') {
                    false
                } else {
                    return Err(self.error("only == and != filters are supported"));
                };
                self.skip_spaces();
                let literal = self.literal()?;
                self.skip_spaces();
                if !self.eat(')') {
                    return Err(self.error("expected ')' closing the filter"));
                }
                Ok(Step::Filter {
                    path,
                    equal,
                    literal,
                })
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.at;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.at += 1;
                }
                let digits: String = self.chars[start..self.at].iter().collect();
                digits
                    .parse()
                    .map(Step::Index)
                    .map_err(|_| self.error("index out of range"))
            }
            _ => Err(self.error("expected a quoted key, an index, '*' or a filter")),
        }
    }

    /// A field name inside a filter ends also at spaces and operators.
    fn field_name_in_filter(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if matches!(c, '.' | ' ' | '=' | '!' | ')') {
                break;
            }
            name.push(c);
            self.at += 1;
        }
        name
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('\'' | '"') => Ok(Value::String(self.quoted()?)),
            _ => {
                let start = self.at;
                while self.peek().is_some_and(|c| c != ')' && c != ' ') {
                    self.at += 1;
                }
                let word: String = self.chars[start..self.at].iter().collect();
                serde_json::from_str::<Value>(&word)
                    .ok()
                    .filter(|v| v.is_number() || v.is_boolean())
                    .ok_or_else(|| {
                        self.error("a filter compares with a quoted string, a number or true/false")
                    })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(path: &str, obj: &Value) -> Option<Value> {
        JsonPath::parse(path)
            .unwrap()
            .find(obj)
            .first()
            .cloned()
            .cloned()
    }

    #[test]
    fn the_column_paths_real_crds_use() {
        let obj = json!({
            "metadata": {"labels": {"cluster.x-k8s.io/cluster-name": "c1"}},
            "spec": {"replicas": 3},
            "status": {"conditions": [
                {"type": "Paused", "status": "False"},
                {"type": "Ready", "status": "True", "message": "all good"}]}
        });
        assert_eq!(first(".spec.replicas", &obj), Some(json!(3)));
        assert_eq!(first("{.spec.replicas}", &obj), Some(json!(3)));
        assert_eq!(
            first(r#".status.conditions[?(@.type=="Ready")].status"#, &obj),
            Some(json!("True"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type == "Ready")].message"#, &obj),
            Some(json!("all good"))
        );
        assert_eq!(
            first(r#".status.conditions[?(@.type!="Ready")].type"#, &obj),
            Some(json!("Paused"))
        );
        assert_eq!(
            first(r".metadata.labels['cluster\.x-k8s\.io/cluster-name']", &obj),
            Some(json!("c1"))
        );
        assert_eq!(
            first(r".metadata.labels.cluster\.x-k8s\.io/cluster-name", &obj),
            Some(json!("c1"))
        );
        assert_eq!(
            first(".status.conditions[1].type", &obj),
            Some(json!("Ready"))
        );
        assert_eq!(
            JsonPath::parse(".status.conditions[*].type")
                .unwrap()
                .find(&obj)
                .len(),
            2
        );
        assert_eq!(first(".status.missing.deeper", &obj), None);
    }

    #[test]
    fn unsupported_syntax_is_an_error_naming_the_path() {
        let err = JsonPath::parse(".a[?(@.x > 1)]").unwrap_err();
        assert!(
            err.contains(".a[?(@.x > 1)]") && err.contains("=="),
            "{err}"
        );
        assert!(JsonPath::parse("a.b").is_err());
        assert!(JsonPath::parse(".a[").is_err());
    }

    #[test]
    fn every_fixture_and_repo_crd_column_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut dirs = vec![root.join("crds")];
        let shared = root.join("../shared/fixtures");
        dirs.extend(
            ["capi-crds", "cert-manager-crds"]
                .iter()
                .map(|d| shared.join(d))
                .filter(|d| d.is_dir()),
        );
        let mut checked = 0;
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                for line in text.lines() {
                    if let Some(path) = line.trim().strip_prefix("jsonPath: ") {
                        JsonPath::parse(path).unwrap();
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 0);
    }
}
