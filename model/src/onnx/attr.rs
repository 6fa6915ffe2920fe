//! A node's attributes, read by name and type. Every op lists the attributes it
//! understands; any other attribute is an error naming it, since it could change what
//! the op computes.

use super::proto::{attribute_type as ty, AttributeProto, NodeProto, TensorProto};
use crate::error::ModelError;
use std::collections::BTreeMap;

/// A node being imported, with the name used in messages.
pub(crate) struct NodeRef<'a> {
    /// The node.
    pub proto: &'a NodeProto,
    /// Its name, or a made-up one for nameless nodes.
    pub name: String,
}

impl<'a> NodeRef<'a> {
    /// The node at position `index` of its graph.
    pub fn new(proto: &'a NodeProto, index: usize) -> NodeRef<'a> {
        let name = if !proto.name.is_empty() {
            proto.name.clone()
        } else {
            match proto.output.first().filter(|o| !o.is_empty()) {
                Some(o) => format!("#{index} ({} -> {o})", proto.op_type),
                None => format!("#{index} ({})", proto.op_type),
            }
        };
        NodeRef { proto, name }
    }

    /// An error about this node.
    pub fn err(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Node {
            node: self.name.clone(),
            op: self.proto.op_type.clone(),
            reason: reason.into(),
        }
    }

    /// Input `i` (`None` when absent or given as `""`).
    pub fn input(&self, i: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(i)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Input `i`, which the op requires.
    pub fn required_input(&self, i: usize, what: &str) -> Result<&'a str, ModelError> {
        self.input(i)
            .ok_or_else(|| self.err(format!("input {i} ({what}) is missing")))
    }

    /// Output `i` (`None` when absent or given as `""`).
    pub fn output(&self, i: usize) -> Option<&'a str> {
        self.proto
            .output
            .get(i)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Output `i`, which the op requires.
    pub fn required_output(&self, i: usize) -> Result<&'a str, ModelError> {
        self.output(i)
            .ok_or_else(|| self.err(format!("output {i} is missing")))
    }

    /// The attributes, checked against the names the op understands.
    pub fn attrs(&self, known: &[&str]) -> Result<Attrs<'a, '_>, ModelError> {
        let mut map = BTreeMap::new();
        for a in &self.proto.attribute {
            if !a.ref_attr_name.is_empty() {
                return Err(self.err(format!(
                    "attribute `{}` refers to a function attribute, which grim does not support",
                    a.name
                )));
            }
            if !known.contains(&a.name.as_str()) {
                return Err(self.err(format!(
                    "attribute `{}` is not supported (grim understands: {})",
                    a.name,
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            }
            if map.insert(a.name.as_str(), a).is_some() {
                return Err(self.err(format!("attribute `{}` is given twice", a.name)));
            }
        }
        Ok(Attrs { node: self, map })
    }
}

/// The attributes of one node.
pub(crate) struct Attrs<'a, 'n> {
    node: &'n NodeRef<'a>,
    map: BTreeMap<&'a str, &'a AttributeProto>,
}

fn type_name(t: i32) -> &'static str {
    match t {
        ty::FLOAT => "FLOAT",
        ty::INT => "INT",
        ty::STRING => "STRING",
        ty::TENSOR => "TENSOR",
        5 => "GRAPH",
        ty::FLOATS => "FLOATS",
        ty::INTS => "INTS",
        ty::STRINGS => "STRINGS",
        9 => "TENSORS",
        10 => "GRAPHS",
        _ => "an unsupported type",
    }
}

impl<'a> Attrs<'a, '_> {
    fn get(&self, name: &str, want: i32) -> Result<Option<&'a AttributeProto>, ModelError> {
        match self.map.get(name) {
            None => Ok(None),
            // Type 0: IR version 1 files, which leave the type out.
            Some(a) if a.r#type == want || a.r#type == 0 => Ok(Some(*a)),
            Some(a) => Err(self.node.err(format!(
                "attribute `{name}` is {}, expected {}",
                type_name(a.r#type),
                type_name(want)
            ))),
        }
    }

    /// An error about attribute `name`.
    pub fn err(&self, name: &str, reason: impl std::fmt::Display) -> ModelError {
        self.node.err(format!("attribute `{name}`: {reason}"))
    }

    /// Whether the attribute is present.
    pub fn has(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// An INT attribute.
    pub fn int(&self, name: &str, default: i64) -> Result<i64, ModelError> {
        Ok(self.get(name, ty::INT)?.map_or(default, |a| a.i))
    }

    /// A FLOAT attribute.
    pub fn float(&self, name: &str, default: f32) -> Result<f32, ModelError> {
        Ok(self.get(name, ty::FLOAT)?.map_or(default, |a| a.f))
    }

    /// An INTS attribute.
    pub fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, ModelError> {
        Ok(self.get(name, ty::INTS)?.map(|a| &a.ints[..]))
    }

    /// A FLOATS attribute.
    pub fn floats(&self, name: &str) -> Result<Option<&'a [f32]>, ModelError> {
        Ok(self.get(name, ty::FLOATS)?.map(|a| &a.floats[..]))
    }

    /// A STRING attribute.
    pub fn string(&self, name: &str, default: &str) -> Result<String, ModelError> {
        match self.get(name, ty::STRING)? {
            None => Ok(default.to_string()),
            Some(a) => {
                String::from_utf8(a.s.clone()).map_err(|_| self.err(name, "is not valid UTF-8"))
            }
        }
    }

    /// A STRINGS attribute.
    pub fn strings(&self, name: &str) -> Result<Option<Vec<String>>, ModelError> {
        match self.get(name, ty::STRINGS)? {
            None => Ok(None),
            Some(a) => a
                .strings
                .iter()
                .map(|s| {
                    String::from_utf8(s.clone()).map_err(|_| self.err(name, "is not valid UTF-8"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// A TENSOR attribute.
    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>, ModelError> {
        match self.get(name, ty::TENSOR)? {
            None => Ok(None),
            Some(a) => {
                a.t.as_ref()
                    .map(Some)
                    .ok_or_else(|| self.err(name, "has no tensor"))
            }
        }
    }
}
