//! Checks and rendering of what publishers write and upload: repository descriptions,
//! overviews (Markdown), categories and logos. Every refusal names the rule that failed.

use pulldown_cmark::{Event, Options, Parser, Tag};

use crate::HubError;

/// The curated categories, as (slug, name), in the seeds' order.
pub const CATEGORIES: [(&str, &str); 16] = [
    ("api-management", "API management"),
    ("content-management-system", "Content management system"),
    ("data-science", "Data science"),
    ("developer-tools", "Developer tools"),
    ("databases-and-storage", "Databases & storage"),
    ("languages-and-frameworks", "Languages & frameworks"),
    ("integration-and-delivery", "Integration & delivery"),
    ("internet-of-things", "Internet of things"),
    ("machine-learning-and-ai", "Machine learning & AI"),
    ("message-queues", "Message queues"),
    ("monitoring-and-observability", "Monitoring & Observability"),
    ("networking", "Networking"),
    ("operating-systems", "Operating systems"),
    ("security", "Security"),
    ("web-servers", "Web servers"),
    ("web-analytics", "Web analytics"),
];
pub const MAX_CATEGORIES: usize = 3;
pub const MAX_DESCRIPTION_CHARS: usize = 100;
pub const MAX_OVERVIEW_CHARS: usize = 25_000;

/// Logo rules, as in the seeds.
pub const LOGO_MAX_BYTES: usize = 5 * 1024 * 1024;
pub const LOGO_MIN_PIXELS: u32 = 120;
pub const LOGO_MAX_PIXELS: u32 = 1000;
/// The publisher profile's logo: square, at least this many pixels a side.
pub const PROFILE_LOGO_MIN_PIXELS: u32 = 512;
pub const PROFILE_LOGO_MAX_PIXELS: u32 = 4096;

/// The display name of a category slug.
pub fn category_name(slug: &str) -> Option<&'static str> {
    CATEGORIES.iter().find(|(s, _)| *s == slug).map(|(_, n)| *n)
}

/// Checks a description: at most 100 characters, one line.
pub fn check_description(d: &str) -> Result<(), HubError> {
    let n = d.chars().count();
    if n > MAX_DESCRIPTION_CHARS {
        return Err(HubError::InvalidInput(format!(
            "the description is {n} characters long; it can be at most {MAX_DESCRIPTION_CHARS}"
        )));
    }
    if d.chars().any(char::is_control) {
        return Err(HubError::InvalidInput(
            "the description must be one line of text, without control characters".into(),
        ));
    }
    Ok(())
}

/// Resolves categories given by slug or by name to slugs: known, at most three, no repeats.
pub fn check_categories(given: &[String]) -> Result<Vec<String>, HubError> {
    let mut slugs: Vec<String> = Vec::new();
    for g in given {
        let g = g.trim();
        let Some((slug, _)) = CATEGORIES
            .iter()
            .find(|(s, n)| *s == g || n.eq_ignore_ascii_case(g))
        else {
            return Err(HubError::InvalidInput(format!(
                "{g:?} is not a category; choose from: {}",
                CATEGORIES.map(|(s, _)| s).join(", ")
            )));
        };
        if !slugs.iter().any(|s| s == slug) {
            slugs.push((*slug).to_owned());
        }
    }
    if slugs.len() > MAX_CATEGORIES {
        return Err(HubError::InvalidInput(format!(
            "a repository can have at most {MAX_CATEGORIES} categories; {} were given",
            slugs.len()
        )));
    }
    Ok(slugs)
}

