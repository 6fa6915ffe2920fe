//! The e-graph language: tir expressions at two levels in one [`egg::Language`].
//!
//! - **Index/value level**: integer and float arithmetic (`+ - * / %` with floor
//!   division/modulo on integers, exactly as [`crate::interp`]), `min`/`max`,
//!   comparisons, `&& || !`, `select`, casts, math intrinsics and loads
//!   `(load BUF i j ...)` whose first child is the buffer.
//! - **Tensor level**: small dense `f32` matrices and index vectors: `matmul`,
//!   `transpose`, `gather-rows`/`gather-cols` (take rows/columns by an index vector),
//!   `scatter-rows` (scatter-add rows into a zero matrix of a given row count),
//!   `vcat`/`hcat` (block concatenation), `icat` (index-vector concatenation),
//!   `inverse-perm`, elementwise `ew-add`/`ew-mul`/`ew-relu`/`ew-tanh`, `bcr-mask`
//!   (keep the entries whose row and column are both kept: one BCR block's pattern),
//!   and the integer-valued `rows`, `cols` and `len`.
//!
//! Leaves are integer literals (`3`, `-1`), float literals (written with a `.` or an
//! exponent: `0.0`, `1e-3`), `true`/`false`, and symbols (variable and buffer names in
//! index expressions, named tensors in tensor terms). [`Op`] lists every operator with
//! its arity; the rule-file parser uses it to reject unknown operators.

use egg::{define_language, Id, Symbol};
use std::fmt;
use std::str::FromStr;

/// An `f32` literal stored by its bits, so it can be hashed and ordered in an e-graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct F32Lit(pub u32);

impl F32Lit {
    /// The literal's value.
    pub fn value(self) -> f32 {
        f32::from_bits(self.0)
    }
}

impl FromStr for F32Lit {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        // Only spellings with a `.` or an exponent are floats; `3` is an integer.
        let looks_float = s.contains('.')
            || ((s.contains('e') || s.contains('E'))
                && s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_digit() || c == '-'));
        if !looks_float {
            return Err(format!("`{s}` is not a float literal"));
        }
        s.parse::<f32>()
            .map(|v| F32Lit(v.to_bits()))
            .map_err(|e| e.to_string())
    }
}

impl fmt::Display for F32Lit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.value())
    }
}

define_language! {
    /// A tir term in the e-graph (index/value level and tensor level; see the module
    /// docs for the meaning of each operator; [`OPS`] documents every variant).
    #[allow(missing_docs)]
    pub enum TirLang {
        "+" = Add([Id; 2]),
        "-" = Sub([Id; 2]),
        "*" = Mul([Id; 2]),
        "/" = Div([Id; 2]),
        "%" = Mod([Id; 2]),
        "min" = Min([Id; 2]),
        "max" = Max([Id; 2]),
        "==" = Eq([Id; 2]),
        "!=" = Ne([Id; 2]),
        "<" = Lt([Id; 2]),
        "<=" = Le([Id; 2]),
        ">" = Gt([Id; 2]),
        ">=" = Ge([Id; 2]),
        "&&" = And([Id; 2]),
        "||" = Or([Id; 2]),
        "!" = Not([Id; 1]),
        "select" = Select([Id; 3]),
        "cast-int" = CastInt([Id; 1]),
        "cast-f32" = CastF32([Id; 1]),
        "exp" = Exp([Id; 1]),
        "tanh" = Tanh([Id; 1]),
        "sigmoid" = Sigmoid([Id; 1]),
        "sqrt" = Sqrt([Id; 1]),
        "abs" = Abs([Id; 1]),
        "load" = Load(Box<[Id]>),
        "matmul" = MatMul([Id; 2]),
        "transpose" = Transpose([Id; 1]),
        "gather-rows" = GatherRows([Id; 2]),
        "gather-cols" = GatherCols([Id; 2]),
        "scatter-rows" = ScatterRows([Id; 3]),
        "vcat" = VCat([Id; 2]),
        "hcat" = HCat([Id; 2]),
        "icat" = ICat([Id; 2]),
        "inverse-perm" = InvPerm([Id; 1]),
        "ew-add" = EwAdd([Id; 2]),
        "ew-mul" = EwMul([Id; 2]),
        "ew-relu" = EwRelu([Id; 1]),
        "ew-tanh" = EwTanh([Id; 1]),
        "bcr-mask" = BcrMask([Id; 3]),
        "rows" = Rows([Id; 1]),
        "cols" = Cols([Id; 1]),
        "len" = Len([Id; 1]),
        Int(i64),
        Float(F32Lit),
        Bool(bool),
        Symbol(Symbol),
    }
}

/// Which level an operator belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// Index/value expressions (scalars, loads).
    Index,
    /// Tensor-level compute (matrices, index vectors).
    Tensor,
}

/// How many arguments an operator takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many.
    AtLeast(usize),
}

/// An operator of the language: its name, arity, level and meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Op {
    /// Spelling in rule files and printed terms.
    pub name: &'static str,
    /// Number of arguments.
    pub arity: Arity,
    /// Level.
    pub level: Level,
    /// One-line meaning.
    pub doc: &'static str,
}

const fn op(name: &'static str, n: usize, level: Level, doc: &'static str) -> Op {
    Op {
        name,
        arity: Arity::Exactly(n),
        level,
        doc,
    }
}

