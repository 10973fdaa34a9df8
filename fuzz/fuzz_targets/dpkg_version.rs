//! Debian version parsing and ordering (`[epoch:]upstream[-revision]`, dpkg's
//! `verrevcmp`). Input: up to three versions, one per line.
//! Properties: no panic; on versions dpkg accepts, `compare` is a total
//! preorder: reflexive, antisymmetric (`cmp(a,b) == cmp(b,a).reverse()`) and
//! transitive on every ordering of the triple; `compare_lenient` agrees with
//! `compare` where both parse and is antisymmetric everywhere.
#![no_main]
use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::split_lines;
use vigil_rules::checks::patch_level::dpkg_version::{compare, compare_lenient, parse};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let v = split_lines(text, 3);
    for a in &v {
        assert_eq!(
            compare_lenient(a, a),
            Ordering::Equal,
            "lenient not reflexive: {a:?}"
        );
        for b in &v {
            assert_eq!(
                compare_lenient(a, b),
                compare_lenient(b, a).reverse(),
                "lenient not antisymmetric: {a:?} {b:?}"
            );
        }
    }
    let ok: Vec<&str> = v.iter().copied().filter(|s| parse(s).is_ok()).collect();
    let cmp = |a: &str, b: &str| compare(a, b).unwrap_or_else(|e| panic!("parsed, yet: {e}"));
    for a in &ok {
        assert_eq!(cmp(a, a), Ordering::Equal, "not reflexive: {a:?}");
        for b in &ok {
            let ab = cmp(a, b);
            assert_eq!(ab, cmp(b, a).reverse(), "not antisymmetric: {a:?} {b:?}");
            assert_eq!(ab, compare_lenient(a, b), "lenient disagrees: {a:?} {b:?}");
            for c in &ok {
                let bc = cmp(b, c);
                let ac = cmp(a, c);
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    assert_ne!(
                        ac,
                        Ordering::Greater,
                        "not transitive: {a:?} <= {b:?} <= {c:?} but {a:?} > {c:?}"
                    );
                }
                if ab == Ordering::Equal && bc == Ordering::Equal {
                    assert_eq!(
                        ac,
                        Ordering::Equal,
                        "equality not transitive: {a:?} {b:?} {c:?}"
                    );
                }
            }
        }
    }
});
