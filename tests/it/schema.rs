//! Every field of the event schema (`tracejoin::event::FIELDS`) reaches every
//! place that derives from it: a parser definition maps it (and its sample is
//! checked at load), a rule condition reads it, the store writes it and reads
//! it back, and a pack example sets it. Adding a field to the schema is
//! covered here with no edit to this test.

use crate::common::{stderr, stdout, tracejoin};
use tracejoin::event::{Event, FieldValue, Kind, FIELDS};

/// A value that fits the field, as the JSON a log line would carry.
fn value_for(name: &str, kind: Kind) -> serde_json::Value {
    match kind {
        Kind::Text => {
            // A field that normalises its text (the level scale) keeps a word it knows.
            let mut probe = Event::default();
            let f = tracejoin::event::field(name).unwrap();
            if (f.set)(&mut probe, FieldValue::Text("x")) {
                serde_json::Value::from(format!("{name}-value"))
            } else {
                serde_json::Value::from("error")
            }
        }
        Kind::Int => serde_json::Value::from(417),
        Kind::Millis => serde_json::Value::from(12.5),
    }
}

/// The field as text the way samples and templates show it.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[test]
fn every_schema_field_is_parsed_stored_read_back_and_seen_by_rules() {
    let dir = tempfile::tempdir().unwrap();
    let parsers = dir.path().join("parsers");
    let rules = dir.path().join("rules");
    std::fs::create_dir_all(&parsers).unwrap();
    std::fs::create_dir_all(&rules).unwrap();

    let mut line = serde_json::Map::new();
    line.insert("time".into(), "2026-11-30T10:00:00Z".into());
    line.insert("msg_source".into(), "schema test".into());
    let mut fields = String::from("ts = [\"time\"]\n");
    let mut expect = Vec::new();
    for f in FIELDS {
        let v = value_for(f.name, f.kind);
        line.insert(format!("f_{}", f.name), v.clone());
        fields.push_str(&format!("{} = [\"f_{}\"]\n", f.name, f.name));
        expect.push(format!("{} = {:?}", f.name, text_of(&v)));
    }
    let line = serde_json::Value::Object(line).to_string();
    std::fs::write(
        parsers.join("every_field.toml"),
        format!(
            "name = \"every_field\"\ntitle = \"every field\"\ndescription = \"test\"\nreference = \"test\"\n\
             source = \"gateway\"\nkind = \"json\"\nrequire = [\"f_service\"]\npriority = 100\n\n\
             [fields]\n{fields}\n[[sample]]\nline = '{line}'\nexpect = {{ {} }}\n",
            expect.join(", ")
        ),
    )
    .unwrap();

    // A rule pack whose example sets every field by name (`rules check`).
    let example: Vec<String> = FIELDS
        .iter()
        .map(|f| format!("{} = {}", f.name, value_for(f.name, f.kind)))
        .collect();
    std::fs::write(
        rules.join("fields.toml"),
        format!(
            "[[rule]]\nname = \"teapot\"\nlabel = \"unknown\"\npriority = 1000\n\
             evidence = \"e.status == 417 && e.service == 'service-value'\"\nexplain = \"{{{{e.route}}}}\"\n\
             [[rule.example]]\nlabel = \"unknown\"\n\
             [[rule.example.event]]\nsource = \"gateway\"\n{}\n",
            example.join("\n")
        ),
    )
    .unwrap();

    let input = dir.path().join("in.log");
    std::fs::write(&input, format!("{line}\n")).unwrap();
    let store = dir.path().join("store");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--parsers".into(),
            parsers.display().to_string(),
            "--rules".into(),
            rules.display().to_string(),
        ]);
        a
    };
    // The examples set every field by name.
    let check = tracejoin(&["rules", "check", "--rules", rules.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "{}{}",
        stdout(&check),
        stderr(&check)
    );

    let run = args(&[
        "analyze",
        "--json",
        input.to_str().unwrap(),
        "--out",
        store.to_str().unwrap(),
    ]);
    let out = tracejoin(&run.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // The status field (417) makes the request failed; the rule reads two
    // fields and its explanation template a third.
    assert_eq!(json["rule"], "teapot", "{json}");
    assert_eq!(json["explanation"], "route-value", "{json}");

    // Every column of the events table holds the value, and reads back.
    for f in FIELDS {
        let v = value_for(f.name, f.kind);
        let q = tracejoin(&[
            "query",
            "--store",
            store.to_str().unwrap(),
            "--format",
            "csv",
            &format!("SELECT {} FROM events", f.name),
        ]);
        assert!(q.status.success(), "{}: {}", f.name, stderr(&q));
        let got = stdout(&q);
        let cell = got.lines().nth(1).unwrap_or_default().trim_matches('"');
        let want = text_of(&v);
        let same = match f.kind {
            Kind::Text => cell == want,
            _ => cell.parse::<f64>().ok() == want.parse::<f64>().ok(),
        };
        assert!(same, "{}: stored {cell:?}, expected {want:?}", f.name);
    }
    let id = "request_id-value";
    let files = args(&["timeline", "--json", id, input.to_str().unwrap()]);
    let from_files = tracejoin(&files.iter().map(String::as_str).collect::<Vec<_>>());
    let from_store = tracejoin(&["timeline", "--json", id, "--store", store.to_str().unwrap()]);
    assert!(from_store.status.success(), "{}", stderr(&from_store));
    assert_eq!(stdout(&from_files), stdout(&from_store));
}

#[test]
fn every_schema_field_is_bound_for_rule_conditions_with_its_type() {
    for f in FIELDS {
        let v = value_for(f.name, f.kind);
        let mut ev = Event::default();
        let set = match &v {
            serde_json::Value::String(s) => (f.set)(&mut ev, FieldValue::Text(s)),
            serde_json::Value::Number(n) if f.kind == Kind::Int => {
                (f.set)(&mut ev, FieldValue::Int(n.as_i64().unwrap()))
            }
            serde_json::Value::Number(n) => {
                (f.set)(&mut ev, FieldValue::Millis(n.as_f64().unwrap()))
            }
            _ => false,
        };
        assert!(set, "{}", f.name);
        let cel = tracejoin::rules::event_value(&ev);
        let cel::Value::Map(m) = cel else {
            panic!("an event is a CEL map")
        };
        let key = cel::objects::Key::from(f.name);
        let got = m
            .map
            .get(&key)
            .unwrap_or_else(|| panic!("{} not bound", f.name));
        let want = match &v {
            serde_json::Value::String(s) => cel::Value::from(s.clone()),
            serde_json::Value::Number(n) if f.kind == Kind::Int => {
                cel::Value::Int(n.as_i64().unwrap())
            }
            serde_json::Value::Number(n) => cel::Value::Float(n.as_f64().unwrap()),
            _ => unreachable!(),
        };
        assert_eq!(got, &want, "{}", f.name);
    }
}