/// Every operator of [`TirLang`] (leaves excluded).
pub const OPS: &[Op] = &[
    op("+", 2, Level::Index, "addition (checked i64, or f32)"),
    op("-", 2, Level::Index, "subtraction"),
    op("*", 2, Level::Index, "multiplication"),
    op(
        "/",
        2,
        Level::Index,
        "floor division on ints (error on 0), IEEE on f32",
    ),
    op("%", 2, Level::Index, "floor modulo on ints (error on 0)"),
    op("min", 2, Level::Index, "minimum"),
    op("max", 2, Level::Index, "maximum"),
    op("==", 2, Level::Index, "equal"),
    op("!=", 2, Level::Index, "not equal"),
    op("<", 2, Level::Index, "less than"),
    op("<=", 2, Level::Index, "less or equal"),
    op(">", 2, Level::Index, "greater than"),
    op(">=", 2, Level::Index, "greater or equal"),
    op("&&", 2, Level::Index, "logical and (both sides evaluated)"),
    op("||", 2, Level::Index, "logical or (both sides evaluated)"),
    op("!", 1, Level::Index, "logical not"),
    op(
        "select",
        3,
        Level::Index,
        "select(cond, then, else), all evaluated",
    ),
    op("cast-int", 1, Level::Index, "conversion to int"),
    op("cast-f32", 1, Level::Index, "conversion to f32"),
    op("exp", 1, Level::Index, "exp on f32"),
    op("tanh", 1, Level::Index, "tanh on f32"),
    op("sigmoid", 1, Level::Index, "sigmoid on f32"),
    op("sqrt", 1, Level::Index, "sqrt on f32"),
    op("abs", 1, Level::Index, "abs on f32"),
    Op {
        name: "load",
        arity: Arity::AtLeast(2),
        level: Level::Index,
        doc: "(load BUF i ...): element of a buffer",
    },
    op("matmul", 2, Level::Tensor, "matrix product [m,k]x[k,n]"),
    op("transpose", 1, Level::Tensor, "matrix transpose"),
    op(
        "gather-rows",
        2,
        Level::Tensor,
        "(gather-rows A r): rows r[0], r[1], ... of A",
    ),
    op(
        "gather-cols",
        2,
        Level::Tensor,
        "(gather-cols A c): columns c[0], ... of A",
    ),
    op(
        "scatter-rows",
        3,
        Level::Tensor,
        "(scatter-rows A r m): m-row zero matrix with A's row i added to row r[i]",
    ),
    op("vcat", 2, Level::Tensor, "stack rows: [A; B]"),
    op("hcat", 2, Level::Tensor, "stack columns: [A, B]"),
    op("icat", 2, Level::Tensor, "concatenate index vectors"),
    op("inverse-perm", 1, Level::Tensor, "inverse of a permutation"),
    op("ew-add", 2, Level::Tensor, "elementwise sum"),
    op("ew-mul", 2, Level::Tensor, "elementwise product"),
    op("ew-relu", 1, Level::Tensor, "elementwise max(x, 0)"),
    op("ew-tanh", 1, Level::Tensor, "elementwise tanh"),
    op(
        "bcr-mask",
        3,
        Level::Tensor,
        "(bcr-mask W r c): W with every entry outside rows r x columns c zeroed",
    ),
    op("rows", 1, Level::Tensor, "number of rows (int)"),
    op("cols", 1, Level::Tensor, "number of columns (int)"),
    op("len", 1, Level::Tensor, "length of an index vector (int)"),
];

/// Looks an operator up by name.
pub fn find_op(name: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.name == name)
}

/// The level of a node: tensor operators are [`Level::Tensor`], everything else
/// (including leaves) [`Level::Index`].
pub fn node_level(n: &TirLang) -> Level {
    use egg::Language;
    match find_op(&n.to_string()) {
        Some(o) if !n.is_leaf() => o.level,
        _ => Level::Index,
    }
}

/// Prints a term as an s-expression, `(op child ...)`, with operators unquoted.
pub fn print_term(e: &egg::RecExpr<TirLang>) -> String {
    use egg::Language;
    fn go(e: &egg::RecExpr<TirLang>, id: Id, out: &mut String) {
        let n = &e[id];
        if n.is_leaf() {
            out.push_str(&n.to_string());
            return;
        }
        out.push('(');
        out.push_str(&n.to_string());
        for c in n.children() {
            out.push(' ');
            go(e, *c, out);
        }
        out.push(')');
    }
    let mut out = String::new();
    if !e.as_ref().is_empty() {
        go(e, e.root(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use egg::RecExpr;

    #[test]
    fn parses_and_prints_both_levels() {
        for s in [
            "(+ (* i 4) (% j 4))",
            "(load W_cols (+ c0 j))",
            "(select (< i 0) 0.0 1.5)",
            "(matmul (gather-rows W r) (gather-rows X c))",
            "(scatter-rows A r 8)",
            "(&& true (! false))",
        ] {
            let e: RecExpr<TirLang> = s.parse().expect(s);
            assert_eq!(print_term(&e), s);
        }
    }

    #[test]
    fn literals_are_typed_by_spelling() {
        let e: RecExpr<TirLang> = "3".parse().unwrap();
        assert!(matches!(e.as_ref()[0], TirLang::Int(3)));
        let e: RecExpr<TirLang> = "3.0".parse().unwrap();
        assert!(matches!(e.as_ref()[0], TirLang::Float(_)));
        let e: RecExpr<TirLang> = "true".parse().unwrap();
        assert!(matches!(e.as_ref()[0], TirLang::Bool(true)));
        let e: RecExpr<TirLang> = "x".parse().unwrap();
        assert!(matches!(e.as_ref()[0], TirLang::Symbol(_)));
    }

    #[test]
    fn every_op_is_in_the_language() {
        for o in OPS {
            assert!(find_op(o.name).is_some());
        }
        assert_eq!(
            node_level(&"(matmul a b)".parse::<RecExpr<TirLang>>().unwrap().as_ref()[2]),
            Level::Tensor
        );
    }
}
