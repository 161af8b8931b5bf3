//! Checking a configuration text and reporting every problem at once, each with its line
//! and column: an operator fixing a file should not have to run the check once per typo.
//!
//! serde stops at the first error, so the text is parsed once into a document that keeps
//! the byte span of every key and value, then deserialized repeatedly: after each error the
//! key (or table) it points at is taken out and the rest is tried again. Only a text that
//! deserializes without error goes on to the rules spanning several fields
//! ([`Config::violations`], located through the same document) and, when asked, to loading
//! the certificate, key and CA files it names.

use std::ops::Range;
use std::path::PathBuf;

use toml_edit::{ImDocument, Item, Table, TableLike, Value};

use super::config::{Config, Place, PlaceStep, Violation};

/// Whether [`check`] loads the files a configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChecks {
    /// Rules only (unit tests, reading the state directory of another process).
    Skip,
    /// Every certificate, key and CA file must load, as `sipwire run` needs them.
    Load,
}

/// A line and column (both from 1; the column counts characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Line.
    pub line: usize,
    /// Column.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text`.
    pub fn of(text: &str, offset: usize) -> Position {
        let offset = offset.min(text.len());
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }
}

/// What is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ProblemKind {
    /// The text is not TOML.
    #[error("{}", one_line(.0.message()))]
    Syntax(toml_edit::TomlError),
    /// A key is unknown, a value has the wrong type, or a required key is missing.
    #[error("{}", one_line(.0.message()))]
    Schema(toml_edit::de::Error),
    /// A rule spanning several fields is broken.
    #[error(transparent)]
    Rule(#[from] Violation),
    /// A certificate, key or CA file does not load.
    #[error("{what} {}: {source}; expected a readable PEM file", path.display())]
    File {
        /// Which file (e.g. `listener tls cert`).
        what: String,
        /// The path as configured.
        path: PathBuf,
        /// Why it does not load.
        source: sipwire::tls::TlsError,
    },
}

/// toml's messages may span lines ("invalid table header\nexpected ..."); a report keeps
/// one line per problem.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// One problem and where it is.
#[derive(Debug)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// Where, when the text says (a rule broken by a default value has no place).
    pub at: Option<Position>,
    /// The byte range it points at.
    pub span: Option<Range<usize>>,
}

/// A configuration text that cannot be used: every problem found.
#[derive(Debug)]
pub struct Invalid {
    /// The file name (or a description such as `<embedded default>`).
    pub origin: String,
    /// The text checked.
    pub text: String,
    /// The problems, in order of position.
    pub problems: Vec<Problem>,
}

impl std::fmt::Display for Invalid {
    /// One line per problem, `FILE:LINE:COLUMN: message`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{}: {n} problem{}",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n{}", self.line_of(p))?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl Invalid {
    /// `FILE:LINE:COLUMN: message` (or `FILE: message` without a position).
    pub fn line_of(&self, p: &Problem) -> String {
        match p.at {
            Some(at) => format!("{}:{}:{}: {}", self.origin, at.line, at.column, p.kind),
            None => format!("{}: {}", self.origin, p.kind),
        }
    }

    /// Every problem with the line it points at and a caret under the column, the way
    /// compilers show them.
    pub fn render_with_source(&self) -> String {
        let mut out = String::new();
        for p in &self.problems {
            out.push_str("error: ");
            out.push_str(&self.line_of(p));
            out.push('\n');
            if let Some(at) = p.at {
                let line = self.text.lines().nth(at.line - 1).unwrap_or("");
                let gutter = at.line.to_string().len();
                out.push_str(&format!("{:gutter$} |\n", ""));
                out.push_str(&format!("{} | {line}\n", at.line));
                let width = p
                    .span
                    .as_ref()
                    .and_then(|s| self.text.get(s.clone()))
                    .map_or(1, |t| t.lines().next().unwrap_or("").chars().count().max(1));
                let width = width.min(line.chars().count().saturating_sub(at.column - 1).max(1));
                out.push_str(&format!(
                    "{:gutter$} | {:pad$}{}\n",
                    "",
                    "",
                    "^".repeat(width),
                    pad = at.column - 1
                ));
            }
        }
        out
    }
}

