use super::definition::{Definition, Kind};
use super::fields::{FieldMap, Fill, Slot, TAIL_ATTR};
use super::format_string::{self, Dialect, Tokenizer};
use super::{json, logfmt, otlp};
use crate::event::{Event, Origin, Source, Text};
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

/// A capture group's name and where its value goes.
struct Group {
    name: Text,
    slot: Option<Slot>,
}

/// What follows the pattern on a line (`tail` in a definition).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Tail {
    None,
    /// `key=value` pairs (nginx formats ending in `rid=$request_id ...`).
    Logfmt,
    /// One JSON object (zap's console encoder: the fields after the message).
    Json,
}

enum Imp {
    Regex {
        re: Regex,
        /// Per capture group (index 0 = whole match, unnamed groups = None).
        groups: Vec<Option<Group>>,
        tail: Tail,
        tokenizer: Option<Tokenizer>,
    },
    /// JSON lines, optionally behind a prefix (a CloudWatch export timestamp).
    Json {
        prefix: Option<Regex>,
    },
    Logfmt,
    Otlp,
}

/// A compiled definition, ready to parse lines.
pub struct Format {
    pub def: Definition,
    pub name: Arc<str>,
    /// The same name, as events carry it.
    pub event_name: Text,
    pub source: Source,
    /// `built-in` or the file it was loaded from.
    pub loaded_from: String,
    imp: Imp,
    fields: FieldMap,
    require: Vec<Vec<String>>,
    /// Per `require` entry, what each alternative's name ends with as written
    /// in JSON text: its last key segment and the closing quote (`code"`).
    require_written: Vec<Vec<String>>,
    continuation: Option<Regex>,
    context: Vec<Regex>,
}

impl std::fmt::Debug for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Format({})", self.name)
    }
}

const TAIL: &str = "__tail";

impl Format {
    pub fn compile(def: Definition, loaded_from: String) -> Result<Format> {
        let format = Self::build(def, loaded_from)?;
        format.check_samples()?;
        Ok(format)
    }

    /// A gateway's own format string, pasted by the user (`--log-format
    /// DIALECT:FORMAT`): compiled like a definition of that kind; it has no
    /// sample lines to check, its source of truth is the user's configuration.
    pub fn pasted(name: &str, dialect: &str, log_format: &str) -> Result<Format> {
        let kind = match dialect {
            "nginx" => Kind::Nginx,
            "apache" => Kind::Apache,
            "haproxy" => Kind::Haproxy,
            "envoy" => Kind::Envoy,
            other => bail!(
                "--log-format {other:?}: the dialect is one of nginx, apache, haproxy, envoy (e.g. 'nginx:$remote_addr - ...')"
            ),
        };
        let def = Definition {
            name: name.to_string(),
            title: format!("{dialect} format pasted with --log-format"),
            description: String::new(),
            reference: "the gateway's configuration (--log-format)".into(),
            source: "gateway".into(),
            kind,
            pattern: None,
            log_format: Some(log_format.to_string()),
            continuation: None,
            context: Vec::new(),
            line_prefix: None,
            tail: None,
            require: Vec::new(),
            fields: Default::default(),
            ids_in: Vec::new(),
            // nginx writes $time_local / $time_iso8601 when the request ends;
            // Apache %t, HAProxy %tr, Envoy START_TIME are its start.
            ts_is_end: kind == Kind::Nginx,
            // Preferred by detection over every built-in: the user said so.
            priority: 100,
            samples: Vec::new(),
        };
        Self::build(def, "--log-format".into())
            .with_context(|| format!("--log-format {dialect}:{log_format}"))
    }

