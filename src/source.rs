//! Where each key and value of a YAML file sits, so semantic problems found after serde has done
//! its work can still be reported at `path:line:col`.
//!
//! serde_yaml only locates its own syntax and type errors; this keeps a second, marked parse of
//! the same text (yaml-rust2's event stream) and maps every node path to its position.

use std::collections::HashMap;
use std::fmt;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::diagnostic::Position;

/// One step into a YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PathSeg {
    /// A key of a mapping.
    Key(String),
    /// A 0-based index of a sequence.
    Index(usize),
}

/// A path from the document root to a node, e.g. `steps.size.send[0].buttons`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct YamlPath(pub Vec<PathSeg>);

impl YamlPath {
    /// The root of the document.
    #[must_use]
    pub fn root() -> Self {
        Self::default()
    }

    /// This path extended by a mapping key.
    #[must_use]
    pub fn key(&self, key: impl Into<String>) -> Self {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Key(key.into()));
        Self(segs)
    }

    /// This path extended by a sequence index.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(PathSeg::Index(index));
        Self(segs)
    }

    /// This path followed by `other`.
    #[must_use]
    pub fn join(&self, other: &YamlPath) -> Self {
        let mut segs = self.0.clone();
        segs.extend(other.0.iter().cloned());
        Self(segs)
    }

    /// The path one level up; the root stays the root.
    #[must_use]
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Self(segs)
    }
}

impl fmt::Display for YamlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(key) if i == 0 => write!(f, "{key}")?,
                PathSeg::Key(key) => write!(f, ".{key}")?,
                PathSeg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Positions of every node of one YAML document.
#[derive(Debug, Default)]
pub struct SourceMap {
    values: HashMap<YamlPath, Position>,
    keys: HashMap<YamlPath, Position>,
    contents: HashMap<YamlPath, Position>,
}

impl SourceMap {
    /// Maps `text`; a syntax error yields an empty map (serde_yaml reports syntax errors itself).
    #[must_use]
    pub fn parse(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        builder.map
    }

    /// Where the value at `path` starts.
    #[must_use]
    pub fn value(&self, path: &YamlPath) -> Option<Position> {
        self.values.get(path).copied()
    }

    /// Where the text of the scalar at `path` starts: inside its quotes, or the first line of a
    /// literal block. `None` for folded blocks, whose lines do not map back one to one.
    #[must_use]
    pub fn content(&self, path: &YamlPath) -> Option<Position> {
        self.contents.get(path).copied()
    }

    /// Where the key of the mapping entry at `path` starts (its value for sequence items).
    #[must_use]
    pub fn key(&self, path: &YamlPath) -> Option<Position> {
        self.keys
            .get(path)
            .or_else(|| self.values.get(path))
            .copied()
    }

    /// The best position for a problem at `path`: its key, else the nearest ancestor's, else 1:1.
    #[must_use]
    pub fn locate(&self, path: &YamlPath) -> Position {
        let mut path = path.clone();
        while !path.0.is_empty() {
            if let Some(position) = self.key(&path) {
                return position;
            }
            path = path.parent();
        }
        Position::new(1, 1)
    }
}

/// Where the parser is inside a collection.
enum Frame {
    Mapping {
        path: YamlPath,
        pending_key: Option<(String, Position)>,
    },
    Sequence {
        path: YamlPath,
        next: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    map: SourceMap,
    /// Nesting of collections used as mapping keys, which we do not index.
    complex_key_depth: usize,
}

impl Builder {
    /// The path of the node that starts now, or `None` when the node is a mapping key.
    fn next_path(&mut self) -> Option<(YamlPath, Option<Position>)> {
        match self.stack.last_mut() {
            None => Some((YamlPath::root(), None)),
            Some(Frame::Sequence { path, next }) => {
                let node = path.index(*next);
                *next += 1;
                Some((node, None))
            }
            Some(Frame::Mapping { path, pending_key }) => {
                let (key, key_pos) = pending_key.take()?;
                Some((path.key(key), Some(key_pos)))
            }
        }
    }

    /// A mapping key: remembered for the value that follows. yaml-rust2 marks a block mapping
    /// inside a list after its first key, so the mapping is moved back to that key.
    fn key_scalar(&mut self, text: String, pos: Position) {
        if let Some(Frame::Mapping { path, pending_key }) = self.stack.last_mut() {
            if let Some(start) = self.map.values.get_mut(path) {
                *start = (*start).min(pos);
            }
            *pending_key = Some((text, pos));
        }
    }