/// Parses `text`, deserializes it, checks the rules and (with [`FileChecks::Load`]) the
/// files; returns the configuration or every problem found. `origin` names the text in
/// messages.
pub fn check(text: &str, origin: &str, files: FileChecks) -> Result<Config, Invalid> {
    let mut found: Vec<(ProblemKind, Option<Range<usize>>)> = Vec::new();
    let cfg = match ImDocument::parse(text) {
        Err(e) => {
            let span = e.span();
            found.push((ProblemKind::Syntax(e), span));
            None
        }
        Ok(doc) => {
            let cfg = deserialize_all(doc.as_table(), &mut found);
            if let Some(cfg) = &cfg {
                for (v, place) in cfg.violations() {
                    found.push((ProblemKind::Rule(v), span_of(doc.as_item(), &place)));
                }
                if files == FileChecks::Load {
                    for (kind, place) in file_problems(cfg) {
                        found.push((kind, span_of(doc.as_item(), &place)));
                    }
                }
            }
            cfg
        }
    };
    match cfg {
        Some(cfg) if found.is_empty() => Ok(cfg),
        _ => {
            found.sort_by_key(|(_, span)| span.as_ref().map_or(usize::MAX, |s| s.start));
            let problems = found
                .into_iter()
                .map(|(kind, span)| Problem {
                    at: span.as_ref().map(|s| Position::of(text, s.start)),
                    kind,
                    span,
                })
                .collect();
            Err(Invalid {
                origin: origin.to_owned(),
                text: text.to_owned(),
                problems,
            })
        }
    }
}

/// Most deserialization attempts one text gets (each removes one key or table).
const MAX_ATTEMPTS: usize = 256;

/// Deserializes `root`, recording each error and removing what it points at before trying
/// again; the configuration when an attempt succeeds with nothing recorded.
fn deserialize_all(
    root: &Table,
    found: &mut Vec<(ProblemKind, Option<Range<usize>>)>,
) -> Option<Config> {
    let mut table = root.clone();
    // Tables a key was removed from: their "missing field" errors that follow are
    // consequences of the error already reported, not news.
    let mut trimmed: Vec<Range<usize>> = Vec::new();
    for _ in 0..MAX_ATTEMPTS {
        let doc = toml_edit::DocumentMut::from(table.clone());
        let e = match toml_edit::de::from_document::<Config>(doc) {
            Ok(cfg) => return found.is_empty().then_some(cfg),
            Err(e) => e,
        };
        let span = e.span();
        let removed = span
            .as_ref()
            .and_then(|s| remove_at(&mut table, s.start, &mut trimmed));
        match removed {
            Some(Removed::Table(t)) if trimmed.contains(&t) => {}
            Some(_) => found.push((ProblemKind::Schema(e), span)),
            None => {
                found.push((ProblemKind::Schema(e), span));
                return None;
            }
        }
    }
    None
}

/// What [`remove_at`] took out.
enum Removed {
    /// A key and its value, from a table with this span (if it has one).
    Entry,
    /// A whole table with this span (its header).
    Table(Range<usize>),
}

fn contains(span: Option<Range<usize>>, pos: usize) -> bool {
    span.is_some_and(|s| s.contains(&pos) || (s.is_empty() && s.start == pos))
}

/// Removes from `table` the innermost key whose key or value covers byte `pos`, or the
/// innermost table whose header does; `None` if nothing does.
fn remove_at(
    table: &mut dyn TableLike,
    pos: usize,
    trimmed: &mut Vec<Range<usize>>,
) -> Option<Removed> {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_owned()).collect();
    for k in keys {
        let key_span = table.key(&k).and_then(|k| k.span());
        let item = table.get_mut(&k)?;
        // Inside a nested table first: the innermost match wins.
        match item {
            Item::Table(t) => {
                if let Some(r) = remove_at(t, pos, trimmed) {
                    if let (Removed::Entry, Some(s)) = (&r, t.span()) {
                        trimmed.push(s);
                    }
                    return Some(r);
                }
                if contains(t.span(), pos) {
                    let s = t.span().unwrap_or_default();
                    table.remove(&k);
                    return Some(Removed::Table(s));
                }
            }
            Item::ArrayOfTables(a) => {
                for i in 0..a.len() {
                    let Some(t) = a.get_mut(i) else { continue };
                    if let Some(r) = remove_at(t, pos, trimmed) {
                        if let (Removed::Entry, Some(s)) = (&r, t.span()) {
                            trimmed.push(s);
                        }
                        return Some(r);
                    }
                    if contains(t.span(), pos) {
                        let s = t.span().unwrap_or_default();
                        a.remove(i);
                        return Some(Removed::Table(s));
                    }
                }
            }
            Item::Value(Value::InlineTable(t)) => {
                if let Some(r) = remove_at(t, pos, trimmed) {
                    if let (Removed::Entry, Some(s)) = (&r, t.span()) {
                        trimmed.push(s);
                    }
                    return Some(r);
                }
            }
            _ => {}
        }
        if contains(key_span, pos) || contains(item.span(), pos) {
            table.remove(&k);
            return Some(Removed::Entry);
        }
    }
    None
}

