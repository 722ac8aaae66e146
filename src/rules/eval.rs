use super::blame::blame;
use super::causal::Causal;
use super::pack::{Pack, RuleDef};
use super::{Evidence, Label, Verdict};
use crate::correlate::Request;
use crate::event::{Event, FieldValue, Kind, Source, Text, DERIVED_FIELDS, FIELDS};
use anyhow::{anyhow, bail, Context as _, Result};
use cel::{Context, Env, Program, Value};
use regex::Regex;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct CompiledRule {
    pub def: RuleDef,
    /// Pack file the rule came from (`built-in` or a path).
    pub pack: String,
    when: Option<Program>,
    evidence: Option<Program>,
}

/// All loaded rules, sorted by priority (highest first), and their patterns.
pub struct Engine {
    env: Arc<Env>,
    pub rules: Vec<CompiledRule>,
    patterns: Arc<HashMap<String, Regex>>,
    /// The fields the rules read; `None` when a rule reads whole objects, which
    /// turns memoisation off.
    refs: Option<Refs>,
    /// Decisions by memo key, one shard per worker thread (plus one for
    /// threads outside the pool), so that lookups never contend.
    memos: Vec<std::sync::Mutex<Memo>>,
    empty_event: Value,
    /// Conditions that raised an error (e.g. a type mismatch): counted, shown.
    pub errors: AtomicU64,
    pub first_error: std::sync::Mutex<Option<String>>,
}

/// A per-thread evaluation context (CEL contexts are not shared across threads).
pub struct Evaluator {
    root: Context<'static, 'static>,
}

type Memo = HashMap<String, Decision>;

/// Memo entries kept per thread before the memo starts over.
const MEMO_CAP: usize = 100_000;

/// The rules that fired on a request, in priority order, with the events
/// each matched. Every `causal` rule is tried; other rules until the first
/// that fires and the next one of another label. Which one wins is settled
/// per request ([`Engine::choose`]): it depends on the span tree and times,
/// which the memo key does not hold.
#[derive(Debug, Clone, Default)]
struct Decision {
    fired: Vec<(usize, Vec<usize>)>,
}

/// The rule that won on one request, the events it cites, the rules of other
/// labels it outranked with theirs, and the causal order when it decided.
struct Choice {
    winner: usize,
    matched: Vec<usize>,
    outranked: Vec<(usize, Vec<usize>)>,
    causal: Causal,
    /// Whether the causal order decided (the winner is a causal rule).
    by_causal_order: bool,
}

/// Field names the rules read, per variable.
#[derive(Debug, Default)]
struct Refs {
    request: Vec<String>,
    gateway: Vec<String>,
    server_span: Vec<String>,
    e: Vec<String>,
}

const REQUEST_FIELDS: &[&str] = &[
    "status",
    "failed",
    "method",
    "host",
    "path",
    "route",
    "service",
    "consumer",
    "duration_ms",
    "flags",
    "sources",
];

/// The event's fields, as rules see them: the schema's and the derived ones.
const EVENT: Option<&[&str]> = None;

fn event_field_known(name: &str) -> bool {
    crate::event::field(name).is_some()
        || DERIVED_FIELDS.contains(&name)
        || name.starts_with("attr.")
}

