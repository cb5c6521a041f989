//! Fuzzes the spec parser and the lowering: `cargo +nightly fuzz run parse`
//! (from crates/dtest-check). Any input must parse or fail with an error
//! naming a line and column inside the input; a parsed formula must print
//! and parse back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    match dtest_check::Spec::parse("fuzz.spec", src) {
        Ok(spec) => {
            for item in &spec.ast.items {
                let printed = item.formula.to_string();
                let again = dtest_check::parse::parse_formula(&printed)
                    .unwrap_or_else(|e| panic!("printed formula does not parse: {printed}: {e}"));
                assert_eq!(again, item.formula, "round trip of {printed}");
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.col >= 1, "{e}");
            assert!(e.line <= src.lines().count().max(1) + 1, "{e}");
        }
    }
});