    fn record(&mut self, path: &YamlPath, value: Position, key: Option<Position>) {
        self.map.values.insert(path.clone(), value);
        if let Some(key) = key {
            self.map.keys.insert(path.clone(), key);
        }
    }
}

fn position(mark: Marker) -> Position {
    Position::new(mark.line(), mark.col() + 1)
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.complex_key_depth > 0 {
            match event {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.complex_key_depth += 1,
                Event::MappingEnd | Event::SequenceEnd => self.complex_key_depth -= 1,
                _ => {}
            }
            return;
        }
        let pos = position(mark);
        match event {
            Event::Scalar(text, style, ..) => match self.next_path() {
                Some((path, key)) => {
                    let content = match style {
                        TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                            Some(Position::new(pos.line, pos.col + 1))
                        }
                        TScalarStyle::Folded => None,
                        _ => Some(pos),
                    };
                    if let Some(content) = content {
                        self.map.contents.insert(path.clone(), content);
                    }
                    self.record(&path, pos, key);
                }
                None => self.key_scalar(text, pos),
            },
            Event::Alias(_) => {
                if let Some((path, key)) = self.next_path() {
                    self.record(&path, pos, key);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let Some((path, key)) = self.next_path() else {
                    self.complex_key_depth = 1;
                    return;
                };
                self.record(&path, pos, key);
                let frame = if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping {
                        path,
                        pending_key: None,
                    }
                } else {
                    Frame::Sequence { path, next: 0 }
                };
                self.stack.push(frame);
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW: &str = "flow: pizza\nsteps:\n  size:\n    send:\n      - text: hi\n      - buttons:\n          body: b\n    next: adress\n";

    fn path(segs: &[&str]) -> YamlPath {
        YamlPath(
            segs.iter()
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => PathSeg::Index(i),
                    Err(_) => PathSeg::Key((*s).to_owned()),
                })
                .collect(),
        )
    }

    #[test]
    fn locates_keys_and_values() {
        let map = SourceMap::parse(FLOW);
        assert_eq!(map.key(&path(&["flow"])), Some(Position::new(1, 1)));
        assert_eq!(map.value(&path(&["flow"])), Some(Position::new(1, 7)));
        assert_eq!(
            map.key(&path(&["steps", "size", "next"])),
            Some(Position::new(8, 5))
        );
        assert_eq!(
            map.value(&path(&["steps", "size", "next"])),
            Some(Position::new(8, 11))
        );
        assert_eq!(
            map.key(&path(&["steps", "size", "send", "1", "buttons", "body"])),
            Some(Position::new(7, 11))
        );
    }

    #[test]
    fn list_items_that_are_block_mappings_start_at_their_first_key() {
        let map = SourceMap::parse("triggers:\n  - keywords: [deals]\n    when: x\n");
        assert_eq!(
            map.value(&path(&["triggers", "0"])),
            Some(Position::new(2, 5))
        );
        assert_eq!(map.locate(&path(&["triggers", "0"])), Position::new(2, 5));
    }

    #[test]
    fn quoted_values_start_at_the_quote_and_their_text_inside_it() {
        let map = SourceMap::parse("next: \"nope\"\nrhai: |\n  a\nfold: >\n  b\n");
        assert_eq!(map.value(&path(&["next"])), Some(Position::new(1, 7)));
        assert_eq!(map.content(&path(&["next"])), Some(Position::new(1, 8)));
        assert_eq!(map.content(&path(&["rhai"])), Some(Position::new(3, 3)));
        assert_eq!(map.content(&path(&["fold"])), None);
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let map = SourceMap::parse(FLOW);
        assert_eq!(
            map.locate(&path(&["steps", "size", "ask", "save"])),
            Position::new(3, 3)
        );
        assert_eq!(map.locate(&path(&["nowhere"])), Position::new(1, 1));
    }

    #[test]
    fn displays_paths_like_a_reader_would_write_them() {
        assert_eq!(
            path(&["steps", "size", "send", "0", "buttons"]).to_string(),
            "steps.size.send[0].buttons"
        );
    }
}