/// A step of the walk in [`span_of`]: array-of-tables elements are tables, not items.
#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn table_like(self) -> Option<&'a dyn TableLike> {
        match self {
            Node::Item(i) => i.as_table_like(),
            Node::Table(t) => Some(t),
            Node::Value(v) => v.as_inline_table().map(|t| t as &dyn TableLike),
        }
    }

    fn element(self, i: usize) -> Option<(Node<'a>, Option<Range<usize>>)> {
        match self {
            Node::Item(Item::ArrayOfTables(a)) => a.get(i).map(|t| (Node::Table(t), t.span())),
            Node::Item(Item::Value(Value::Array(a))) | Node::Value(Value::Array(a)) => {
                a.get(i).map(|v| (Node::Value(v), v.span()))
            }
            _ => None,
        }
    }
}

/// The span `place` points at in the document: the deepest key or element written there
/// (a default value is not in the text, so a rule it breaks points at its table).
fn span_of(root: &Item, place: &Place) -> Option<Range<usize>> {
    let mut node = Node::Item(root);
    let mut best = None;
    for step in &place.0 {
        match step {
            PlaceStep::Key(k) => {
                let Some((key, value)) = node.table_like().and_then(|t| t.get_key_value(k)) else {
                    break;
                };
                best = key.span().or(best);
                node = Node::Item(value);
            }
            PlaceStep::Index(i) => {
                let Some((next, span)) = node.element(*i) else {
                    break;
                };
                best = span.or(best);
                node = next;
            }
        }
    }
    best
}

