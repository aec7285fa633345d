//! The theme values that go into the pages' `<style>` element: colors and the font-family list,
//! checked against a strict grammar at load so they can be written there as they are.

/// A CSS value checked at load to be a color or a font-family list. Only [`CssValue::color`],
/// [`CssValue::font_family`] and the built-in defaults make one, so the pages may write it into
/// `<style>` unescaped: HTML escaping is for HTML, and would turn `"Segoe UI"` into
/// `&quot;Segoe UI&quot;`, which makes the whole declaration invalid CSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CssValue(pub(super) String);

/// The font list of the built-in pages when `theme.font` is not set.
const SYSTEM_FONT: &str = r#"system-ui, -apple-system, "Segoe UI", Roboto, sans-serif"#;
const MAX_FONT_BYTES: usize = 200;

impl CssValue {
    /// The system font list of the built-in pages.
    pub fn system_font() -> Self {
        Self(SYSTEM_FONT.to_owned())
    }

    /// `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa`, or a CSS named color (any case), trimmed.
    pub fn color(raw: &str) -> Result<Self, String> {
        let c = raw.trim();
        let ok = match c.strip_prefix('#') {
            Some(hex) => {
                matches!(hex.len(), 3 | 4 | 6 | 8) && hex.bytes().all(|b| b.is_ascii_hexdigit())
            }
            None => NAMED_COLORS.contains(&c.to_ascii_lowercase().as_str()),
        };
        if ok {
            Ok(Self(c.to_owned()))
        } else {
            Err(format!(
                "{c:?} is not a color: use #rgb, #rrggbb (or with alpha, #rgba, #rrggbbaa) or a \
                 CSS color name such as \"teal\""
            ))
        }
    }