    fn build(def: Definition, loaded_from: String) -> Result<Format> {
        let source: Source = def.source.parse().map_err(|e| anyhow!("source: {e}"))?;
        let tail = match def.tail.as_deref() {
            None => Tail::None,
            Some("logfmt") => Tail::Logfmt,
            Some("json") => Tail::Json,
            Some(other) => bail!("tail {other:?} is not supported (\"logfmt\" or \"json\")"),
        };
        let (imp, defaults) = match def.kind {
            Kind::Regex | Kind::Nginx | Kind::Envoy | Kind::Apache | Kind::Haproxy => {
                let dialect = match def.kind {
                    Kind::Nginx => Some(Dialect::Nginx),
                    Kind::Envoy => Some(Dialect::Envoy),
                    Kind::Apache => Some(Dialect::Apache),
                    Kind::Haproxy => Some(Dialect::Haproxy),
                    _ => None,
                };
                let (mut src, defaults) = match dialect {
                    Some(d) => {
                        let fmt = def
                            .log_format
                            .as_deref()
                            .ok_or_else(|| anyhow!("kind = {:?} needs log_format", def.kind))?;
                        let (src, vars) = format_string::compile(d, fmt).context("log_format")?;
                        (src, format_string::default_fields(d, &vars))
                    }
                    None => {
                        let p = def
                            .pattern
                            .clone()
                            .ok_or_else(|| anyhow!("kind = \"regex\" needs pattern"))?;
                        (p, Vec::new())
                    }
                };
                if let Some(prefix) = &def.line_prefix {
                    let body = src.strip_prefix('^').unwrap_or(&src);
                    let prefix = prefix.strip_prefix('^').unwrap_or(prefix);
                    src = format!("^{prefix}{body}");
                }
                match tail {
                    Tail::None => {}
                    Tail::Logfmt => src.push_str(&format!(r"(?: (?P<{TAIL}>.*))?")),
                    Tail::Json => src.push_str(&format!(r"(?:\s+(?P<{TAIL}>\{{.*\}}))?\s*$")),
                }
                if dialect.is_some() {
                    src.push('$');
                }
                let re = Regex::new(&src).with_context(|| format!("invalid pattern {src}"))?;
                let tokenizer = match (dialect, def.log_format.as_deref()) {
                    (Some(d), Some(f)) if def.line_prefix.is_none() => {
                        Tokenizer::compile(d, f, tail == Tail::Logfmt)?
                    }
                    _ => None,
                };
                (
                    Imp::Regex {
                        re,
                        groups: Vec::new(),
                        tail,
                        tokenizer,
                    },
                    defaults,
                )
            }
            Kind::Json => {
                let prefix = def
                    .line_prefix
                    .as_deref()
                    .map(|p| Regex::new(&format!("^(?:{})", p.strip_prefix('^').unwrap_or(p))))
                    .transpose()
                    .context("line_prefix")?;
                (Imp::Json { prefix }, Vec::new())
            }
            Kind::Logfmt => (Imp::Logfmt, Vec::new()),
            Kind::Otlp => (Imp::Otlp, Vec::new()),
        };
        let fields = FieldMap::compile(&def, &defaults)?;
        let mut imp = imp;
        if let Imp::Regex { re, groups, .. } = &mut imp {
            *groups = re
                .capture_names()
                .map(|n| {
                    n.map(|n| Group {
                        name: Text::from(n),
                        slot: fields.slot(n),
                    })
                })
                .collect();
        }
        if let Imp::Regex { groups, .. } = &imp {
            let names: Vec<&str> = groups.iter().flatten().map(|g| g.name.as_str()).collect();
            for (target, spec) in &def.fields {
                for key in spec.options().from {
                    let known = names.contains(&key.as_str());
                    if !known && tail == Tail::None {
                        let groups = &names;
                        bail!(
                            "field {target:?} reads {key:?}, but the pattern has no such group; groups: {}",
                            groups.join(", ")
                        );
                    }
                }
            }
        }
        let require: Vec<Vec<String>> = def
            .require
            .iter()
            .map(|r| r.split('|').map(str::to_string).collect())
            .collect();
        let require_written = require
            .iter()
            .map(|alts| {
                alts.iter()
                    .map(|a| format!("{}\"", a.rsplit('.').next().unwrap_or(a)))
                    .collect()
            })
            .collect();
        let continuation = def
            .continuation
            .as_deref()
            .map(Regex::new)
            .transpose()
            .context("continuation")?;
        let context = def
            .context
            .iter()
            .map(|c| Regex::new(c))
            .collect::<Result<Vec<_>, _>>()
            .context("context")?;
        let format = Format {
            continuation,
            context,
            name: Arc::from(def.name.as_str()),
            event_name: Text::from(def.name.as_str()),
            source,
            loaded_from,
            imp,
            fields,
            require,
            require_written,
            def,
        };
        Ok(format)
    }

    /// Whether a line that is no event is one the gateway writes beside its
    /// requests (a definition's `context` patterns).
    pub fn is_context(&self, line: &str) -> bool {
        self.context.iter().any(|r| r.is_match(line))
    }

    pub fn continuation(&self) -> Option<&Regex> {
        self.continuation.as_ref()
    }

    pub fn is_otlp(&self) -> bool {
        matches!(self.imp, Imp::Otlp)
    }

    /// How an OTLP definition maps decoded messages (the live receiver's) onto events.
    pub fn otlp_site<'a>(&'a self, origin: &'a Arc<str>, message: u64) -> otlp::Site<'a> {
        otlp::Site {
            fields: &self.fields,
            format: &self.event_name,
            file: origin,
            line: message,
        }
    }

