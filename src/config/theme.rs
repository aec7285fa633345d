//! `[theme]`: how the hosted pages look. Every value lands in HTML or CSS, so each is held to a
//! shape that cannot break out of where the templates put it. HTML values are escaped by the
//! templates; CSS values (colors, the font list) become [`CssValue`]s here, the only values the
//! pages put into `<style>` unescaped (HTML escaping would corrupt them: `"Segoe UI"`).

use url::Url;

use super::reader::SectionReader;

mod css;
pub use css::CssValue;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeConfig {
    /// `theme.title`: the name in the pages' brand line and tab titles. Default none: the host
    /// of `server.public_url` (neutral on every page, before and after sign-in).
    pub title: Option<String>,
    /// `theme.logo_url`: an `https://` URL, a `data:image/...;base64,` URL, or a path starting
    /// with `/`. Default none (no logo).
    pub logo_url: Option<String>,
    /// `theme.primary_color`: `#rgb`, `#rgba`, `#rrggbb`, `#rrggbbaa` or a CSS color name.
    /// Default `#3451b2`.
    pub primary_color: CssValue,
    /// `theme.custom_css` (inline) or `theme.custom_css_file` (read at load): CSS added to every
    /// page in a `<style>` element, at most 64 KiB, never containing `</`. Default none.
    pub custom_css: Option<String>,
    /// `theme.background`: the page background color, like `primary_color`. Default `#f4f5f7`.
    pub background: CssValue,
    /// `theme.font`: a CSS font-family list such as `"Inter", sans-serif`. Default none: the
    /// system font ([`CssValue::system_font`]).
    pub font: Option<CssValue>,
    /// `[[theme.footer_links]]` with `label` and `url` (https/http URL or a /path). Default none.
    pub footer_links: Vec<FooterLink>,
    /// `theme.templates_dir`: a directory whose files replace built-in templates of the same
    /// name (`question.html`, `error.html`, ...); read at load. Default none.
    pub templates: Vec<(String, String)>,
}

/// A link in the pages' footer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FooterLink {
    pub label: String,
    pub url: String,
}

/// The templates a `templates_dir` may replace.
pub const TEMPLATE_NAMES: &[&str] = &[
    "base.html",
    "error.html",
    "signed_out.html",
    "logout.html",
    "question.html",
    "cancelled.html",
    "me.html",
];
const MAX_TEMPLATE_BYTES: u64 = 256 * 1024;

impl Default for ThemeConfig {
    fn default() -> Self {
        Self {
            title: None,
            logo_url: None,
            primary_color: CssValue("#3451b2".into()),
            custom_css: None,
            background: CssValue("#f4f5f7".into()),
            font: None,
            footer_links: Vec::new(),
            templates: Vec::new(),
        }
    }
}

const MAX_TITLE_CHARS: usize = 100;
const MAX_LOGO_URL_BYTES: usize = 2048;
/// A `data:` logo is the image itself, inlined in every page.
const MAX_LOGO_DATA_URL_BYTES: usize = 32 * 1024;
/// The image types a `data:` logo may have (an SVG shown by `<img>` runs no script).
const LOGO_DATA_TYPES: [&str; 5] = ["png", "gif", "jpeg", "webp", "svg+xml"];
const MAX_CUSTOM_CSS_BYTES: u64 = 64 * 1024;

pub(super) fn read_theme(mut r: SectionReader<'_>) -> Option<ThemeConfig> {
    let defaults = ThemeConfig::default();
    let title = match r.string("title") {
        None => defaults.title,
        Some(t) => Some({
            let t = t.trim().to_owned();
            if t.is_empty() {
                r.error("title", "must not be empty");
            } else if t.chars().count() > MAX_TITLE_CHARS {
                r.error(
                    "title",
                    format!("must be at most {MAX_TITLE_CHARS} characters"),
                );
            } else if t.chars().any(char::is_control) {
                r.error("title", "must not contain control characters");
            }
            t
        }),
    };
    let logo_url = r.string("logo_url").map(|raw| raw.trim().to_owned());
    if let Some(problem) = logo_url.as_deref().and_then(logo_url_problem) {
        r.error("logo_url", problem);
    }
    let primary_color = match r.string("primary_color") {
        None => defaults.primary_color,
        Some(raw) => CssValue::color(&raw).unwrap_or_else(|problem| {
            r.error("primary_color", problem);
            defaults.primary_color
        }),
    };
    let css_key = if r.has("custom_css_file") {
        "custom_css_file"
    } else {
        "custom_css"
    };
    let custom_css = r.inline_or_file("custom_css", MAX_CUSTOM_CSS_BYTES);
    if let Some(css) = &custom_css {
        if css.len() as u64 > MAX_CUSTOM_CSS_BYTES {
            r.error(
                css_key,
                format!(
                    "is {} bytes; at most {MAX_CUSTOM_CSS_BYTES} are allowed",
                    css.len()
                ),
            );
        }
        if css.contains("</") {
            r.error(
                css_key,
                "must not contain \"</\": the CSS is inlined in a <style> element, which it would close",
            );
        }
    }
    let background = match r.string("background") {
        None => defaults.background,
        Some(raw) => CssValue::color(&raw).unwrap_or_else(|problem| {
            r.error("background", problem);
            defaults.background
        }),
    };
    let font = r
        .string("font")
        .and_then(|raw| match CssValue::font_family(&raw) {
            Ok(font) => Some(font),
            Err(problem) => {
                r.error("font", problem);
                None
            }
        });
    let mut footer_links = Vec::new();
    for (i, table) in r
        .table_array("footer_links")
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let mut link = r.nested(format!("theme.footer_links[{i}]"), table);
        let label = link.required_string("label");
        let url = link.required_string("url").map(|u| u.trim().to_owned());
        if let Some(problem) = url.as_deref().and_then(link_url_problem) {
            link.error("url", problem);
        }
        link.finish();
        if let (Some(label), Some(url)) = (label, url) {
            footer_links.push(FooterLink { label, url });
        }
    }
    let templates = match r.string("templates_dir") {
        Some(dir) => {
            let dir = r.path_from(dir);
            read_templates(&mut r, &dir)
        }
        None => Vec::new(),
    };
    r.finish();
    Some(ThemeConfig {
        title,
        logo_url,
        primary_color,
        custom_css,
        background,
        font,
        footer_links,
        templates,
    })
}

