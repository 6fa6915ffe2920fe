//! The ONNX protobuf messages grim reads and writes, declared with `prost`'s derive.
//!
//! Written by hand from `onnx/onnx.proto` (ONNX IR version 7 and later; the ONNX
//! project's file, MIT license): every field keeps its tag and wire type, so these
//! structs read and write real ONNX files. Fields grim does not use are left out
//! (prost skips unknown fields when decoding). Messages grim never interprets but must
//! notice (subgraphs, sparse tensors) are kept as raw bytes so they cost no recursion.
//! No `protoc` is needed to build.
//!
//! `onnx.proto` is proto2: repeated numbers are packed only where it says
//! `[packed = true]` (tensor data); the others are declared `packed = "false"` so
//! grim writes them as other ONNX writers do.
//!
//! Enumerations are plain `i32` fields (protobuf enums are varints on the wire); their
//! values are the constants in [`data_type`] and [`attribute_type`].

/// `TensorProto.DataType` values.
pub mod data_type {
    /// 32-bit float.
    pub const FLOAT: i32 = 1;
    /// 32-bit signed integer.
    pub const INT32: i32 = 6;
    /// 64-bit signed integer.
    pub const INT64: i32 = 7;
    /// 64-bit float.
    pub const DOUBLE: i32 = 11;

    /// The type's name in messages.
    pub fn name(t: i32) -> &'static str {
        match t {
            0 => "UNDEFINED",
            1 => "FLOAT",
            2 => "UINT8",
            3 => "INT8",
            4 => "UINT16",
            5 => "INT16",
            6 => "INT32",
            7 => "INT64",
            8 => "STRING",
            9 => "BOOL",
            10 => "FLOAT16",
            11 => "DOUBLE",
            12 => "UINT32",
            13 => "UINT64",
            14 => "COMPLEX64",
            15 => "COMPLEX128",
            16 => "BFLOAT16",
            _ => "an unknown type",
        }
    }
}

/// `AttributeProto.AttributeType` values.
pub mod attribute_type {
    /// One float (`f`).
    pub const FLOAT: i32 = 1;
    /// One integer (`i`).
    pub const INT: i32 = 2;
    /// One string (`s`).
    pub const STRING: i32 = 3;
    /// One tensor (`t`).
    pub const TENSOR: i32 = 4;
    /// Floats (`floats`).
    pub const FLOATS: i32 = 6;
    /// Integers (`ints`).
    pub const INTS: i32 = 7;
    /// Strings (`strings`).
    pub const STRINGS: i32 = 8;
}

/// `ModelProto`: the top-level message of an `.onnx` file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    /// IR version.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// Operator sets the graph uses.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// The tool that wrote the file.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Its version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// Model domain.
    #[prost(string, tag = "4")]
    pub domain: String,
    /// Model version.
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    /// Documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Functions defined by the model (raw; a node calling one is unsupported).
    #[prost(bytes = "vec", repeated, tag = "25")]
    pub functions: Vec<Vec<u8>>,
}

