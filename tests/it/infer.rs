//! Opt-in inferred joins: the bundled incident with every id removed from its
//! gateway lines is joined back to its spans by method, path and time; every
//! such join is marked `inferred` with a confidence, and the confident ones are
//! right.

use crate::common::*;
use tracejoin::analysis::{self, Options};
use tracejoin::event::Source;
use tracejoin::parse::Registry;
use tracejoin::rules::Engine;

#[test]
fn id_less_gateway_lines_are_joined_by_inference_and_say_so() {
    let dir = sample_logs_copy(&["gateway/access.log"]);
    // Drop every id from the gateway lines (request id, client id, traceparent);
    // timings (rt=, msec=) stay.
    let original = std::fs::read_to_string(repo().join("sample-logs/gateway/access.log")).unwrap();
    let mut rids = Vec::new();
    let mut plain = String::new();
    for line in original.lines() {
        let mut kept = Vec::new();
        for word in line.split(' ') {
            if let Some(rid) = word.strip_prefix("rid=") {
                rids.push(rid.to_string());
            } else if !word.starts_with("xrid=") && !word.starts_with("tp=") {
                kept.push(word);
            }
        }
        plain.push_str(&kept.join(" "));
        plain.push('\n');
    }
    std::fs::write(dir.path().join("gateway/access.log"), plain).unwrap();

    let registry = Registry::load(None).unwrap();
    let engine = Engine::load(None).unwrap();
    let mut opts = Options {
        paths: vec![dir.path().to_path_buf()],
        ..Default::default()
    };
    let exact = analysis::run(&opts, &registry, &engine).unwrap();
    assert!(exact.requests.iter().all(|l| l.request.inferred.is_none()));
    assert!(exact
        .requests
        .iter()
        .all(|l| l.request.gateway.is_none() || l.request.events.len() == 1));

    opts.infer_joins = true;
    let a = analysis::run(&opts, &registry, &engine).unwrap();
    let (mut right, mut wrong, mut confident, mut confident_right) = (0, 0, 0, 0);
    for l in &a.requests {
        let r = &l.request;
        let (Some(g), Some(s)) = (r.gateway_event(), r.server_span_event()) else {
            continue;
        };
        let confidence = r
            .inferred
            .expect("a gateway line joined to a span is an inferred join");
        assert_eq!(r.join(), "inferred");
        assert!(confidence > 0.0 && confidence <= 1.0);
        assert_eq!(s.source(), Source::Span);
        let line = g.origin.as_ref().unwrap().line as usize;
        let ok = s.request_id.as_deref() == Some(rids[line - 1].as_str());
        if ok {
            right += 1
        } else {
            wrong += 1
        }
        if confidence == 1.0 {
            confident += 1;
            confident_right += ok as usize;
        }
    }
    eprintln!("inferred joins: {right} right, {wrong} wrong; confidence 1.0: {confident_right}/{confident}");
    // 231 requests reached a backend; those that only reached the auth check
    // (a span for another path) cannot be matched by path, and are not.
    assert!(right + wrong >= 210, "most proxied requests are joined");
    assert!(
        right as f64 / (right + wrong) as f64 >= 0.95,
        "{right} right, {wrong} wrong"
    );
    assert_eq!(confident_right, confident, "a join with no rival is right");
    assert!(confident >= 120);
}
