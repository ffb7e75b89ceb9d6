//! Label and field selectors, parsed the way `k8s.io/apimachinery/pkg/labels` parses them.

use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
    GreaterThan(String, i64),
    LessThan(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut lexer = Lexer::new(input);
        let mut requirements = Vec::new();
        if lexer.peek_is_end() {
            return Ok(Self::default());
        }
        loop {
            requirements.push(parse_requirement(&mut lexer)?);
            match lexer.next() {
                Token::End => break,
                Token::Comma => continue,
                other => {
                    return Err(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        other.text()
                    ));
                }
            }
        }
        Ok(Self { requirements })
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::DoesNotExist(k) => !labels.contains_key(k),
            Requirement::GreaterThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            Requirement::LessThan(k, n) => labels
                .get(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Comma,
    Equals,
    DoubleEquals,
    NotEquals,
    Not,
    Open,
    Close,
    Greater,
    Less,
    End,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Ident(s) => s.clone(),
            Token::Comma => ",".into(),
            Token::Equals => "=".into(),
            Token::DoubleEquals => "==".into(),
            Token::NotEquals => "!=".into(),
            Token::Not => "!".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Greater => ">".into(),
            Token::Less => "<".into(),
            Token::End => "end of string".into(),
        }
    }
}

struct Lexer {
    tokens: Vec<Token>,
    pos: usize,
}

impl Lexer {
    fn new(input: &str) -> Self {
        let chars: Vec<char> = input.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            match c {
                ' ' | '\t' => i += 1,
                ',' => (tokens.push(Token::Comma), i += 1).1,
                '(' => (tokens.push(Token::Open), i += 1).1,
                ')' => (tokens.push(Token::Close), i += 1).1,
                '>' => (tokens.push(Token::Greater), i += 1).1,
                '<' => (tokens.push(Token::Less), i += 1).1,
                '=' if next == Some('=') => (tokens.push(Token::DoubleEquals), i += 2).1,
                '=' => (tokens.push(Token::Equals), i += 1).1,
                '!' if next == Some('=') => (tokens.push(Token::NotEquals), i += 2).1,
                '!' => (tokens.push(Token::Not), i += 1).1,
                _ => {
                    let start = i;
                    while i < chars.len() && !" \t,()<>=!".contains(chars[i]) {
                        i += 1;
                    }
                    tokens.push(Token::Ident(chars[start..i].iter().collect()));
                }
            }
        }
        Lexer { tokens, pos: 0 }
    }

    fn next(&mut self) -> Token {
        let t = self.tokens.get(self.pos).cloned().unwrap_or(Token::End);
        self.pos += 1;
        t
    }

    fn peek(&self) -> Token {
        self.tokens.get(self.pos).cloned().unwrap_or(Token::End)
    }

    fn peek_is_end(&self) -> bool {
        self.peek() == Token::End
    }
}

fn parse_requirement(lexer: &mut Lexer) -> Result<Requirement, String> {
    let negated = if lexer.peek() == Token::Not {
        lexer.next();
        true
    } else {
        false
    };
    let key = match lexer.next() {
        Token::Ident(k) => k,
        other => return Err(format!("found '{}', expected: identifier", other.text())),
    };
    validate_label_key(&key)?;
    if negated {
        return Ok(Requirement::DoesNotExist(key));
    }
    match lexer.peek() {
        Token::Comma | Token::End => return Ok(Requirement::Exists(key)),
        _ => {}
    }
    match lexer.next() {
        Token::Equals | Token::DoubleEquals => Ok(Requirement::Equals(key, parse_value(lexer)?)),
        Token::NotEquals => Ok(Requirement::NotEquals(key, parse_value(lexer)?)),
        Token::Greater => Ok(Requirement::GreaterThan(key, parse_integer(lexer)?)),
        Token::Less => Ok(Requirement::LessThan(key, parse_integer(lexer)?)),
        Token::Ident(op) if op == "in" => Ok(Requirement::In(key, parse_set(lexer)?)),
        Token::Ident(op) if op == "notin" => Ok(Requirement::NotIn(key, parse_set(lexer)?)),
        other => Err(format!(
            "found '{}', expected: in, notin, =, ==, !=, gt, lt",
            other.text()
        )),
    }
}

fn parse_value(lexer: &mut Lexer) -> Result<String, String> {
    match lexer.peek() {
        Token::Ident(v) => {
            lexer.next();
            validate_label_value(&v)?;
            Ok(v)
        }
        // `a=` selects the empty value.
        Token::Comma | Token::End => Ok(String::new()),
        other => Err(format!("found '{}', expected: identifier", other.text())),
    }
}