/// `OperatorSetIdProto`: one operator set (domain and version).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    /// Domain (`""` or `ai.onnx` for the standard operators).
    #[prost(string, tag = "1")]
    pub domain: String,
    /// Version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `GraphProto`: nodes, initializers, inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// Graph name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (weights).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// Sparse initializers (raw `SparseTensorProto`s; unsupported).
    #[prost(bytes = "vec", repeated, tag = "15")]
    pub sparse_initializer: Vec<Vec<u8>>,
    /// Documentation.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// Graph inputs (may include initializers).
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Graph outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    /// Types of intermediate values (optional).
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// `NodeProto`: one operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    /// Input value names (`""` for an omitted optional input).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names (`""` for an omitted optional output).
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// Node name (optional).
    #[prost(string, tag = "3")]
    pub name: String,
    /// Operator.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Operator set domain (`""` for the standard one).
    #[prost(string, tag = "7")]
    pub domain: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    /// Documentation.
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// `AttributeProto`: one named attribute of a node.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Reference to a function attribute (unsupported when set).
    #[prost(string, tag = "21")]
    pub ref_attr_name: String,
    /// Which value field is used ([`attribute_type`]).
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    /// Float value.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// Integer value.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// String value (UTF-8 bytes).
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// Tensor value.
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// Graph value (raw `GraphProto`; unsupported).
    #[prost(bytes = "vec", optional, tag = "6")]
    pub g: Option<Vec<u8>>,
    /// Floats.
    #[prost(float, repeated, tag = "7", packed = "false")]
    pub floats: Vec<f32>,
    /// Integers.
    #[prost(int64, repeated, tag = "8", packed = "false")]
    pub ints: Vec<i64>,
    /// Strings.
    #[prost(bytes = "vec", repeated, tag = "9")]
    pub strings: Vec<Vec<u8>>,
    /// Tensors.
    #[prost(message, repeated, tag = "10")]
    pub tensors: Vec<TensorProto>,
}

/// `ValueInfoProto`: a value's name and type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Type (a tensor type for grim).
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// Documentation.
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// `TypeProto`, of which grim reads the tensor case.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    /// The tensor type, when the value is a tensor.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeProtoTensor>,
    /// A sequence type (raw; unsupported).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub sequence_type: Option<Vec<u8>>,
    /// A map type (raw; unsupported).
    #[prost(bytes = "vec", optional, tag = "5")]
    pub map_type: Option<Vec<u8>>,
}

/// `TypeProto.Tensor`: element type and shape.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProtoTensor {
    /// Element type ([`data_type`]).
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Shape (absent: unknown rank).
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`: a list of dimensions.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    /// The dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size or a symbol.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dimension {
    /// The size or symbol (absent: unknown).
    #[prost(oneof = "DimValue", tags = "1, 2")]
    pub value: Option<DimValue>,
    /// Standard denotation.
    #[prost(string, tag = "3")]
    pub denotation: String,
}

/// The `value` oneof of a [`Dimension`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum DimValue {
    /// A fixed size.
    #[prost(int64, tag = "1")]
    DimValue(i64),
    /// A symbolic size.
    #[prost(string, tag = "2")]
    DimParam(String),
}

/// `TensorProto.Segment` (chunked tensors; unsupported when present).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Segment {
    /// First element.
    #[prost(int64, tag = "1")]
    pub begin: i64,
    /// One past the last element.
    #[prost(int64, tag = "2")]
    pub end: i64,
}

/// `StringStringEntryProto`: one key-value pair.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StringStringEntryProto {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `TensorProto`: a serialized tensor (initializers, constants, test data).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// Shape.
    #[prost(int64, repeated, tag = "1", packed = "false")]
    pub dims: Vec<i64>,
    /// Element type ([`data_type`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Chunking (unsupported when present).
    #[prost(message, optional, tag = "3")]
    pub segment: Option<Segment>,
    /// FLOAT elements.
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    /// INT32 (and smaller integer) elements.
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    /// STRING elements.
    #[prost(bytes = "vec", repeated, tag = "6")]
    pub string_data: Vec<Vec<u8>>,
    /// INT64 elements.
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    /// Name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Documentation.
    #[prost(string, tag = "12")]
    pub doc_string: String,
    /// Elements as little-endian bytes.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
    /// Where external data lives (unsupported when present).
    #[prost(message, repeated, tag = "13")]
    pub external_data: Vec<StringStringEntryProto>,
    /// `0` inline, `1` external.
    #[prost(int32, tag = "14")]
    pub data_location: i32,
    /// DOUBLE elements.
    #[prost(double, repeated, tag = "10")]
    pub double_data: Vec<f64>,
    /// UINT32/UINT64 elements.
    #[prost(uint64, repeated, tag = "11")]
    pub uint64_data: Vec<u64>,
}