    /// Parses one line (or one whole OTLP document) into events.
    pub fn parse(
        &self,
        text: &str,
        file: &Arc<str>,
        line: u64,
        out: &mut Vec<Event>,
    ) -> Result<(), String> {
        let base = || Event {
            source: Some(self.source),
            format: self.event_name.clone(),
            origin: Some(Origin {
                file: file.clone(),
                line,
                item: None,
            }),
            ..Default::default()
        };
        match &self.imp {
            Imp::Regex {
                re,
                groups,
                tail,
                tokenizer,
            } => {
                let mut ev = base();
                let mut fill = self.fields.start();
                let mut spans = Vec::with_capacity(groups.len());
                let split = tokenizer
                    .as_ref()
                    .and_then(|t| t.split(text.as_bytes(), &mut spans));
                let tail_at = match split {
                    Some(tail_at) => {
                        // Group i + 1 is variable i (group 0 is the whole match).
                        for (g, &(a, b)) in groups.iter().skip(1).zip(&spans) {
                            self.offer_group(g.as_ref(), &text[a..b], &mut fill, &mut ev);
                        }
                        tail_at.map(|t| &text[t..])
                    }
                    None => {
                        let caps = re
                            .captures(text)
                            .ok_or_else(|| format!("does not match format {}", self.name))?;
                        let mut tail_text = None;
                        for (i, g) in groups.iter().enumerate().skip(1) {
                            let Some(m) = caps.get(i) else { continue };
                            if *tail != Tail::None && g.as_ref().is_some_and(|g| g.name == TAIL) {
                                tail_text = Some(m.as_str());
                            } else {
                                self.offer_group(g.as_ref(), m.as_str(), &mut fill, &mut ev);
                            }
                        }
                        tail_text
                    }
                };
                if let (Some(t), Tail::Json) = (tail_at, *tail) {
                    // Read whole before anything is offered: a tail that is no
                    // JSON after all offers nothing, and is kept as it is.
                    let mut offered = Vec::new();
                    match json::visit_text(t, &mut |key, v| offered.push((key.to_string(), v))) {
                        Ok(()) => {
                            for (key, v) in offered {
                                self.fields.offer_key(&mut fill, &key, v, &mut ev);
                            }
                        }
                        // Kept, never dropped in silence.
                        Err(_) => ev.attributes.push((Text::from(TAIL_ATTR), t.to_string())),
                    }
                } else if let Some(t) = tail_at {
                    let (pairs, bare) = logfmt::split(t);
                    for (k, v) in pairs {
                        self.fields.offer_key(&mut fill, &k, v, &mut ev);
                    }
                    // Words the format does not name are kept, never dropped
                    // in silence; the file report counts the lines with them.
                    if !bare.is_empty() {
                        ev.attributes.push((Text::from(TAIL_ATTR), bare.join(" ")));
                    }
                }
                self.fields.finish(fill, &mut ev)?;
                out.push(ev);
            }
            Imp::Json { prefix } => {
                let mut ev = base();
                let mut fill = self.fields.start();
                let mut body = text;
                if let Some(re) = prefix {
                    if let Some(c) = re.captures(text) {
                        for name in re.capture_names().flatten() {
                            if let Some(m) = c.name(name) {
                                self.fields.offer_key(
                                    &mut fill,
                                    name,
                                    Cow::Borrowed(m.as_str()),
                                    &mut ev,
                                );
                            }
                        }
                        body = &text[c.get(0).map_or(0, |m| m.end())..];
                    }
                }
                if !body.trim_start().starts_with('{') {
                    return Err("not a JSON object".into());
                }
                // A required key whose name is nowhere in the text: no need to
                // read the document (detection tries every JSON definition on
                // every line, OTLP batches of 10 kB among them).
                self.check_present(self.keys_written(body))?;
                // Which `require` entries are present, as bits.
                let mut present = 0u64;
                json::visit_text(body, &mut |key, v| {
                    for (i, alts) in self.require.iter().enumerate() {
                        if !v.is_empty() && alts.iter().any(|a| a == key) {
                            present |= 1 << i;
                        }
                    }
                    self.fields.offer_key(&mut fill, key, v, &mut ev);
                })
                .map_err(|e| format!("invalid JSON: {e}"))?;
                self.check_present(present)?;
                self.fields.finish(fill, &mut ev)?;
                out.push(ev);
            }
            Imp::Logfmt => {
                let pairs = logfmt::pairs(text);
                self.check_required(&pairs)?;
                let mut ev = base();
                self.fields.apply(pairs, &mut ev)?;
                out.push(ev);
            }
            Imp::Otlp => {
                let signal = otlp::signal_of(text.trim_start())
                    .ok_or_else(|| "not an OTLP/JSON document".to_string())?;
                if signal != self.source {
                    return Err(format!("OTLP {} document, not {}", signal, self.source));
                }
                otlp::decode(
                    text,
                    signal,
                    &self.fields,
                    &self.event_name,
                    file,
                    line,
                    out,
                )?;
            }
        }
        Ok(())
    }