    /// A comma-separated list of font families, trimmed: each a quoted name (`"Segoe UI"`,
    /// `'Inter'`) holding no quote, backslash, `<`, `>`, `;`, braces or control character, or
    /// unquoted identifiers (`DejaVu Sans`, `sans-serif`).
    pub fn font_family(raw: &str) -> Result<Self, String> {
        let f = raw.trim();
        let usage = "must be a CSS font-family list such as \"Inter\", sans-serif: names in \
                     quotes (no quotes, backslashes, <, >, ; or braces inside) or unquoted words \
                     of letters, digits, - and _, separated by commas";
        if f.is_empty() || f.len() > MAX_FONT_BYTES || f.chars().any(char::is_control) {
            return Err(format!(
                "{usage}, on one line, at most {MAX_FONT_BYTES} bytes"
            ));
        }
        match f
            .split(',')
            .map(str::trim)
            .find(|family| !is_family(family))
        {
            None => Ok(Self(f.to_owned())),
            Some(bad) => Err(format!("{bad:?} {usage}")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One family of a font-family list: `"quoted name"`, `'quoted name'` or identifiers.
fn is_family(family: &str) -> bool {
    for quote in ['"', '\''] {
        if let Some(inner) = family
            .strip_prefix(quote)
            .and_then(|rest| rest.strip_suffix(quote))
        {
            return !inner.trim().is_empty()
                && !inner
                    .chars()
                    .any(|c| c.is_control() || "\"'\\<>;{}".contains(c));
        }
    }
    // Unquoted: identifiers separated by spaces; CSS-wide keywords would not name a family.
    let keyword = [
        "inherit",
        "initial",
        "unset",
        "revert",
        "revert-layer",
        "default",
    ]
    .contains(&family.to_ascii_lowercase().as_str());
    !family.is_empty() && !keyword && family.split(' ').all(is_identifier)
}

/// A CSS identifier of ASCII letters, digits, `-` and `_`, not starting with a digit or `--`.
fn is_identifier(word: &str) -> bool {
    let body = word.strip_prefix('-').unwrap_or(word);
    body.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl std::ops::Deref for CssValue {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<&str> for CssValue {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl std::fmt::Display for CssValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The named colors of CSS Color Module Level 4, and `transparent`.
const NAMED_COLORS: [&str; 149] = [
    "aliceblue",
    "antiquewhite",
    "aqua",
    "aquamarine",
    "azure",
    "beige",
    "bisque",
    "black",
    "blanchedalmond",
    "blue",
    "blueviolet",
    "brown",
    "burlywood",
    "cadetblue",
    "chartreuse",
    "chocolate",
    "coral",
    "cornflowerblue",
    "cornsilk",
    "crimson",
    "cyan",
    "darkblue",
    "darkcyan",
    "darkgoldenrod",
    "darkgray",
    "darkgreen",
    "darkgrey",
    "darkkhaki",
    "darkmagenta",
    "darkolivegreen",
    "darkorange",
    "darkorchid",
    "darkred",
    "darksalmon",
    "darkseagreen",
    "darkslateblue",
    "darkslategray",
    "darkslategrey",
    "darkturquoise",
    "darkviolet",
    "deeppink",
    "deepskyblue",
    "dimgray",
    "dimgrey",
    "dodgerblue",
    "firebrick",
    "floralwhite",
    "forestgreen",
    "fuchsia",
    "gainsboro",
    "ghostwhite",
    "gold",
    "goldenrod",
    "gray",
    "green",
    "greenyellow",
    "grey",
    "honeydew",
    "hotpink",
    "indianred",
    "indigo",
    "ivory",
    "khaki",
    "lavender",
    "lavenderblush",
    "lawngreen",
    "lemonchiffon",
    "lightblue",
    "lightcoral",
    "lightcyan",
    "lightgoldenrodyellow",
    "lightgray",
    "lightgreen",
    "lightgrey",
    "lightpink",
    "lightsalmon",
    "lightseagreen",
    "lightskyblue",
    "lightslategray",
    "lightslategrey",
    "lightsteelblue",
    "lightyellow",
    "lime",
    "limegreen",
    "linen",
    "magenta",
    "maroon",
    "mediumaquamarine",
    "mediumblue",
    "mediumorchid",
    "mediumpurple",
    "mediumseagreen",
    "mediumslateblue",
    "mediumspringgreen",
    "mediumturquoise",
    "mediumvioletred",
    "midnightblue",
    "mintcream",
    "mistyrose",
    "moccasin",
    "navajowhite",
    "navy",
    "oldlace",
    "olive",
    "olivedrab",
    "orange",
    "orangered",
    "orchid",
    "palegoldenrod",
    "palegreen",
    "paleturquoise",
    "palevioletred",
    "papayawhip",
    "peachpuff",
    "peru",
    "pink",
    "plum",
    "powderblue",
    "purple",
    "rebeccapurple",
    "red",
    "rosybrown",
    "royalblue",
    "saddlebrown",
    "salmon",
    "sandybrown",
    "seagreen",
    "seashell",
    "sienna",
    "silver",
    "skyblue",
    "slateblue",
    "slategray",
    "slategrey",
    "snow",
    "springgreen",
    "steelblue",
    "tan",
    "teal",
    "thistle",
    "tomato",
    "transparent",
    "turquoise",
    "violet",
    "wheat",
    "white",
    "whitesmoke",
    "yellow",
    "yellowgreen",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colors_are_hex_forms_or_css_names_and_nothing_else() {
        for ok in [
            "#abc",
            "#abcd",
            "#A1B2C3",
            "#a1b2c3d4",
            "teal",
            "RebeccaPurple",
            " red ",
        ] {
            assert!(CssValue::color(ok).is_ok(), "{ok}");
        }
        assert_eq!(CssValue::color(" red ").expect("red"), "red");
        for bad in [
            "",
            "#",
            "#12345",
            "#ggg",
            "#1234567",
            "tael",
            "red;}",
            "url(x)",
            "rgb(0,0,0)",
            "red</style>",
            "var(--x)",
            "\"red\"",
            "#ab c",
        ] {
            assert!(CssValue::color(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn font_lists_are_quoted_names_or_identifiers() {
        for ok in [
            r#""Inter", sans-serif"#,
            "'Inter Tight',sans-serif",
            "DejaVu Sans, monospace",
            "-apple-system, system-ui",
            "Noto_Sans",
            r#""Noto Sans CJK JP""#,
        ] {
            assert_eq!(CssValue::font_family(ok).expect(ok), ok);
        }
        assert!(
            CssValue::font_family(SYSTEM_FONT).is_ok(),
            "the default passes its own rules"
        );
        for bad in [
            "",
            ",",
            "Inter,",
            r#""Inter"#,
            r#""In"ter""#,
            r#""a\62 c""#,
            r#""</style><script>""#,
            "x; } body { display: none",
            "Inter; color: red",
            "{}",
            "1Password",
            "--custom",
            "inherit",
            r#"""#,
            "\"\"",
            "Inter\n, serif",
            &"a".repeat(201),
        ] {
            assert!(CssValue::font_family(bad).is_err(), "{bad:?}");
        }
    }
}
