//! Function benchmarks: one line through each built-in parser (the `[[sample]]`
//! lines of parsers/*.toml, which are real lines), and keys + correlation +
//! labelling of ready events. Whole runs on generated inputs: scripts/bench.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use tracejoin::correlate::{build_request, keys, Correlator};
use tracejoin::parse::Registry;
use tracejoin::rules::Engine;

fn parsers(c: &mut Criterion) {
    let registry = Registry::load(None).unwrap();
    let file: Arc<str> = Arc::from("bench.log");
    let mut group = c.benchmark_group("parse_line");
    group.throughput(Throughput::Elements(1));
    for f in &registry.formats {
        let line = f.def.samples[0].line.clone();
        let mut out = Vec::with_capacity(4);
        group.bench_function(&*f.name, |b| {
            b.iter(|| {
                out.clear();
                f.parse(black_box(&line), &file, 1, &mut out).unwrap();
            })
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let registry = Registry::load(None).unwrap();
    let engine = Engine::load(None).unwrap();
    let f = registry.get("nginx_combined_kv").unwrap();
    let file: Arc<str> = Arc::from("bench.log");
    // 1000 gateway lines, one in ten failed, each with its own request id.
    let mut events = Vec::new();
    for i in 0..1000u32 {
        let status = if i % 10 == 0 { 502 } else { 200 };
        let line = format!(
            r#"10.0.0.1 - - [24/Nov/2026:10:00:{:02} +0000] "GET /v1/orders/{i} HTTP/1.1" {status} 12 "-" "curl/8.5.0" rid={:032x} rt=0.012 urt=0.010 us={status} ua="10.0.0.7:8080""#,
            i % 60,
            i as u128 * 7919 + 1
        );
        f.parse(&line, &file, i as u64 + 1, &mut events).unwrap();
    }
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(events.len() as u64));
    group.bench_function("keys", |b| b.iter(|| events.iter().map(keys).count()));
    group.bench_function("correlate_1000", |b| {
        b.iter(|| {
            let mut c = Correlator::new(60_000);
            for e in &events {
                let k = keys(e);
                c.push(e.clone(), k, 0);
            }
            let mut out = Vec::new();
            c.close_all(&mut out);
            out.into_iter()
                .map(|c| build_request(c.events, c.keys))
                .filter(|r| r.failed)
                .count()
        })
    });
    let requests: Vec<_> = events
        .iter()
        .map(|e| build_request(vec![e.clone()], keys(e)))
        .collect();
    group.bench_function("label_1000", |b| {
        let ev = engine.evaluator();
        b.iter(|| {
            requests
                .iter()
                .filter_map(|r| engine.evaluate(&ev, r))
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, parsers, pipeline);
criterion_main!(benches);