/// Finds the fields each rule reads, so that a verdict can be memoised on
/// exactly those values. Any use of a whole object (`events`, `size(gateway)`)
/// or an unknown field disables the memo.
fn references<'a>(sources: impl Iterator<Item = &'a str>) -> Option<Refs> {
    let literals = Regex::new(r#"'[^']*'|"[^"]*""#).unwrap();
    let idents = Regex::new(
        r"\b(request|gateway|server_span|events|e)\b(\.[A-Za-z_][A-Za-z0-9_]*)?(\.[A-Za-z_][A-Za-z0-9_]*)?",
    )
    .unwrap();
    let mut refs = Refs::default();
    for src in sources {
        let code = literals.replace_all(src, "''");
        for c in idents.captures_iter(&code) {
            let mut field = c.get(2)?.as_str()[1..].to_string();
            // One attribute by name (`gateway.attributes.ft`) is one memo
            // field, not the whole map.
            if let (true, Some(name)) = (field == "attributes", c.get(3)) {
                field = format!("attr.{}", &name.as_str()[1..]);
            }
            let (list, known) = match &c[1] {
                "request" => (&mut refs.request, Some(REQUEST_FIELDS)),
                "gateway" => (&mut refs.gateway, EVENT),
                "server_span" => (&mut refs.server_span, EVENT),
                "e" => (&mut refs.e, EVENT),
                _ => return None,
            };
            let known = match known {
                Some(list) => list.contains(&field.as_str()),
                None => event_field_known(&field),
            };
            if !known {
                return None;
            }
            if !list.contains(&field) {
                list.push(field);
            }
        }
    }
    Some(refs)
}

impl Engine {
    pub fn load(user_dir: Option<&Path>) -> Result<Engine> {
        let mut packs: Vec<(String, Pack)> = Vec::new();
        for (file, text) in super::embedded::RULES {
            let pack: Pack =
                toml::from_str(text).with_context(|| format!("built-in rules/{file}"))?;
            packs.push(("built-in".into(), pack));
        }
        if let Some(dir) = user_dir {
            let mut paths: Vec<_> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read --rules {}", dir.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let pack: Pack = toml::from_str(&text).with_context(|| p.display().to_string())?;
                packs.push((p.display().to_string(), pack));
            }
        }
        Engine::from_packs(packs)
    }

    pub fn from_packs(packs: Vec<(String, Pack)>) -> Result<Engine> {
        let env = Arc::new(Env::stdlib());
        let mut patterns = HashMap::new();
        let mut rules: Vec<CompiledRule> = Vec::new();
        for (origin, pack) in packs {
            for (name, src) in &pack.patterns {
                let re = Regex::new(src)
                    .with_context(|| format!("{origin}: pattern {name:?} is not a valid regex"))?;
                patterns.insert(name.clone(), re);
            }
            for def in pack.rules {
                let compile = |what: &str, src: &Option<String>| -> Result<Option<Program>> {
                    src.as_deref()
                        .map(|s| {
                            env.compile(s).map_err(|e| {
                                anyhow!(
                                    "{origin}: rule {:?}: {what} does not compile: {e}",
                                    def.name
                                )
                            })
                        })
                        .transpose()
                };
                let when = compile("when", &def.when)?;
                let evidence = compile("evidence", &def.evidence)?;
                // A user rule with the same name replaces the built-in one.
                rules.retain(|r| r.def.name != def.name);
                rules.push(CompiledRule {
                    def,
                    pack: origin.clone(),
                    when,
                    evidence,
                });
            }
        }
        // Check that every `like(_, 'name')` names a pattern.
        let like_re = Regex::new(r#"like\([^,]+,\s*['"]([^'"]+)['"]\)"#).unwrap();
        for r in &rules {
            for src in [&r.def.when, &r.def.evidence].into_iter().flatten() {
                for c in like_re.captures_iter(src) {
                    if !patterns.contains_key(&c[1]) {
                        bail!(
                            "rule {:?} uses pattern {:?}, which no pack defines",
                            r.def.name,
                            &c[1]
                        );
                    }
                }
            }
        }
        rules.sort_by_key(|r| std::cmp::Reverse(r.def.priority));
        let refs = references(
            rules
                .iter()
                .flat_map(|r| [r.def.when.as_deref(), r.def.evidence.as_deref()])
                .flatten(),
        );
        Ok(Engine {
            env,
            refs,
            memos: (0..=rayon::current_num_threads())
                .map(|_| std::sync::Mutex::new(Memo::default()))
                .collect(),
            empty_event: event_value(&Event::default()),
            rules,
            patterns: Arc::new(patterns),
            errors: AtomicU64::new(0),
            first_error: std::sync::Mutex::new(None),
        })
    }

    /// Evaluates every request afresh (for checking the memo).
    pub fn disable_memo(&mut self) {
        self.refs = None;
    }

    pub fn evaluator(&self) -> Evaluator {
        let mut root = Context::with_env(self.env.clone());
        let patterns = self.patterns.clone();
        root.add_function("like", move |text: Value, name: Arc<String>| -> bool {
            match (&text, patterns.get(name.as_str())) {
                (Value::String(s), Some(re)) => re.is_match(s),
                _ => false,
            }
        })
        .expect("`like` does not clash with the CEL standard library");
        Evaluator { root }
    }

    /// The values of every field the rules read, as one memo key.
    fn memo_key(&self, req: &Request) -> Option<String> {
        let refs = self.refs.as_ref()?;
        let mut k = String::with_capacity(64);
        // Which event is the gateway's and which the entry span decide the
        // default evidence: part of the key, with every event's source.
        let _ = write!(k, "{:?}{:?}", req.gateway, req.server_span);
        for e in &req.events {
            k.push_str(e.source().as_str());
        }
        for f in &refs.request {
            k.push_str(&req.field_text(f).unwrap_or_default());
            k.push('\x1f');
        }
        for (e, fields) in [
            (req.gateway_event(), &refs.gateway),
            (req.server_span_event(), &refs.server_span),
        ] {
            k.push('\x1e');
            if let Some(e) = e {
                for f in fields {
                    k.push_str(&e.field_text(f).unwrap_or_default());
                    k.push('\x1f');
                }
            }
        }
        if !refs.e.is_empty() {
            for e in &req.events {
                k.push('\x1e');
                for f in &refs.e {
                    k.push_str(&e.field_text(f).unwrap_or_default());
                    k.push('\x1f');
                }
            }
        }
        Some(k)
    }

    fn record_error(&self, rule: &str, what: &str, e: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(format!("rule {rule:?} {what}: {e}"));
        }
    }

    /// Labels a failed request; `None` for a request that did not fail.
    pub fn evaluate(&self, ev: &Evaluator, req: &Request) -> Option<Verdict> {
        if !req.failed {
            return None;
        }
        let decision = match self.memo_key(req) {
            Some(key) => {
                let shard = rayon::current_thread_index()
                    .unwrap_or(self.memos.len() - 1)
                    .min(self.memos.len() - 1);
                let mut memo = self.memos[shard].lock().unwrap_or_else(|p| p.into_inner());
                match memo.get(&key) {
                    Some(d) => d.clone(),
                    None => {
                        let d = self.decide(ev, req);
                        if memo.len() >= MEMO_CAP {
                            memo.clear();
                        }
                        memo.insert(key, d.clone());
                        d
                    }
                }
            }
            None => self.decide(ev, req),
        };
        Some(match self.choose(req, decision) {
            Some(c) => self.verdict(req, c),
            None => unknown_verdict(req),
        })
    }

    /// Runs the rules in priority order (CEL): which fire, on which events.
    fn decide(&self, ev: &Evaluator, req: &Request) -> Decision {
        let events: Vec<Value> = req.events.iter().map(event_value).collect();
        let mut scope = ev.root.new_inner_scope();
        scope.add_variable_from_value("request", request_value(req));
        scope.add_variable_from_value(
            "gateway",
            req.gateway_event()
                .map(event_value)
                .unwrap_or_else(|| self.empty_event.clone()),
        );
        scope.add_variable_from_value(
            "server_span",
            req.server_span_event()
                .map(event_value)
                .unwrap_or_else(|| self.empty_event.clone()),
        );
        scope.add_variable_from_value("events", Value::List(Arc::new(events.clone())));

        // One scope per event with `e` bound, made when the first evidence
        // condition runs and shared by every rule after it: binding converts
        // the whole event, which would otherwise be done rule by rule.
        let mut per_event: Vec<Context> = Vec::new();
        let mut fired: Vec<(usize, Vec<usize>)> = Vec::new();
        // The first non-causal rule that fired, and whether a later one of
        // another label did too: then no further non-causal rule matters.
        let mut first_plain: Option<Label> = None;
        let mut plain_done = false;
        for (idx, rule) in self.rules.iter().enumerate() {
            if !rule.def.causal && (plain_done || first_plain == Some(rule.def.label)) {
                continue;
            }
            if let Some(when) = &rule.when {
                match when.execute(&scope) {
                    Ok(Value::Bool(true)) => {}
                    Ok(Value::Bool(false)) => continue,
                    Ok(other) => {
                        self.record_error(
                            &rule.def.name,
                            "when",
                            format!("gave {other:?}, not a bool"),
                        );
                        continue;
                    }
                    Err(e) => {
                        self.record_error(&rule.def.name, "when", e);
                        continue;
                    }
                }
            }
            let matched: Vec<usize> = match &rule.evidence {
                None => vec![req.gateway.or(req.server_span).unwrap_or(0)],
                Some(prog) => {
                    if per_event.is_empty() {
                        per_event = events
                            .iter()
                            .map(|e| {
                                let mut inner = scope.new_inner_scope();
                                inner.add_variable_from_value("e", e.clone());
                                inner
                            })
                            .collect();
                    }
                    let mut m = Vec::new();
                    for (i, inner) in per_event.iter().enumerate() {
                        match prog.execute(inner) {
                            Ok(Value::Bool(true)) => m.push(i),
                            Ok(_) => {}
                            Err(err) => self.record_error(&rule.def.name, "evidence", err),
                        }
                    }
                    if m.is_empty() {
                        continue;
                    }
                    m
                }
            };
            if !rule.def.causal {
                match first_plain {
                    None => first_plain = Some(rule.def.label),
                    Some(_) => plain_done = true,
                }
            }
            fired.push((idx, matched));
        }
        Decision { fired }
    }

    /// The winning rule and its evidence, and the outranked rules of other
    /// labels with theirs. Evidence the request recovered from (a retried call
    /// that then succeeded) is set aside first. When the best rule is causal,
    /// every causal rule competes by the causal order of its first evidence;
    /// equal ones by priority.
    fn choose(&self, req: &Request, d: Decision) -> Option<Choice> {
        let causal = Causal::of(req);
        let fired: Vec<(usize, Vec<usize>)> = d
            .fired
            .into_iter()
            .filter_map(|(r, mut m)| {
                if self.rules[r].def.evidence.is_some() {
                    m.retain(|&i| !causal.recovered(i));
                }
                (!m.is_empty()).then_some((r, m))
            })
            .collect();
        let top = fired.first()?.0;
        let (win, by_causal_order) = if self.rules[top].def.causal {
            let mut best: Option<(usize, usize)> = None; // (position in fired, first event)
            for (pos, (r, m)) in fired.iter().enumerate() {
                if !self.rules[*r].def.causal {
                    continue;
                }
                let first = causal.first(m).expect("matched is not empty");
                if best.is_none_or(|(_, b)| causal.precedes(first, b)) {
                    best = Some((pos, first));
                }
            }
            (best.expect("the top rule is causal").0, true)
        } else {
            (0, false)
        };
        let mut fired = fired;
        let (winner, matched) = fired.remove(win);
        let label = self.rules[winner].def.label;
        let mut outranked: Vec<(usize, Vec<usize>)> = Vec::new();
        for (r, m) in fired {
            let l = self.rules[r].def.label;
            if l == label || outranked.iter().any(|(o, _)| self.rules[*o].def.label == l) {
                continue;
            }
            // A causal winner lists every other cause the services gave; a
            // plain one the best rule of another label.
            if by_causal_order && !self.rules[r].def.causal && !outranked.is_empty() {
                continue;
            }
            outranked.push((r, m));
            if !by_causal_order {
                break;
            }
        }
        Some(Choice {
            winner,
            matched,
            outranked,
            causal,
            by_causal_order,
        })
    }

    fn verdict(&self, req: &Request, c: Choice) -> Verdict {
        let Choice {
            winner,
            mut matched,
            outranked,
            causal,
            by_causal_order,
        } = c;
        let rule = &self.rules[winner];
        let order = by_causal_order.then_some(&causal);
        match order {
            // The cause first: the event that started the failure.
            Some(c) => matched.sort_by(|&a, &b| {
                if a == b {
                    std::cmp::Ordering::Equal
                } else if c.precedes(a, b) {
                    std::cmp::Ordering::Less
                } else {
                    std::cmp::Ordering::Greater
                }
            }),
            // Cite what the services said first: a log line explains better than a span name.
            None => matched.sort_by_key(|&i| match req.events[i].source() {
                Source::Backend | Source::OtelLog => 0,
                Source::Span => 1,
                Source::GatewayLog => 2,
                Source::Gateway => 3,
            }),
        }
        let first = &req.events[matched[0]];
        let explanation = fill_template(&rule.def.explain, req, first);
        let mut evidence: Vec<Evidence> = matched
            .iter()
            .map(|&i| evidence_of(&req.events[i], None))
            .collect();
        // The gateway's view is always part of the story.
        if let Some(g) = req.gateway {
            if !matched.contains(&g) {
                evidence.push(evidence_of(&req.events[g], None));
            }
        }
        let mut cited = matched.clone();
        for (other, m) in outranked {
            let other = &self.rules[other];
            let m: Vec<usize> = match order {
                Some(c) if other.def.causal => c.first(&m).into_iter().collect(),
                _ => m.into_iter().take(2).collect(),
            };
            for i in m {
                if !cited.contains(&i) && Some(i) != req.gateway {
                    cited.push(i);
                    let why = if by_causal_order && other.def.causal {
                        "later in the causal chain"
                    } else {
                        "outranked"
                    };
                    evidence.push(evidence_of(
                        &req.events[i],
                        Some(format!(
                            "also suggests {} (rule {}), {why}",
                            other.def.label, other.def.name
                        )),
                    ));
                }
            }
        }
        // A failure not to blame on the system (a client that went away)
        // has no origin.
        let cause = (rule.def.label != Label::Unknown)
            .then(|| blame(req, &causal, Some(matched[0])))
            .flatten();
        Verdict {
            label: rule.def.label,
            rule: rule.def.name.clone(),
            explanation,
            evidence,
            cause,
        }
    }
}