    fn offer_group<'a>(
        &self,
        g: Option<&Group>,
        value: &'a str,
        fill: &mut Fill<'a>,
        ev: &mut Event,
    ) {
        let Some(g) = g else { return };
        match g.slot {
            Some(slot) => fill.offer(slot, Cow::Borrowed(value)),
            None if !super::fields::is_missing(value) => {
                ev.attributes.push((g.name.clone(), value.to_string()))
            }
            None => {}
        }
    }

    fn check_required(&self, pairs: &[(Cow<str>, Cow<str>)]) -> Result<(), String> {
        let mut present = 0u64;
        for (i, alts) in self.require.iter().enumerate() {
            if alts
                .iter()
                .any(|a| pairs.iter().any(|(k, v)| k == a && !v.is_empty()))
            {
                present |= 1 << i;
            }
        }
        self.check_present(present)
    }

    /// Which `require` entries may be present, as bits: those with an
    /// alternative whose last key segment is written before a closing quote
    /// (`"status"` nested, `"http.status"` dotted). Text with escapes may
    /// spell a name otherwise, so it may hold them all.
    fn keys_written(&self, text: &str) -> u64 {
        if self.require.is_empty() || text.contains('\\') {
            return u64::MAX;
        }
        let mut present = 0u64;
        for (i, ends) in self.require_written.iter().enumerate() {
            if ends
                .iter()
                .any(|end| memchr::memmem::find(text.as_bytes(), end.as_bytes()).is_some())
            {
                present |= 1 << i;
            }
        }
        present
    }

    /// `present` has bit i set when `require[i]` was found.
    fn check_present(&self, present: u64) -> Result<(), String> {
        for (i, alts) in self.require.iter().enumerate() {
            if present & (1 << i) == 0 {
                return Err(format!(
                    "no field {} for format {}",
                    alts.join("|"),
                    self.name
                ));
            }
        }
        Ok(())
    }

    /// Every sample must parse and give the values it declares (as lnav does).
    fn check_samples(&self) -> Result<()> {
        if self.def.samples.is_empty() {
            bail!("format {} has no [[sample]]: add a real line", self.name);
        }
        let file: Arc<str> = Arc::from("sample");
        for (i, sample) in self.def.samples.iter().enumerate() {
            let mut events = Vec::new();
            self.parse(&sample.line, &file, 1, &mut events)
                .map_err(|e| anyhow!("sample {} does not parse: {e}", i + 1))?;
            let Some(ev) = events.first() else {
                bail!("sample {} produced no event", i + 1);
            };
            for (field, want) in &sample.expect {
                let got = ev.field_text(field);
                if got.as_deref() != Some(want.as_str()) {
                    bail!(
                        "sample {}: field {field} is {:?}, expected {want:?}",
                        i + 1,
                        got.unwrap_or_else(|| "(missing)".into())
                    );
                }
            }
        }
        Ok(())
    }
}

/// All loaded formats, built-in first, then the user's (which may replace a
/// built-in of the same name).
#[derive(Clone)]
pub struct Registry {
    pub formats: Vec<Arc<Format>>,
}

impl Registry {
    pub fn load(user_dir: Option<&Path>) -> Result<Registry> {
        let mut formats: Vec<Arc<Format>> = Vec::new();
        for (file, text) in super::embedded::PARSERS {
            let def: Definition =
                toml::from_str(text).with_context(|| format!("built-in parsers/{file}"))?;
            let f = Format::compile(def, "built-in".into())
                .with_context(|| format!("built-in parsers/{file}"))?;
            formats.push(Arc::new(f));
        }
        if let Some(dir) = user_dir {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read --parsers {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let def: Definition =
                    toml::from_str(&text).with_context(|| format!("{}", p.display()))?;
                let f = Format::compile(def, p.display().to_string())
                    .with_context(|| format!("{}", p.display()))?;
                formats.retain(|g| g.name != f.name);
                formats.push(Arc::new(f));
            }
        }
        Ok(Registry { formats })
    }

    /// Adds a format pasted with `--log-format`; detection prefers it.
    pub fn add(&mut self, format: Format) -> Arc<Format> {
        let f = Arc::new(format);
        self.formats.retain(|g| g.name != f.name);
        self.formats.push(f.clone());
        f
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Format>> {
        self.formats.iter().find(|f| &*f.name == name)
    }

    /// The format a user named (`--format PATH=NAME`), or an error that says
    /// where the names are listed.
    pub fn resolve(&self, name: &str) -> Result<Arc<Format>> {
        self.get(name).cloned().ok_or_else(|| {
            anyhow!("unknown format {name:?} in --format; `tracejoin formats` lists them")
        })
    }
}