/// Reads every file of `dir` as a template override; unknown names are errors (a typo would
/// otherwise silently keep the built-in page).
fn read_templates(r: &mut SectionReader<'_>, dir: &std::path::Path) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            r.error(
                "templates_dir",
                format!("cannot read {}: {e}", dir.display()),
            );
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if !TEMPLATE_NAMES.contains(&name.as_str()) {
            r.error(
                "templates_dir",
                format!(
                    "{} is not a template profilegate uses; overridable: {}",
                    path.display(),
                    TEMPLATE_NAMES.join(", ")
                ),
            );
            continue;
        }
        let too_big = entry
            .metadata()
            .map_or(true, |m| m.len() > MAX_TEMPLATE_BYTES);
        match std::fs::read_to_string(&path) {
            Ok(_) if too_big => r.error(
                "templates_dir",
                format!(
                    "{} is larger than {MAX_TEMPLATE_BYTES} bytes",
                    path.display()
                ),
            ),
            Ok(text) => out.push((name, text)),
            Err(e) => r.error(
                "templates_dir",
                format!("cannot read {}: {e}", path.display()),
            ),
        }
    }
    out.sort();
    out
}

/// Why `raw` cannot be the logo's address, if it cannot. What is accepted is what the pages'
/// Content-Security-Policy (`img-src 'self' https: data:`) lets the browser show.
fn logo_url_problem(raw: &str) -> Option<String> {
    let usage = "must be an https:// URL, a data:image/...;base64, URL, or a path starting with /";
    if let Some(data) = raw.strip_prefix("data:") {
        return logo_data_url_problem(raw, data, usage);
    }
    if raw.len() > MAX_LOGO_URL_BYTES {
        return Some(format!("must be at most {MAX_LOGO_URL_BYTES} bytes"));
    }
    // Quotes, brackets and whitespace are refused outright: the address may end up in a CSS
    // url(...) as well as in an attribute.
    if raw
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"'()<>\\`".contains(c))
    {
        return Some(format!(
            "{raw:?} {usage}, without spaces, quotes, brackets or backslashes"
        ));
    }
    if raw.starts_with('/') {
        // `//host/logo.png` would be another site, reached by whatever scheme the page uses.
        return raw
            .starts_with("//")
            .then(|| format!("{raw:?} {usage}; give //host addresses with https:"));
    }
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some() => None,
        Ok(u) if u.scheme() == "http" => Some(format!(
            "{raw:?} {usage}: the pages' Content-Security-Policy (img-src 'self' https: data:) \
             keeps browsers from showing http:// images"
        )),
        Ok(_) | Err(_) => Some(format!("{raw:?} {usage}")),
    }
}

/// `data:image/<type>;base64,<base64>`: nothing else, so it is as safe in an attribute or a
/// CSS `url(...)` as a plain URL.
fn logo_data_url_problem(raw: &str, data: &str, usage: &str) -> Option<String> {
    if raw.len() > MAX_LOGO_DATA_URL_BYTES {
        return Some(format!(
            "a data: logo must be at most {MAX_LOGO_DATA_URL_BYTES} bytes; serve a larger one \
             from an https:// URL"
        ));
    }
    // The whole value could be 32 KiB: name it by its start.
    let shown: String = match raw.char_indices().nth(40) {
        Some((end, _)) => format!("{}...", &raw[..end]),
        None => raw.to_owned(),
    };
    let Some((kind, payload)) = data
        .strip_prefix("image/")
        .and_then(|rest| rest.split_once(";base64,"))
    else {
        return Some(format!("{shown:?} {usage}"));
    };
    if !LOGO_DATA_TYPES.contains(&kind) {
        return Some(format!(
            "{shown:?}: a data: logo must be image/png, image/gif, image/jpeg, image/webp \
             or image/svg+xml"
        ));
    }
    let body = payload.trim_end_matches('=');
    let base64 = !body.is_empty()
        && payload.len() - body.len() <= 2
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    (!base64).then(|| format!("{shown:?}: the data after ;base64, is not base64"))
}

/// Why `raw` cannot be a footer link's target, if it cannot: an http(s) URL or a /path.
fn link_url_problem(raw: &str) -> Option<String> {
    let usage = "must be an https:// or http:// URL, or a path starting with /";
    if raw.len() > MAX_LOGO_URL_BYTES || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{raw:?} {usage}, without spaces"));
    }
    if raw.starts_with('/') && !raw.starts_with("//") {
        return None;
    }
    match Url::parse(raw) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => None,
        Ok(_) | Err(_) => Some(format!("{raw:?} {usage}")),
    }
}