/// Loads every certificate, key and CA file `cfg` names; the failures and where they are
/// configured.
fn file_problems(cfg: &Config) -> Vec<(ProblemKind, Place)> {
    use sipwire::tls::material;
    let mut out = Vec::new();
    let mut pair = |what: String, cert: &PathBuf, key: &PathBuf, place: Place| {
        if let Err(e) = material::load_certs(cert) {
            out.push((
                ProblemKind::File {
                    what: format!("{what} cert"),
                    path: cert.clone(),
                    source: e,
                },
                place.clone().child("cert"),
            ));
        } else if let Err(e) = material::load_certified_key(cert, key) {
            out.push((
                ProblemKind::File {
                    what: format!("{what} key"),
                    path: key.clone(),
                    source: e,
                },
                place.child("key"),
            ));
        }
    };
    for (i, l) in cfg.listeners.iter().enumerate() {
        if let (Some(c), Some(k)) = (&l.cert, &l.key) {
            pair(format!("listener {}", l.name), c, k, Place::listener(i));
        }
    }
    for (i, d) in cfg.tls.domains.iter().enumerate() {
        pair(
            format!("[[tls.domains]] {}", d.name),
            &d.cert,
            &d.key,
            Place::tls_domain(i),
        );
    }
    if let (Some(c), Some(k)) = (&cfg.tls.client_cert, &cfg.tls.client_key) {
        let place = Place::key("tls");
        if let Err(e) = material::load_certs(c) {
            out.push((
                ProblemKind::File {
                    what: "[tls] client_cert".to_owned(),
                    path: c.clone(),
                    source: e,
                },
                place.child("client_cert"),
            ));
        } else if let Err(e) = material::load_certified_key(c, k) {
            out.push((
                ProblemKind::File {
                    what: "[tls] client_key".to_owned(),
                    path: k.clone(),
                    source: e,
                },
                place.child("client_key"),
            ));
        }
    }
    for (i, ca) in cfg.tls.ca_files.iter().enumerate() {
        if let Err(e) = material::load_roots(std::iter::once(ca.as_path())) {
            out.push((
                ProblemKind::File {
                    what: "[tls] ca_files".to_owned(),
                    path: ca.clone(),
                    source: e,
                },
                Place::key("tls")
                    .child("ca_files")
                    .then(PlaceStep::Index(i)),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let e = check(text, "f.toml", FileChecks::Skip).unwrap_err();
        eprintln!("{}", e.render_with_source());
        e.problems.iter().map(|p| e.line_of(p)).collect()
    }

    #[test]
    fn every_schema_error_is_reported_with_its_position() {
        let p = problems("bogus = 1\n[limits]\nmax_message = 'x'\nfoo = 2\n");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("f.toml:1:1: unknown field `bogus`, expected one of `listener`"));
        assert_eq!(
            p[1],
            "f.toml:3:15: invalid type: string \"x\", expected usize"
        );
        assert!(p[2].starts_with("f.toml:4:1: unknown field `foo`, expected one of"));
    }

    #[test]
    fn a_removed_key_does_not_also_count_as_missing() {
        let p = problems(
            "[[listener]]\nname = 'a'\ntransport = 'pigeon'\naddr = '127.0.0.1:1'\n\
             [[listener]]\nname = 'b'\ntransport = 'tcp'\n",
        );
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("f.toml:3:13: unknown variant `pigeon`, expected one of `udp`"));
        assert_eq!(p[1], "f.toml:5:1: missing field `addr`");
    }

    #[test]
    fn nested_and_inline_values_are_located() {
        let p = problems(
            "[tls]\nalpn = ['x', 3]\nca_files = 'y'\n[[tls.domains]]\nname = 1\ncert='a'\nkey='b'\n",
        );
        assert_eq!(
            p,
            [
                "f.toml:2:14: invalid type: integer `3`, expected a string",
                "f.toml:3:12: invalid type: string \"y\", expected a sequence",
                "f.toml:5:8: invalid type: integer `1`, expected a string",
            ]
        );
        let p = problems("limits = { max_message = 'x' }\n");
        assert_eq!(
            p,
            ["f.toml:1:26: invalid type: string \"x\", expected usize"]
        );
    }

    #[test]
    fn every_rule_is_reported_at_its_key_or_table() {
        let p = problems(
            "[[listener]]\nname = 'a'\ntransport = 'tcp'\naddr = '127.0.0.1:1'\n\
             [[listener]]\nname = 'b'\ntransport = 'tcp'\naddr = '127.0.0.1:1'\n\
             [[listener]]\nname = 'c'\ntransport = 'tls'\naddr = '127.0.0.1:2'\n\
             [limits]\nidle_timeout_secs = 3\n",
        );
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("f.toml:8:1: listeners a and b both bind tcp 127.0.0.1:1"));
        assert!(p[1].starts_with("f.toml:9:1: listener c: TLS without a certificate"));
        assert!(p[2].starts_with("f.toml:14:1: idle_timeout_secs = 3 is below 64*T1"));
    }

    #[test]
    fn syntax_errors_are_one_line() {
        assert_eq!(
            problems("[limits\nx=1\n"),
            ["f.toml:1:8: invalid table header; expected `.`, `]`"]
        );
    }

    #[test]
    fn positions_count_characters() {
        let t = "a\nbé = 1\n";
        assert_eq!(Position::of(t, 0), Position { line: 1, column: 1 });
        assert_eq!(Position::of(t, 2), Position { line: 2, column: 1 });
        assert_eq!(Position::of(t, 5), Position { line: 2, column: 3 });
    }

    #[test]
    fn unreadable_files_are_reported_where_configured() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        // Also beside a broken rule: the files are checked whenever the text deserializes.
        let text = format!(
            "[[listener]]\nname = 's'\ntransport = 'tls'\naddr = '127.0.0.1:0'\n\
             cert = '{0}'\nkey = '{0}'\n[tls]\nca_files = ['{0}']\n\
             [limits]\nmax_headers = 0\n",
            missing.display()
        );
        let e = check(&text, "f.toml", FileChecks::Load).unwrap_err();
        let p: Vec<String> = e.problems.iter().map(|p| e.line_of(p)).collect();
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("f.toml:5:1: listener s cert "), "{p:?}");
        assert!(p[1].starts_with("f.toml:8:13: [tls] ca_files "), "{p:?}");
        assert!(
            p[2].starts_with("f.toml:10:1: limit max_headers = 0"),
            "{p:?}"
        );
        let e = check(&text, "f.toml", FileChecks::Skip).unwrap_err();
        assert_eq!(e.problems.len(), 1);
    }
}
