use super::definition::{Definition, Kind};
use super::fields::FieldMap;
use super::{json, logfmt, nginx, otlp};
use crate::event::{Event, Origin, Source};
use anyhow::{anyhow, bail, Context, Result};
use regex::Regex;
use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

enum Imp {
    Regex {
        re: Regex,
        names: Vec<Option<Arc<str>>>,
        tail: bool,
    },
    Json,
    Logfmt,
    Otlp,
}

/// A compiled definition, ready to parse lines.
pub struct Format {
    pub def: Definition,
    pub name: Arc<str>,
    pub source: Source,
    /// `built-in` or the file it was loaded from.
    pub loaded_from: String,
    imp: Imp,
    fields: FieldMap,
    require: Vec<Vec<String>>,
}

const TAIL: &str = "__tail";

impl Format {
    pub fn compile(def: Definition, loaded_from: String) -> Result<Format> {
        let source = Source::parse(&def.source).ok_or_else(|| {
            anyhow!(
                "source {:?} must be gateway, backend, span or otel_log",
                def.source
            )
        })?;
        let tail = match def.tail.as_deref() {
            None => false,
            Some("logfmt") => true,
            Some(other) => bail!("tail {other:?} is not supported (only \"logfmt\")"),
        };
        let (imp, defaults) = match def.kind {
            Kind::Regex | Kind::Nginx => {
                let (mut src, defaults) = if def.kind == Kind::Nginx {
                    let fmt = def
                        .log_format
                        .as_deref()
                        .ok_or_else(|| anyhow!("kind = \"nginx\" needs log_format"))?;
                    let (src, vars) = nginx::compile(fmt).context("log_format")?;
                    (src, nginx::default_fields(&vars))
                } else {
                    let p = def
                        .pattern
                        .clone()
                        .ok_or_else(|| anyhow!("kind = \"regex\" needs pattern"))?;
                    (p, Vec::new())
                };
                if tail {
                    src.push_str(&format!(r"(?: (?P<{TAIL}>.*))?"));
                }
                if def.kind == Kind::Nginx {
                    src.push('$');
                }
                let re = Regex::new(&src).with_context(|| format!("invalid pattern {src}"))?;
                let names = re.capture_names().map(|n| n.map(Arc::from)).collect();
                (Imp::Regex { re, names, tail }, defaults)
            }
            Kind::Json => (Imp::Json, Vec::new()),
            Kind::Logfmt => (Imp::Logfmt, Vec::new()),
            Kind::Otlp => (Imp::Otlp, Vec::new()),
        };
        let fields = FieldMap::compile(&def, &defaults)?;
        if let Imp::Regex { names, .. } = &imp {
            for (target, spec) in &def.fields {
                for key in spec.options().from {
                    let known = names.iter().flatten().any(|n| **n == *key);
                    if !known && !tail {
                        let groups: Vec<&str> = names.iter().flatten().map(|n| &**n).collect();
                        bail!(
                            "field {target:?} reads {key:?}, but the pattern has no such group; groups: {}",
                            groups.join(", ")
                        );
                    }
                }
            }
        }
        let require = def
            .require
            .iter()
            .map(|r| r.split('|').map(str::to_string).collect())
            .collect();
        let format = Format {
            name: Arc::from(def.name.as_str()),
            source,
            loaded_from,
            imp,
            fields,
            require,
            def,
        };
        format.check_samples()?;
        Ok(format)
    }

    pub fn is_otlp(&self) -> bool {
        matches!(self.imp, Imp::Otlp)
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
            format: self.name.clone(),
            origin: Some(Origin {
                file: file.clone(),
                line,
                item: None,
            }),
            ..Default::default()
        };
        match &self.imp {
            Imp::Regex { re, names, tail } => {
                let caps = re
                    .captures(text)
                    .ok_or_else(|| format!("does not match format {}", self.name))?;
                let mut pairs: Vec<(Cow<str>, Cow<str>)> = Vec::with_capacity(names.len() + 8);
                for (i, name) in names.iter().enumerate() {
                    let (Some(name), Some(m)) = (name, caps.get(i)) else {
                        continue;
                    };
                    if *tail && &**name == TAIL {
                        pairs.extend(logfmt::pairs(m.as_str()));
                    } else {
                        pairs.push((Cow::Owned(name.to_string()), Cow::Borrowed(m.as_str())));
                    }
                }
                let mut ev = base();
                self.fields.apply(pairs, &mut ev)?;
                out.push(ev);
            }
            Imp::Json => {
                let trimmed = text.trim_start();
                if !trimmed.starts_with('{') {
                    return Err("not a JSON object".into());
                }
                let value: serde_json::Value =
                    serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
                let mut pairs = Vec::with_capacity(16);
                json::flatten(&value, &mut pairs);
                self.check_required(&pairs)?;
                let mut ev = base();
                self.fields.apply(pairs, &mut ev)?;
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
                otlp::decode(text, signal, &self.fields, &self.name, file, line, out)?;
            }
        }
        Ok(())
    }

    fn check_required(&self, pairs: &[(Cow<str>, Cow<str>)]) -> Result<(), String> {
        for alts in &self.require {
            let present = alts
                .iter()
                .any(|a| pairs.iter().any(|(k, v)| k == a && !v.is_empty()));
            if !present {
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

    pub fn get(&self, name: &str) -> Option<&Arc<Format>> {
        self.formats.iter().find(|f| &*f.name == name)
    }
}
