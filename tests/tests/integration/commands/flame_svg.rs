//! Reads an inferno flame graph back with an XML parser (quick-xml): its title, subtitle, the
//! total of its frames and every frame (name, `fg:x`/`fg:w` in raw counts, vertical position).
//! Used by the flame graph and diff tests.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// One frame (`<g><title>NAME (COUNT UNIT, P%)</title><rect fg:x fg:w y/></g>`).
#[derive(Debug, Clone)]
pub struct Frame {
    pub name: String,
    /// The tooltip, whole.
    pub tooltip: String,
    /// Start and width in the graph's raw counts (CPU ns for sigtrace's graphs). No test compares
    /// the start yet; parsing it checks that every frame has one, and failures print it.
    #[allow(dead_code)]
    pub x: u64,
    pub width: u64,
    /// The rectangle's top edge, px (grows downwards).
    pub y: f64,
}

#[derive(Debug, Clone, Default)]
pub struct FlameSvg {
    pub title: String,
    pub subtitle: String,
    /// `total_samples` of the frames' container: the width of the whole graph in raw counts.
    pub total: u64,
    pub frames: Vec<Frame>,
}

impl FlameSvg {
    /// Frames named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Frame> + 'a {
        self.frames.iter().filter(move |frame| frame.name == name)
    }

    /// The widest frame named `name`.
    pub fn widest<'a>(&'a self, name: &'a str) -> &'a Frame {
        self.named(name).max_by_key(|frame| frame.width).unwrap_or_else(|| panic!("a {name} frame"))
    }

    /// Summed width of the frames named `name` (a function called from one place has one).
    pub fn width_of(&self, name: &str) -> u64 {
        self.named(name).map(|frame| frame.width).sum()
    }

    /// The `all` frame (the root inferno draws under everything).
    pub fn all(&self) -> &Frame {
        self.named("all").next().expect("an `all` frame")
    }

    /// The frames right above `all` (one level deeper), whichever way the graph grows.
    pub fn roots(&self) -> Vec<&Frame> {
        let all = self.all();
        let mut depths: Vec<f64> = self.frames.iter().map(|frame| frame.y).collect();
        depths.sort_by(f64::total_cmp);
        depths.dedup();
        let index = depths.iter().position(|&y| y == all.y).expect("the depth of `all`");
        // The next row away from `all`: above it in a flame graph, below it in an icicle graph.
        let next = if index == 0 { depths.get(1) } else { depths.get(index - 1) };
        self.frames.iter().filter(|frame| Some(&frame.y) == next).collect()
    }
}

fn attribute(element: &BytesStart<'_>, name: &str) -> Option<String> {
    let attribute = element.try_get_attribute(name).ok()??;
    Some(String::from_utf8_lossy(&attribute.value).into_owned())
}

/// Parses `svg`; panics (failing the test) when it is not well-formed XML.
pub fn parse(svg: &[u8]) -> FlameSvg {
    let text = std::str::from_utf8(svg).expect("the SVG is UTF-8");
    let mut reader = Reader::from_str(text);
    let mut parsed = FlameSvg::default();
    // Which text is being read: the title, the subtitle, or a frame's tooltip.
    #[derive(PartialEq)]
    enum Reading {
        Nothing,
        Title,
        Subtitle,
        Tooltip,
    }
    let mut reading = Reading::Nothing;
    let mut in_frames = false;
    let mut tooltip = String::new();
    let mut rect: Option<(u64, u64, f64)> = None;
    let mut target = String::new();
    loop {
        match reader.read_event().unwrap_or_else(|e| panic!("the SVG is not well-formed XML at {}: {e}", reader.buffer_position())) {
            Event::Start(element) => match (element.name().as_ref(), attribute(&element, "id").as_deref()) {
                (b"text", Some("title")) => (reading, target) = (Reading::Title, String::new()),
                (b"text", Some("subtitle")) => (reading, target) = (Reading::Subtitle, String::new()),
                (b"svg", Some("frames")) => {
                    in_frames = true;
                    parsed.total = attribute(&element, "total_samples").and_then(|t| t.parse().ok()).expect("total_samples");
                }
                (b"g", _) if in_frames => {
                    tooltip.clear();
                    rect = None;
                }
                (b"title", _) if in_frames => (reading, target) = (Reading::Tooltip, String::new()),
                _ => {}
            },
            Event::Empty(element) if in_frames && element.name().as_ref() == b"rect" => {
                let number = |name: &str| attribute(&element, name).unwrap_or_else(|| panic!("a frame's rect has {name}"));
                rect = Some((number("fg:x").parse().expect("fg:x"), number("fg:w").parse().expect("fg:w"), number("y").parse().expect("y")));
            }
            Event::Text(content) if reading != Reading::Nothing => target.push_str(&content.decode().expect("UTF-8 text")),
            Event::GeneralRef(reference) if reading != Reading::Nothing => {
                let name = reference.decode().expect("UTF-8 reference");
                let character = match name.as_ref() {
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "amp" => Some('&'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => reference.resolve_char_ref().expect("a character reference"),
                };
                target.extend(character);
            }
            Event::End(element) => {
                match reading {
                    Reading::Title if element.name().as_ref() == b"text" => parsed.title = std::mem::take(&mut target),
                    Reading::Subtitle if element.name().as_ref() == b"text" => parsed.subtitle = std::mem::take(&mut target),
                    Reading::Tooltip if element.name().as_ref() == b"title" => tooltip = std::mem::take(&mut target),
                    _ => {}
                }
                if element.name().as_ref() == b"text" || element.name().as_ref() == b"title" {
                    reading = Reading::Nothing;
                    target.clear();
                }
                if in_frames && element.name().as_ref() == b"g" {
                    let (x, width, y) = rect.take().expect("a frame has a rect");
                    let name = tooltip.rsplit_once(" (").map_or(tooltip.as_str(), |(name, _)| name).to_string();
                    parsed.frames.push(Frame { name, tooltip: tooltip.clone(), x, width, y });
                }
                if element.name().as_ref() == b"svg" {
                    in_frames = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    parsed
}
