//! Inputs that once hung or crashed the loader (found by reading and by
//! `fuzz/`): they must come back as located diagnostics, quickly.

use super::*;

fn first_message(text: &str) -> String {
    match parse(text) {
        Ok(_) => String::from("(parsed)"),
        Err(d) => d.first().map(|d| d.message.clone()).unwrap_or_default(),
    }
}

#[test]
fn deep_flow_nesting_is_refused_not_a_stack_overflow() {
    let text = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
    let msg = first_message(&text);
    assert!(msg.contains("deeper than 64"), "{msg}");
    // Past yaml-rust2's own flow limit (255) it is the scanner that refuses.
    let n = 200_000;
    let text = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
    let msg = first_message(&text);
    assert!(msg.contains("recursion limit"), "{msg}");
}

#[test]
fn deep_block_nesting_is_refused() {
    let mut text = String::new();
    for i in 0..2_000 {
        text.push_str(&" ".repeat(i));
        text.push_str("k:\n");
    }
    let msg = first_message(&text);
    assert!(msg.contains("deeper than"), "{msg}");
}

#[test]
fn alias_expansion_is_bounded() {
    // "Billion laughs": nine levels of ten aliases each.
    let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=9 {
        let p = i - 1;
        text.push_str(&format!(
            "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
        ));
    }
    let msg = first_message(&text);
    assert!(msg.contains("aliases"), "{msg}");
}

#[test]
fn a_few_aliases_still_work() {
    let n = parse("a: &x {k: v}\nb: *x\nc: [*x, *x]\n").unwrap();
    assert_eq!(
        n.get("b")
            .and_then(|b| b.get("k"))
            .and_then(Node::as_scalar),
        Some("v")
    );
}

#[test]
fn many_keys_are_not_quadratic() {
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("k{i}: {i}\n"));
    }
    text.push_str("k7: again\n");
    let t = std::time::Instant::now();
    let msg = first_message(&text);
    assert!(msg.contains("duplicate key"), "{msg}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        t.elapsed()
    );
}
