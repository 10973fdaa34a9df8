use super::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct P {
    name: String,
    port: u16,
    #[serde(default)]
    tags: Vec<String>,
}

#[test]
fn locations_are_one_based() {
    let n = parse("a: 1\nb:\n  - x\n").unwrap();
    let b = n.get("b").unwrap();
    assert_eq!(b.as_seq().unwrap()[0].loc, Loc { line: 3, col: 5 });
    assert_eq!(n.get("a").unwrap().loc, Loc { line: 1, col: 4 });
}

#[test]
fn every_unknown_key_is_reported_with_its_place() {
    let n = parse("name: x\nport: 80\nnmae: y\nprot: 1\n").unwrap();
    let errs = from_node::<P>(&n).unwrap_err();
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].loc, Loc { line: 3, col: 1 });
    assert!(errs[0].message.contains("unknown key `nmae`"));
    assert_eq!(errs[1].loc, Loc { line: 4, col: 1 });
}

#[test]
fn type_errors_point_at_the_value() {
    let n = parse("name: x\nport: eighty\n").unwrap();
    let errs = from_node::<P>(&n).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].loc, Loc { line: 2, col: 7 });
    assert!(
        errs[0].message.contains("whole number"),
        "{}",
        errs[0].message
    );
}

#[test]
fn missing_key_points_at_the_mapping() {
    let n = parse("x: 1\nthing:\n  name: a\n").unwrap();
    let errs = from_node::<P>(n.get("thing").unwrap()).unwrap_err();
    assert!(errs[0].message.contains("missing key `port`"), "{errs:?}");
    assert_eq!(errs[0].loc.line, 3);
}

#[test]
fn duplicate_keys_and_syntax_errors() {
    let errs = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
    assert_eq!(errs[0].loc.line, 3);
    assert!(errs[0]
        .message
        .contains("duplicate key `a` (first at line 1)"));
    let errs = parse("a: [1, 2\nb: 3\n").unwrap_err();
    assert!(errs[0].message.starts_with("invalid YAML"));
}

#[test]
fn quoted_numbers_stay_text_and_plain_numbers_read_as_text_too() {
    #[derive(Deserialize)]
    struct V {
        a: String,
        b: String,
    }
    let n = parse("a: \"1.2\"\nb: 1.2\n").unwrap();
    let v: V = from_node(&n).unwrap();
    assert_eq!((v.a.as_str(), v.b.as_str()), ("1.2", "1.2"));
}

#[test]
fn anchors_and_aliases_are_followed() {
    let n = parse("a: &x {name: n, port: 1}\nb: *x\n").unwrap();
    let p: P = from_node(n.get("b").unwrap()).unwrap();
    assert_eq!(p.port, 1);
}
