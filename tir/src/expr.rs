//! Scalar expressions of the loop-level IR.

use crate::dtype::ScalarType;
use serde::{Deserialize, Serialize};

/// A binary operator.
///
/// Arithmetic operators apply to two operands of the same type (`Int` or `F32`).
/// On `Int`, `Div` and `Mod` are *floor* division and *floor* modulo (as TVM's
/// `floordiv`/`floormod`): `-7 / 2 == -4`, `-7 % 2 == 1`; on `F32`, `Div` is IEEE
/// division and `Mod` is not allowed. Comparisons take two `Int` or two `F32` operands
/// and give `Bool`; `And`/`Or` take and give `Bool`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BinOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (floor division on `Int`)
    Div,
    /// `a % b` (floor modulo, `Int` only)
    Mod,
    /// `min(a, b)`
    Min,
    /// `max(a, b)`
    Max,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
    /// `a && b`
    And,
    /// `a || b`
    Or,
}

impl BinOp {
    /// Every operator, in a fixed order (used by tests and hashing).
    pub const ALL: [BinOp; 15] = [
        BinOp::Add,
        BinOp::Sub,
        BinOp::Mul,
        BinOp::Div,
        BinOp::Mod,
        BinOp::Min,
        BinOp::Max,
        BinOp::Eq,
        BinOp::Ne,
        BinOp::Lt,
        BinOp::Le,
        BinOp::Gt,
        BinOp::Ge,
        BinOp::And,
        BinOp::Or,
    ];

    /// The symbol (`+`, `<=`, ...) or function name (`min`, `max`) in the text format.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Min => "min",
            BinOp::Max => "max",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }

    /// True for `min`/`max`, which print as calls rather than infix operators.
    pub fn is_call_form(self) -> bool {
        matches!(self, BinOp::Min | BinOp::Max)
    }

    /// True for comparisons, whose result is `Bool`.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge
        )
    }

    /// True for `&&` and `||`.
    pub fn is_logic(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or)
    }
}

/// A unary operator. (There is no negation: write `0 - x`, or a negative literal.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UnOp {
    /// Logical not of a `Bool`: `!a`.
    Not,
}

/// A math intrinsic on `F32` values. All take one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Intrinsic {
    /// `exp(x)`
    Exp,
    /// `tanh(x)`
    Tanh,
    /// `sigmoid(x) = 1 / (1 + exp(-x))`
    Sigmoid,
    /// `sqrt(x)`
    Sqrt,
    /// `abs(x)`
    Abs,
}

impl Intrinsic {
    /// Every intrinsic, in a fixed order.
    pub const ALL: [Intrinsic; 5] = [
        Intrinsic::Exp,
        Intrinsic::Tanh,
        Intrinsic::Sigmoid,
        Intrinsic::Sqrt,
        Intrinsic::Abs,
    ];

    /// The function name in the text format.
    pub fn name(self) -> &'static str {
        match self {
            Intrinsic::Exp => "exp",
            Intrinsic::Tanh => "tanh",
            Intrinsic::Sigmoid => "sigmoid",
            Intrinsic::Sqrt => "sqrt",
            Intrinsic::Abs => "abs",
        }
    }

    /// Looks an intrinsic up by its text-format name.
    pub fn from_name(name: &str) -> Option<Intrinsic> {
        Intrinsic::ALL.into_iter().find(|i| i.name() == name)
    }

    /// Evaluates the intrinsic on the host; this is the reference semantics.
    pub fn eval(self, x: f32) -> f32 {
        match self {
            Intrinsic::Exp => x.exp(),
            Intrinsic::Tanh => x.tanh(),
            Intrinsic::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Intrinsic::Sqrt => x.sqrt(),
            Intrinsic::Abs => x.abs(),
        }
    }
}

/// A scalar expression.
///
/// Variables are referred to by name; a name is bound by an enclosing `for` or `let`.
/// Buffers are referred to by the name of a function parameter or of an enclosing
/// `alloc`. A load's indices are `Int` expressions, one per buffer dimension; an index
/// may itself load from an index buffer, which is how BCR kernels gather inputs and
/// scatter outputs (indirect loads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// An integer constant.
    Int(i64),
    /// A float constant.
    Float(f32),
    /// A boolean constant.
    Bool(bool),
    /// A variable bound by `for` or `let`.
    Var(String),
    /// `a op b`.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `op a`.
    Unary(UnOp, Box<Expr>),
    /// `select(cond, then, else)`: `cond` is evaluated, then only the branch it picks
    /// (as C's and OpenCL's `?:`), so a branch may hold a load that would be out of
    /// bounds when it is not picked (a masked vector load).
    Select(Box<Expr>, Box<Expr>, Box<Expr>),
    /// Conversion to `Int` (truncating a float toward zero) or `F32`.
    Cast(ScalarType, Box<Expr>),
    /// `buffer[i, j, ...]`.
    Load {
        /// Buffer name.
        buffer: String,
        /// One `Int` index per dimension.
        indices: Vec<Expr>,
    },
    /// A math intrinsic call such as `tanh(x)`.
    Call(Intrinsic, Vec<Expr>),
}

impl Expr {
    /// A variable reference.
    pub fn var(name: impl Into<String>) -> Expr {
        Expr::Var(name.into())
    }

    /// A load `buffer[indices]`.
    pub fn load(buffer: impl Into<String>, indices: Vec<Expr>) -> Expr {
        Expr::Load {
            buffer: buffer.into(),
            indices,
        }
    }

    /// A binary expression `a op b`.
    pub fn binary(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// `min(self, other)`.
    pub fn min(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Min, self, other)
    }

    /// `max(self, other)`.
    pub fn max(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Max, self, other)
    }

    /// `self == other`.
    pub fn eq_(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Eq, self, other)
    }

    /// `self < other`.
    pub fn lt(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Lt, self, other)
    }

    /// `self <= other`.
    pub fn le(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Le, self, other)
    }

    /// `self >= other`.
    pub fn ge(self, other: Expr) -> Expr {
        Expr::binary(BinOp::Ge, self, other)
    }

    /// `self && other`.
    pub fn and(self, other: Expr) -> Expr {
        Expr::binary(BinOp::And, self, other)
    }

    /// `select(cond, a, b)`.
    pub fn select(cond: Expr, a: Expr, b: Expr) -> Expr {
        Expr::Select(Box::new(cond), Box::new(a), Box::new(b))
    }

    /// `intrinsic(self)`.
    pub fn call(intrinsic: Intrinsic, arg: Expr) -> Expr {
        Expr::Call(intrinsic, vec![arg])
    }

    /// Conversion to `ty`.
    pub fn cast(ty: ScalarType, e: Expr) -> Expr {
        Expr::Cast(ty, Box::new(e))
    }
}

impl From<i64> for Expr {
    fn from(v: i64) -> Expr {
        Expr::Int(v)
    }
}

impl From<f32> for Expr {
    fn from(v: f32) -> Expr {
        Expr::Float(v)
    }
}

macro_rules! impl_arith {
    ($trait:ident, $method:ident, $op:expr) => {
        impl std::ops::$trait for Expr {
            type Output = Expr;
            fn $method(self, rhs: Expr) -> Expr {
                Expr::binary($op, self, rhs)
            }
        }
    };
}
impl_arith!(Add, add, BinOp::Add);
impl_arith!(Sub, sub, BinOp::Sub);
impl_arith!(Mul, mul, BinOp::Mul);
impl_arith!(Div, div, BinOp::Div);
impl_arith!(Rem, rem, BinOp::Mod);