/// `failed` with no sufficient evidence: say what is missing instead of guessing.
fn unknown_verdict(req: &Request) -> Verdict {
    let mut missing = Vec::new();
    if req.gateway.is_none() {
        missing.push("no gateway line");
    }
    if !req.events.iter().any(|e| e.source() == Source::Span) {
        missing.push("no span");
    }
    if !req
        .events
        .iter()
        .any(|e| matches!(e.source(), Source::Backend | Source::OtelLog))
    {
        missing.push("no backend log");
    }
    let status = req
        .status
        .map(|s| format!("status {s}"))
        .unwrap_or_else(|| "no status".into());
    let explanation = if missing.is_empty() {
        format!("{status}; no rule matched the events joined to this request")
    } else {
        format!("{status}; no rule matched ({})", missing.join(", "))
    };
    Verdict {
        label: Label::Unknown,
        rule: "no-sufficient-evidence".into(),
        explanation,
        evidence: req
            .gateway
            .or(req.server_span)
            .map(|i| vec![evidence_of(&req.events[i], None)])
            .unwrap_or_default(),
        cause: None,
    }
}

pub fn evidence_of(e: &Event, note: Option<String>) -> Evidence {
    let mut detail = match e.source() {
        Source::Gateway => {
            let mut parts = vec![format!(
                "status {}",
                e.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into())
            )];
            parts.push(format!(
                "upstream_status {}",
                e.upstream_status.as_deref().unwrap_or("-")
            ));
            if let Some(a) = &e.upstream_addr {
                parts.push(format!("upstream {a}"));
            }
            if let Some(g) = &e.gateway_error {
                parts.push(format!("indicator {g}"));
            }
            parts.join(", ")
        }
        Source::Span => {
            let sp = e.span.as_ref();
            let mut d = format!(
                "span {:?} ({}) status {}",
                sp.map(|s| s.name.as_str()).unwrap_or(""),
                e.service.as_deref().unwrap_or("?"),
                sp.map(|s| s.status.as_str()).unwrap_or("unset")
            );
            if let Some(m) = sp.and_then(|s| s.status_message.as_deref()) {
                d.push_str(&format!(": {m}"));
            }
            for x in sp.map(|s| s.exceptions.as_slice()).unwrap_or_default() {
                d.push_str(&format!(
                    "; exception {}: {}",
                    x.r#type.as_deref().unwrap_or("?"),
                    x.message.as_deref().unwrap_or("")
                ));
            }
            d
        }
        _ => format!(
            "{} {}: {}",
            e.service.as_deref().unwrap_or(&e.format),
            e.level.map(|l| l.as_str()).unwrap_or("-"),
            e.said()
        ),
    };
    if detail.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|i| detail.is_char_boundary(*i))
            .unwrap_or(0);
        detail.truncate(cut);
        detail.push('…');
    }
    if let Some(n) = note {
        detail = format!("{detail} [{n}]");
    }
    Evidence {
        origin: e.origin.as_ref().map(|o| o.to_string()).unwrap_or_default(),
        source: e.source().to_string(),
        detail,
    }
}