fn safe_url(url: &str) -> bool {
    let cleaned: String = url
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .collect::<String>()
        .to_ascii_lowercase();
    match cleaned.split_once(':') {
        // A colon after a slash, `?` or `#` is part of a relative reference.
        Some((scheme, _)) if !scheme.contains(['/', '?', '#']) => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

fn runnable_html(html: &str) -> Option<&'static str> {
    let lower = html.to_ascii_lowercase();
    if lower.contains("<script") {
        return Some("a <script> element");
    }
    for tag in [
        "<iframe", "<object", "<embed", "<form", "<style", "<svg", "<math",
    ] {
        if lower.contains(tag) {
            return Some("an embedded element (iframe, object, embed, form, style, svg or math)");
        }
    }
    let bytes = lower.as_bytes();
    for (i, w) in lower.match_indices("on") {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let rest = &lower[i + w.len()..];
        let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let after = rest[name_len..].trim_start();
        if matches!(before, Some(b' ' | b'\t' | b'\n' | b'/' | b'"' | b'\''))
            && name_len > 0
            && after.starts_with('=')
        {
            return Some("an event-handler attribute (onclick=, onerror=, …)");
        }
    }
    if lower.contains("javascript:")
        || lower.contains("vbscript:")
        || lower.contains("data:text/html")
    {
        return Some("a javascript: or similar URL");
    }
    None
}

/// Checks an overview: Markdown of at most 25,000 characters with no raw HTML that can run
/// (scripts, event handlers, embedded objects) and only http, https, mailto or relative links.
pub fn check_overview(md: &str) -> Result<(), HubError> {
    let n = md.chars().count();
    if n > MAX_OVERVIEW_CHARS {
        return Err(HubError::InvalidInput(format!(
            "the overview is {n} characters long; it can be at most {MAX_OVERVIEW_CHARS}"
        )));
    }
    if let Some(c) = md
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(HubError::InvalidInput(format!(
            "the overview contains the control character U+{:04X}; only text, tabs and line breaks are allowed",
            c as u32
        )));
    }
    for event in Parser::new_ext(md, Options::all()) {
        match event {
            Event::Html(h) | Event::InlineHtml(h) => {
                if let Some(what) = runnable_html(&h) {
                    return Err(HubError::InvalidInput(format!(
                        "the overview contains {what}; Markdown may include plain HTML but nothing that runs"
                    )));
                }
            }
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. })
                if !safe_url(&dest_url) =>
            {
                return Err(HubError::InvalidInput(format!(
                    "the overview links to {:?}; links must be http:, https:, mailto: or relative (javascript: and other schemes are refused)",
                    dest_url.chars().take(60).collect::<String>()
                )));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Renders Markdown to HTML that is safe to put in a page whatever the input: the output
/// of the Markdown renderer passes through an HTML sanitizer that keeps only inert elements
/// and attributes and http(s)/mailto/relative URLs.
pub fn render_markdown(md: &str) -> String {
    let mut html = String::new();
    pulldown_cmark::html::push_html(
        &mut html,
        Parser::new_ext(
            md,
            Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS,
        ),
    );
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into())
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

/// A validated logo.
#[derive(Debug, Clone)]
pub struct Logo {
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Judges an image by its content: JPEG or PNG, size and pixel bounds.
fn check_image(data: &[u8], what: &str) -> Result<(Logo, image::ImageFormat), HubError> {
    if data.len() > LOGO_MAX_BYTES {
        return Err(HubError::InvalidInput(format!(
            "the {what} is {} bytes; it can be at most 5 MB ({LOGO_MAX_BYTES} bytes)",
            data.len()
        )));
    }
    let format = image::guess_format(data).ok();
    let media_type = match format {
        Some(image::ImageFormat::Png) => "image/png",
        Some(image::ImageFormat::Jpeg) => "image/jpeg",
        Some(other) => {
            return Err(HubError::InvalidInput(format!(
                "the {what} is a {} image; only JPEG and PNG are accepted (judged by content, not by file name)",
                other
                    .extensions_str()
                    .first()
                    .unwrap_or(&"?")
                    .to_uppercase()
            )));
        }
        None => {
            return Err(HubError::InvalidInput(format!(
                "the {what} is not a JPEG or PNG image (judged by content, not by file name)"
            )));
        }
    };
    let format = format.unwrap_or(image::ImageFormat::Png);
    let (width, height) = image::ImageReader::with_format(std::io::Cursor::new(data), format)
        .into_dimensions()
        .map_err(|e| {
            HubError::InvalidInput(format!("the {what} cannot be read as {media_type}: {e}"))
        })?;
    Ok((
        Logo {
            media_type,
            width,
            height,
        },
        format,
    ))
}

/// Checks a repository logo: JPEG or PNG, 120×120 to 1000×1000 pixels, at most 5 MB.
pub fn check_logo(data: &[u8]) -> Result<Logo, HubError> {
    let (logo, _) = check_image(data, "logo")?;
    let (w, h) = (logo.width, logo.height);
    if w < LOGO_MIN_PIXELS || h < LOGO_MIN_PIXELS {
        return Err(HubError::InvalidInput(format!(
            "the logo is {w}×{h} pixels; it must be at least {LOGO_MIN_PIXELS}×{LOGO_MIN_PIXELS}"
        )));
    }
    if w > LOGO_MAX_PIXELS || h > LOGO_MAX_PIXELS {
        return Err(HubError::InvalidInput(format!(
            "the logo is {w}×{h} pixels; it can be at most {LOGO_MAX_PIXELS}×{LOGO_MAX_PIXELS}"
        )));
    }
    Ok(logo)
}

/// Checks a publisher profile logo: JPEG or PNG, square, at least 512×512, at most 5 MB.
pub fn check_profile_logo(data: &[u8]) -> Result<Logo, HubError> {
    let (logo, _) = check_image(data, "publisher logo")?;
    let (w, h) = (logo.width, logo.height);
    if w != h {
        return Err(HubError::InvalidInput(format!(
            "the publisher logo is {w}×{h} pixels; it must be square"
        )));
    }
    if w < PROFILE_LOGO_MIN_PIXELS {
        return Err(HubError::InvalidInput(format!(
            "the publisher logo is {w}×{h} pixels; it must be at least {PROFILE_LOGO_MIN_PIXELS}×{PROFILE_LOGO_MIN_PIXELS}"
        )));
    }
    if w > PROFILE_LOGO_MAX_PIXELS {
        return Err(HubError::InvalidInput(format!(
            "the publisher logo is {w}×{h} pixels; it can be at most {PROFILE_LOGO_MAX_PIXELS}×{PROFILE_LOGO_MAX_PIXELS}"
        )));
    }
    Ok(logo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        image::RgbImage::new(w, h)
            .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn descriptions_are_at_most_100_characters() {
        assert!(check_description(&"é".repeat(100)).is_ok());
        let e = check_description(&"a".repeat(101)).unwrap_err().to_string();
        assert!(
            e.contains("101 characters") && e.contains("at most 100"),
            "{e}"
        );
    }

    #[test]
    fn categories_are_from_the_list_and_at_most_three() {
        assert_eq!(
            check_categories(&["Databases & storage".into(), "networking".into()]).unwrap(),
            ["databases-and-storage", "networking"]
        );
        let four: Vec<String> = CATEGORIES[..4].iter().map(|(s, _)| s.to_string()).collect();
        assert!(
            check_categories(&four)
                .unwrap_err()
                .to_string()
                .contains("at most 3")
        );
        assert!(
            check_categories(&["games".into()])
                .unwrap_err()
                .to_string()
                .contains("not a category")
        );
    }

    #[test]
    fn overviews_with_runnable_content_are_refused() {
        for bad in [
            "hello <script>alert(1)</script>",
            "[x](javascript:alert(1))",
            "[x]( JaVaScRiPt:alert(1))",
            "nul \u{0} byte",
            "<img src=x onerror=alert(1)>",
            "![i](vbscript:msgbox)",
            "<iframe src=https://example.com></iframe>",
        ] {
            assert!(check_overview(bad).is_err(), "{bad}");
        }
        for good in [
            "# Title\n\nRun `docker run x`. See [docs](https://example.com) and [here](/r/a/b).",
            "<details><summary>More</summary>text</details>",
            "Questions? online=yes is fine in text",
        ] {
            assert!(check_overview(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn rendering_is_safe_whatever_the_input() {
        let html = render_markdown(
            "# T\n\n<img src=x onerror=alert(1)> [a](javascript:x) <script>x</script>",
        );
        assert!(html.contains("<h1>T</h1>"));
        assert!(
            !html.contains("onerror") && !html.contains("javascript:") && !html.contains("<script"),
            "{html}"
        );
    }

    #[test]
    fn logos_are_judged_by_content_and_size() {
        assert_eq!(check_logo(&png(120, 120)).unwrap().media_type, "image/png");
        assert!(
            check_logo(&png(119, 200))
                .unwrap_err()
                .to_string()
                .contains("at least 120×120")
        );
        assert!(
            check_logo(&png(1001, 500))
                .unwrap_err()
                .to_string()
                .contains("at most 1000×1000")
        );
        let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
        assert!(check_logo(&gif).unwrap_err().to_string().contains("GIF"));
        let svg = b"<svg xmlns='http://www.w3.org/2000/svg'/>".to_vec();
        assert!(
            check_logo(&svg)
                .unwrap_err()
                .to_string()
                .contains("not a JPEG or PNG")
        );
        let big = vec![0u8; 6 * 1000 * 1000];
        assert!(
            check_logo(&big)
                .unwrap_err()
                .to_string()
                .contains("at most 5 MB")
        );
        assert!(
            check_profile_logo(&png(512, 511))
                .unwrap_err()
                .to_string()
                .contains("square")
        );
        assert!(
            check_profile_logo(&png(256, 256))
                .unwrap_err()
                .to_string()
                .contains("512×512")
        );
        assert!(check_profile_logo(&png(512, 512)).is_ok());
    }
}
