//! The redirect checker (`ReturnTo::parse`): whatever it accepts keeps the browser on our
//! origin, as written, where the browser lands, and once percent-decoded; nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use profilegate::redirect::ReturnTo;
use url::{Position, Url};

const ORIGINS: [&str; 2] = ["https://app.example.com", "http://127.0.0.1:8080"];

fn check(origin: &str, raw: &str, rt: &ReturnTo) {
    let base = Url::parse(origin).expect("origin");
    let location = rt.absolute(origin);
    assert!(
        location.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "{raw:?}: Location {location:?} is not visible ASCII"
    );
    let abs = Url::parse(&location).expect("Location parses");
    assert_eq!(abs.origin(), base.origin(), "{raw:?} -> {location}");
    let joined = base.join(rt.path()).expect("path joins");
    assert_eq!(joined.origin(), base.origin(), "{raw:?} -> {joined}");
    let landed = &abs[Position::BeforePath..];
    let again = base.join(landed).expect("landed path joins");
    assert_eq!(again.origin(), base.origin(), "{raw:?} lands on {abs}");
    let mut decoded = landed.to_owned();
    for _ in 0..3 {
        decoded = percent_decode_str(&decoded)
            .decode_utf8_lossy()
            .into_owned();
        assert!(
            !decoded.starts_with("//") && !decoded.starts_with("/\\"),
            "{raw:?} lands on {abs}, which decodes to {decoded:?}"
        );
    }
    assert_eq!(
        ReturnTo::parse(rt.path(), origin).as_ref(),
        Some(rt),
        "{raw:?}"
    );
    assert_eq!(
        ReturnTo::parse(&location, origin).as_ref(),
        Some(rt),
        "{raw:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    for origin in ORIGINS {
        if let Some(rt) = ReturnTo::parse(&raw, origin) {
            check(origin, &raw, &rt);
        }
    }
    if let Some(rt) = ReturnTo::from_path(&raw) {
        check(ORIGINS[0], &raw, &rt);
    }
});