fn fill_template(t: &str, req: &Request, e: &Event) -> String {
    let mut out = String::with_capacity(t.len() + 32);
    let mut rest = t;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(j) = rest[i..].find("}}") else {
            out.push_str(&rest[i..]);
            return out;
        };
        let key = rest[i + 2..i + j].trim();
        let value = if let Some(f) = key.strip_prefix("e.") {
            e.field_text(f)
        } else if let Some(f) = key.strip_prefix("request.") {
            req.field_text(f)
        } else if let Some(f) = key.strip_prefix("gateway.") {
            req.gateway_event().and_then(|g| g.field_text(f))
        } else {
            None
        };
        out.push_str(value.as_deref().unwrap_or("-"));
        rest = &rest[i + j + 2..];
    }
    out.push_str(rest);
    out
}

fn s(v: &Option<Text>) -> Value {
    Value::from(v.as_deref().unwrap_or("").to_string())
}

fn map(entries: Vec<(&'static str, Value)>) -> Value {
    let m: HashMap<&str, Value> = entries.into_iter().collect();
    Value::from(m)
}

/// An event as a CEL map: every schema field plus the derived ones. Absent
/// text is `""` and absent numbers `0`, so conditions stay short
/// (`gateway.upstream_status == ""`).
pub fn event_value(e: &Event) -> Value {
    let mut m: HashMap<&str, Value> = HashMap::with_capacity(FIELDS.len() + DERIVED_FIELDS.len());
    for f in FIELDS {
        let v = match ((f.get)(e), f.kind) {
            (Some(FieldValue::Text(t)), _) => Value::from(t.to_string()),
            (Some(FieldValue::Int(i)), _) => Value::Int(i),
            (Some(FieldValue::Millis(x)), _) => Value::Float(x),
            (None, Kind::Text) => Value::from(String::new()),
            (None, Kind::Int) => Value::Int(0),
            (None, Kind::Millis) => Value::Float(0.0),
        };
        m.insert(f.name, v);
    }
    let sp = e.span.as_deref();
    let source = e.source.map(|s| s.as_str()).unwrap_or("");
    let attrs: HashMap<String, Value> = e
        .attributes
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
        .collect();
    for (name, v) in [
        ("source", Value::from(source)),
        ("format", Value::from(e.format.to_string())),
        (
            "span_name",
            Value::from(sp.map(|s| s.name.clone()).unwrap_or_default()),
        ),
        (
            "span_kind",
            Value::from(sp.map(|s| s.kind.as_str()).unwrap_or("")),
        ),
        (
            "span_status",
            Value::from(sp.map(|s| s.status.as_str()).unwrap_or("")),
        ),
        ("exception", Value::from(e.exception_text())),
        ("attributes", Value::from(attrs)),
    ] {
        debug_assert!(
            DERIVED_FIELDS.contains(&name),
            "{name} is not in DERIVED_FIELDS"
        );
        m.insert(name, v);
    }
    Value::from(m)
}

fn request_value(r: &Request) -> Value {
    let list = |v: Vec<String>| Value::List(Arc::new(v.into_iter().map(Value::from).collect()));
    map(vec![
        ("status", Value::Int(r.status.map(i64::from).unwrap_or(0))),
        ("failed", Value::Bool(r.failed)),
        ("method", s(&r.method)),
        ("host", s(&r.host)),
        ("path", s(&r.path)),
        ("route", s(&r.route)),
        ("service", s(&r.service)),
        ("consumer", s(&r.consumer)),
        ("duration_ms", Value::Float(r.duration_ms.unwrap_or(0.0))),
        (
            "flags",
            list(r.flags.iter().map(|f| f.to_string()).collect()),
        ),
        (
            "sources",
            list(r.sources().iter().map(|s| s.to_string()).collect()),
        ),
    ])
}