fn parse_integer(lexer: &mut Lexer) -> Result<i64, String> {
    match lexer.next() {
        Token::Ident(v) => v
            .parse()
            .map_err(|_| format!("for 'Gt', 'Lt' operators, the value must be an integer: {v:?}")),
        other => Err(format!("found '{}', expected: integer", other.text())),
    }
}

fn parse_set(lexer: &mut Lexer) -> Result<Vec<String>, String> {
    if lexer.next() != Token::Open {
        return Err("found missing '(', expected: '('".into());
    }
    let mut values = Vec::new();
    loop {
        match lexer.next() {
            Token::Ident(v) => {
                validate_label_value(&v)?;
                values.push(v);
            }
            Token::Close if values.is_empty() => return Ok(values),
            other => return Err(format!("found '{}', expected: identifier", other.text())),
        }
        match lexer.next() {
            Token::Comma => continue,
            Token::Close => return Ok(values),
            other => return Err(format!("found '{}', expected: ',' or ')'", other.text())),
        }
    }
}

fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && (prefix.is_empty() || prefix.len() > 253)
    {
        return Err(format!(
            "invalid label key {key:?}: prefix part must be a DNS subdomain"
        ));
    }
    if name.is_empty() || name.len() > 63 || !is_qualified_name(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn validate_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Ok(());
    }
    if value.len() > 63 || !is_qualified_name(value) {
        return Err(format!(
            "invalid label value: {value:?}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

fn is_qualified_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A field selector: `field=value`, `field==value`, `field!=value`, comma-separated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector {
    terms: Vec<(String, bool, String)>,
}

impl FieldSelector {
    pub fn parse(input: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in input.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, equal, value) = if let Some((f, v)) = part.split_once("!=") {
                (f, false, v)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, true, v)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, true, v)
            } else {
                return Err(format!(
                    "invalid selector: '{input}'; can't understand '{part}'"
                ));
            };
            terms.push((field.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Self { terms })
    }

    /// The fields named, so the caller can reject the ones its resource does not support.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(f, _, _)| f.as_str())
    }

    /// The exact name this selector pins, if any (`metadata.name=x`): lets a watch skip others.
    pub fn matches(
        &self,
        object: &Value,
        field_value: impl Fn(&Value, &str) -> Option<String>,
    ) -> bool {
        self.terms.iter().all(|(field, equal, value)| {
            let actual = field_value(object, field).unwrap_or_default();
            (actual == *value) == *equal
        })
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// Reads a dotted field path (`metadata.name`, `spec.redfishConnection.address`) as a selector
/// value: strings as they are, numbers and booleans in their JSON form.
pub fn field_path_value(object: &Value, path: &str) -> Option<String> {
    let mut current = object;
    for part in path.trim_start_matches('.').split('.') {
        current = current.get(part)?;
    }
    match current {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        Value::Bool(_) | Value::Number(_) => Some(current.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn equality_set_and_existence() {
        let sel = LabelSelector::parse("env in (prod, staging),tier!=db,!legacy,app").unwrap();
        assert!(sel.matches(&labels(&[("env", "prod"), ("tier", "web"), ("app", "x")])));
        assert!(!sel.matches(&labels(&[("env", "dev"), ("app", "x")])));
        assert!(!sel.matches(&labels(&[("env", "prod"), ("app", "x"), ("legacy", "")])));
        assert!(!sel.matches(&labels(&[("env", "prod")])));
        let sel = LabelSelector::parse("a==1,b notin (x),n>3").unwrap();
        assert!(sel.matches(&labels(&[("a", "1"), ("n", "4")])));
        assert!(!sel.matches(&labels(&[("a", "1"), ("b", "x"), ("n", "4")])));
        assert!(!sel.matches(&labels(&[("a", "1"), ("n", "3")])));
    }

    #[test]
    fn empty_selector_matches_all() {
        assert!(LabelSelector::parse("").unwrap().matches(&labels(&[])));
    }

    #[test]
    fn malformed_selectors_name_the_problem() {
        let err = LabelSelector::parse("a in x").unwrap_err();
        assert!(err.contains("'('"), "{err}");
        assert!(LabelSelector::parse("a=b=c").is_err());
        assert!(
            LabelSelector::parse("-bad=1")
                .unwrap_err()
                .contains("invalid label key")
        );
    }

    #[test]
    fn field_selectors() {
        let obj =
            serde_json::json!({"metadata": {"name": "h1", "namespace": "ns"}, "spec": {"n": 3}});
        let sel = FieldSelector::parse("metadata.name=h1,metadata.namespace!=other").unwrap();
        assert!(sel.matches(&obj, field_path_value));
        assert!(
            !FieldSelector::parse("metadata.name==h2")
                .unwrap()
                .matches(&obj, field_path_value)
        );
        assert!(
            FieldSelector::parse("spec.n=3")
                .unwrap()
                .matches(&obj, field_path_value)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
