//! The parser of the tir text format (the grammar [`crate::printer`] emits).
//!
//! ```text
//! function  := "fn" NAME "(" [param ("," param)*] ")" block
//! param     := NAME ":" ("in" | "out" | "weight") dtype dims
//! dtype     := "f32" | "i32" | "u8"
//! dims      := "[" [INT ("," INT)*] "]"
//! block     := "{" stmt* "}"
//! stmt      := [("serial" | "parallel" | "vectorized" | "unrolled")] "for"
//!                  "(" NAME "," expr "," expr ")" block          # (var, min, extent)
//!            | "let" NAME "=" expr ";"       # the rest of the block is its body
//!            | "let" NAME "=" expr block
//!            | "if" expr block ["else" (block | if-stmt)]
//!            | "alloc" NAME ":" dtype dims ("local" | "shared" | "global") block
//!            | NAME "[" [expr ("," expr)*] "]" "=" expr ";"
//!            | "prefetch" NAME "[" [expr ("," expr)*] "]" ";"
//! expr      := binary operators, loosest first: "||"; "&&";
//!              "==" "!=" "<" "<=" ">" ">=" (non-associative); "+" "-"; "*" "/" "%"
//! unary     := "!" unary | "-" (INT | FLOAT | "inf" | "nan") | primary
//! primary   := INT | FLOAT | "true" | "false" | "inf" | "nan" | NAME
//!            | NAME "[" [expr ("," expr)*] "]"
//!            | ("min" | "max") "(" expr "," expr ")" | "select" "(" expr "," expr "," expr ")"
//!            | ("f32" | "int" | "bool") "(" expr ")"
//!            | ("exp" | "tanh" | "sigmoid" | "sqrt" | "abs") "(" [expr ("," expr)*] ")"
//!            | "(" expr ")"
//! ```
//!
//! A block of exactly one statement parses to that statement; any other number of
//! statements to a [`Stmt::Seq`]. `#` starts a comment that runs to the end of the line.
//! Binary operators are left-associative. Only syntax is checked: names need not be
//! bound and types need not agree (the verifier does that).
//!
//! The parser never panics, and reports "nesting too deep" instead of exhausting the
//! stack. [`MAX_DEPTH`] limits both the syntactic nesting (braces, parentheses,
//! brackets, call arguments, `!`, `else if`), which bounds the parser's own recursion,
//! and the depth of the trees it builds (operators nested in an expression, including
//! left-associative chains such as `a + b + c`; blocks and unbraced `let`s nested in a
//! statement), which bounds the recursion of whatever walks them.

use crate::dtype::{DType, ScalarType};
use crate::expr::{BinOp, Expr, Intrinsic, UnOp};
use crate::function::{Function, Param, ParamKind};
use crate::lexer::{tokenize, truncate, Tok, Token};
use crate::printer::binop_precedence;
use crate::stmt::{ForKind, MemScope, Stmt};

/// The deepest nesting the parser accepts (see the module documentation). Each level
/// costs the recursive-descent parser at most about 3 KiB of stack even without
/// optimisation, so the deepest inputs parse in well under 1 MiB.
pub const MAX_DEPTH: usize = 256;

/// Words that cannot be used as names.
pub const KEYWORDS: [&str; 39] = [
    "fn",
    "for",
    "let",
    "if",
    "else",
    "alloc",
    "prefetch",
    "serial",
    "parallel",
    "vectorized",
    "unrolled",
    "block_x",
    "block_y",
    "block_z",
    "thread_x",
    "thread_y",
    "thread_z",
    "in",
    "out",
    "weight",
    "f32",
    "i32",
    "int",
    "bool",
    "true",
    "false",
    "select",
    "min",
    "max",
    "exp",
    "tanh",
    "sigmoid",
    "sqrt",
    "abs",
    "inf",
    "nan",
    "local",
    "shared",
    "global",
];

/// True when `word` is a keyword of the text format.
pub fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// True when `name` can be printed and parsed back as a name: an identifier
/// (`[A-Za-z_][A-Za-z0-9_]*`) that is not a keyword.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !is_keyword(name)
}

/// A syntax error, with the 1-based line and column where it was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{line}:{column}: {message}", file_prefix(.file))]
pub struct ParseError {
    /// The file the text came from, if known (see [`ParseError::with_file`]).
    pub file: Option<String>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    /// What was expected and what was found.
    pub message: String,
}

fn file_prefix(file: &Option<String>) -> String {
    match file {
        Some(f) => format!("{f}:"),
        None => String::new(),
    }
}

impl ParseError {
    /// An error at `line:column` (1-based).
    pub fn new(line: usize, column: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            file: None,
            line,
            column,
            message: message.into(),
        }
    }

    /// The same error, attributed to the file `path` (shown as `path:line:column: ...`).
    pub fn with_file(self, path: impl Into<String>) -> ParseError {
        ParseError {
            file: Some(path.into()),
            ..self
        }
    }
}

/// Internal results box the error (and the parser returns boxed trees) to keep the
/// recursive functions' stack frames small.
type PResult<T> = Result<T, Box<ParseError>>;

/// Parses a function.
///
/// ```
/// use tir::{parse_function, print_function, ForKind, Stmt};
///
/// let text = "\
/// fn double(X: in f32[4], Y: out f32[4]) {
///   parallel for (i, 0, 4) {
///     Y[i] = X[i] * 2.0;
///   }
/// }
/// ";
/// let f = parse_function(text)?;
/// assert!(matches!(f.body, Stmt::For { kind: ForKind::Parallel, .. }));
/// assert_eq!(print_function(&f), text);
///
/// let err = parse_function("fn f(X: inn f32[1]) {}").unwrap_err().with_file("k.tir");
/// assert_eq!(
///     err.to_string(),
///     "k.tir:1:9: unknown parameter kind 'inn', expected one of in, out, weight"
/// );
/// # Ok::<(), tir::ParseError>(())
/// ```
///
/// # Errors
/// A [`ParseError`] at the first syntax error, including any text after the function.
pub fn parse_function(text: &str) -> Result<Function, ParseError> {
    let mut p = Parser::new(text);
    let f = p.function().map_err(|e| *e)?;
    p.expect_end("the function").map_err(|e| *e)?;
    Ok(f)
}

/// Parses a statement list (the inside of a block, without braces): one statement
/// gives that statement, any other number a [`Stmt::Seq`].
///
/// # Errors
/// A [`ParseError`] at the first syntax error.
pub fn parse_stmt(text: &str) -> Result<Stmt, ParseError> {
    let mut p = Parser::new(text);
    p.block_items(None).map(|s| *s).map_err(|e| *e)
}

/// Parses an expression.
///
/// # Errors
/// A [`ParseError`] at the first syntax error, including any text after the expression.
pub fn parse_expr(text: &str) -> Result<Expr, ParseError> {
    let mut p = Parser::new(text);
    let (e, _) = p.expr().map_err(|e| *e)?;
    p.expect_end("the expression").map_err(|e| *e)?;
    Ok(*e)
}

/// An expression with the depth of its tree (the number of operator nodes on its
/// longest path from the root: 0 for a literal or a variable).
type Tree = (Box<Expr>, usize);

/// One statement of a block: a statement, or the head of an unbraced `let`, whose body
/// is the rest of the block.
enum Item {
    Stmt(Box<Stmt>),
    LetHead(Box<(String, Expr)>),
}

/// The name, element type, shape and scope of an `alloc`.
type AllocHeader = (String, DType, Vec<usize>, MemScope);

/// What a word stands for where an expression is expected.
enum Word {
    Leaf(Expr),
    Cast(ScalarType),
    Select,
    MinMax(BinOp),
    Intrinsic(Intrinsic),
    Keyword,
    Name,
}

fn classify(word: &str) -> Word {
    match word {
        "true" => Word::Leaf(Expr::Bool(true)),
        "false" => Word::Leaf(Expr::Bool(false)),
        "inf" => Word::Leaf(Expr::Float(f32::INFINITY)),
        "nan" => Word::Leaf(Expr::Float(f32::NAN)),
        "f32" => Word::Cast(ScalarType::F32),
        "int" => Word::Cast(ScalarType::Int),
        "bool" => Word::Cast(ScalarType::Bool),
        "select" => Word::Select,
        "min" => Word::MinMax(BinOp::Min),
        "max" => Word::MinMax(BinOp::Max),
        _ => match Intrinsic::from_name(word) {
            Some(i) => Word::Intrinsic(i),
            None if is_keyword(word) => Word::Keyword,
            None => Word::Name,
        },
    }
}

/// The recursive-descent parser.
///
/// The functions that recurse (the expression chain `expr`, `binary`, `unary`,
/// `primary`, `paren`, `word`, `name_or_load`, `call`, `list`, and the statement chain
/// `braced_block`, `block_items`, `item`, `for_loop`, `let_stmt`, `if_stmt`, `alloc`)
/// are kept small, with error formatting and other bulky work in non-recursive helpers,
/// so that [`MAX_DEPTH`] levels fit in a 1 MiB thread stack even without
/// optimisation.
struct Parser<'a> {
    src: &'a str,
    toks: Vec<Token>,
    /// The message of the trailing [`Tok::Error`] token, if any.
    lex_error: Option<String>,
    pos: usize,
    /// Returned when reading past the last token (never happens: the token list ends
    /// with `Eof` or an error token, which the parser does not consume).
    eof: Token,
    /// Current syntactic nesting (limited to [`MAX_DEPTH`]).
    nesting: usize,
    /// Depth of the statement being parsed: enclosing blocks and unbraced lets (limited
    /// to [`MAX_DEPTH`]).
    stmt_depth: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Parser<'a> {
        let lexed = tokenize(src);
        let eof = match lexed.tokens.last() {
            Some(t) => Token {
                kind: Tok::Eof,
                start: t.end,
                end: t.end,
                line: t.line,
                col: t.col,
            },
            None => Token {
                kind: Tok::Eof,
                start: 0,
                end: 0,
                line: 1,
                col: 1,
            },
        };
        Parser {
            src,
            toks: lexed.tokens,
            lex_error: lexed.error,
            pos: 0,
            eof,
            nesting: 0,
            stmt_depth: 0,
        }
    }

    // ----- token helpers -----

    fn peek(&self) -> Token {
        *self.toks.get(self.pos).unwrap_or(&self.eof)
    }

    fn bump(&mut self) -> Token {
        let t = self.peek();
        if !matches!(t.kind, Tok::Eof | Tok::Error) {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: &Token) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek().kind, Tok::Punct(q) if q == p)
    }

    fn is_word(&self, w: &str) -> bool {
        let t = self.peek();
        t.kind == Tok::Ident && self.text(&t) == w
    }

    fn eat_punct(&mut self, p: &str) -> bool {
        let yes = self.is_punct(p);
        if yes {
            self.bump();
        }
        yes
    }

    fn error_at(&self, t: &Token, message: impl Into<String>) -> Box<ParseError> {
        Box::new(ParseError::new(t.line, t.col, message))
    }

    fn lex_error_at(&self, t: &Token) -> Box<ParseError> {
        let message = self
            .lex_error
            .clone()
            .unwrap_or_else(|| "invalid token".to_string());
        self.error_at(t, message)
    }

    /// How a token is named in messages.
    fn describe(&self, t: &Token) -> String {
        match t.kind {
            Tok::Eof => "end of input".to_string(),
            Tok::Ident if is_keyword(self.text(t)) => format!("keyword '{}'", self.text(t)),
            _ => format!("'{}'", truncate(self.text(t))),
        }
    }

    /// "expected X, found Y" at the current token (a lexical error at the current
    /// token is reported instead; at the end, "unexpected end of input, expected X").
    #[cold]
    #[inline(never)]
    fn unexpected(&self, expected: &str) -> Box<ParseError> {
        let t = self.peek();
        match t.kind {
            Tok::Error => self.lex_error_at(&t),
            Tok::Eof => self.error_at(&t, format!("unexpected end of input, expected {expected}")),
            _ => self.error_at(
                &t,
                format!("expected {expected}, found {}", self.describe(&t)),
            ),
        }
    }

    #[inline(never)]
    fn expect_punct(&mut self, p: &str, context: &str) -> PResult<Token> {
        if self.is_punct(p) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(&format!("'{p}' {context}")))
        }
    }

    #[inline(never)]
    fn expect_word(&mut self, w: &str, context: &str) -> PResult<()> {
        if self.is_word(w) {
            self.bump();
            Ok(())
        } else {
            Err(self.unexpected(&format!("'{w}' {context}")))
        }
    }

    /// A name: an identifier that is not a keyword.
    #[inline(never)]
    fn expect_name(&mut self, what: &str) -> PResult<String> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.unexpected(what));
        }
        let text = self.text(&t);
        if is_keyword(text) {
            return Err(self.error_at(
                &t,
                format!(
                    "expected {what}, found keyword '{text}' (keywords cannot be used as names)"
                ),
            ));
        }
        self.bump();
        Ok(text.to_string())
    }

    fn expect_end(&self, what: &str) -> PResult<()> {
        let t = self.peek();
        match t.kind {
            Tok::Eof => Ok(()),
            Tok::Error => Err(self.lex_error_at(&t)),
            _ => Err(self.error_at(
                &t,
                format!(
                    "unexpected trailing input after {what}: expected end of input, found {}",
                    self.describe(&t)
                ),
            )),
        }
    }

    #[cold]
    #[inline(never)]
    fn too_deep(&self, limit: usize, what: &str) -> Box<ParseError> {
        self.error_at(
            &self.peek(),
            format!("nesting too deep: more than {limit} nested {what}"),
        )
    }

    /// Enters one level of syntactic nesting.
    fn enter(&mut self) -> PResult<()> {
        if self.nesting >= MAX_DEPTH {
            return Err(self.too_deep(MAX_DEPTH, "blocks, brackets or operators"));
        }
        self.nesting += 1;
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    /// Enters one statement level (a block or an unbraced let).
    fn enter_stmt(&mut self) -> PResult<()> {
        if self.stmt_depth >= MAX_DEPTH {
            return Err(self.too_deep(MAX_DEPTH, "statements"));
        }
        self.stmt_depth += 1;
        Ok(())
    }

    /// Checks the depth of an expression tree being built.
    fn check_tree_depth(&self, d: usize) -> PResult<usize> {
        if d > MAX_DEPTH {
            Err(self.too_deep(MAX_DEPTH, "subexpressions"))
        } else {
            Ok(d)
        }
    }

    // ----- functions and declarations -----

    fn function(&mut self) -> PResult<Function> {
        self.expect_word("fn", "to start a function")?;
        let name = self.expect_name("a function name")?;
        self.expect_punct("(", "after the function name")?;
        let mut params = Vec::new();
        if !self.eat_punct(")") {
            loop {
                params.push(self.param()?);
                if self.eat_punct(",") {
                    continue;
                }
                if self.eat_punct(")") {
                    break;
                }
                return Err(self.unexpected("',' or ')' after a parameter"));
            }
        }
        let body = *self.braced_block("the function body")?;
        Ok(Function { name, params, body })
    }

    fn param(&mut self) -> PResult<Param> {
        let name = self.expect_name("a parameter name")?;
        self.expect_punct(":", "after the parameter name")?;
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.unexpected("a parameter kind (in, out or weight)"));
        }
        let Some(kind) = ParamKind::from_name(self.text(&t)) else {
            return Err(self.error_at(
                &t,
                format!(
                    "unknown parameter kind '{}', expected one of in, out, weight",
                    truncate(self.text(&t))
                ),
            ));
        };
        self.bump();
        let dtype = self.dtype()?;
        let shape = self.dims()?;
        Ok(Param {
            name,
            kind,
            dtype,
            shape,
        })
    }

    fn dtype(&mut self) -> PResult<DType> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.unexpected("an element type (f32, i32 or u8)"));
        }
        let dtype = match self.text(&t) {
            "f32" => DType::F32,
            "i32" => DType::I32,
            "u8" => DType::U8,
            other => {
                return Err(self.error_at(
                    &t,
                    format!(
                        "unknown element type '{}', expected f32, i32 or u8",
                        truncate(other)
                    ),
                ))
            }
        };
        self.bump();
        Ok(dtype)
    }

    fn dims(&mut self) -> PResult<Vec<usize>> {
        self.expect_punct("[", "to start the shape")?;
        let mut dims = Vec::new();
        if self.eat_punct("]") {
            return Ok(dims);
        }
        loop {
            let t = self.peek();
            if t.kind != Tok::Int {
                return Err(self.unexpected("a dimension (a non-negative integer)"));
            }
            let text = self.text(&t);
            let Ok(d) = text.parse::<usize>() else {
                return Err(
                    self.error_at(&t, format!("dimension '{}' is too large", truncate(text)))
                );
            };
            dims.push(d);
            self.bump();
            if self.eat_punct(",") {
                continue;
            }
            if self.eat_punct("]") {
                return Ok(dims);
            }
            return Err(self.unexpected("',' or ']' after a dimension"));
        }
    }

    // ----- statements -----

    /// `{ stmt* }`; `what` names the block in messages ("the for-loop body").
    fn braced_block(&mut self, what: &str) -> PResult<Box<Stmt>> {
        let open = self.open_brace(what)?;
        self.enter()?;
        self.enter_stmt()?;
        let body = self.block_items(Some(open))?;
        self.stmt_depth = self.stmt_depth.saturating_sub(1);
        self.leave();
        Ok(body)
    }

    #[inline(never)]
    fn open_brace(&mut self, what: &str) -> PResult<Token> {
        self.expect_punct("{", &format!("to open {what}"))
    }

    /// The statements of a block up to its closing `}` (consumed), or up to the end of
    /// input when `open` is `None`.
    fn block_items(&mut self, open: Option<Token>) -> PResult<Box<Stmt>> {
        let stmt_depth_at_start = self.stmt_depth;
        // Unbraced lets split the block into segments: each segment's statements are
        // followed by a let whose body is everything after it.
        let mut segments: Vec<(Vec<Stmt>, String, Expr)> = Vec::new();
        let mut current: Vec<Stmt> = Vec::new();
        while !self.block_end(open)? {
            match self.item()? {
                Item::Stmt(s) => current.push(*s),
                Item::LetHead(head) => {
                    self.enter_stmt()?;
                    let (var, value) = *head;
                    segments.push((std::mem::take(&mut current), var, value));
                }
            }
        }
        self.stmt_depth = stmt_depth_at_start;
        Ok(Box::new(fold_segments(segments, current)))
    }

    /// At the end of a block: consumes its `}` and says true; false when a statement
    /// follows; an error at a stray `}` or a premature end of input.
    #[inline(never)]
    fn block_end(&mut self, open: Option<Token>) -> PResult<bool> {
        let t = self.peek();
        match (t.kind, open) {
            (Tok::Punct("}"), Some(_)) => {
                self.bump();
                Ok(true)
            }
            (Tok::Eof, None) => Ok(true),
            (Tok::Eof, Some(o)) => Err(self.error_at(
                &t,
                format!(
                    "unexpected end of input, expected '}}' to close the block opened at {}:{}",
                    o.line, o.col
                ),
            )),
            (Tok::Punct("}"), None) => Err(self.error_at(&t, "unexpected '}' with no open block")),
            _ => Ok(false),
        }
    }

    fn item(&mut self) -> PResult<Item> {
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.unexpected("a statement or '}'"));
        }
        match self.text(&t) {
            "for" => self.for_loop(ForKind::Serial).map(Item::Stmt),
            word if ForKind::from_name(word).is_some() => {
                let kind = self.for_kind_prefix()?;
                self.for_loop(kind).map(Item::Stmt)
            }
            "let" => self.let_stmt(),
            "if" => self.if_stmt().map(Item::Stmt),
            "alloc" => self.alloc().map(Item::Stmt),
            "prefetch" => self.prefetch().map(|s| Item::Stmt(Box::new(s))),
            word if is_keyword(word) => Err(self.unexpected("a statement or '}'")),
            _ => self.store().map(|s| Item::Stmt(Box::new(s))),
        }
    }

    /// A loop-kind keyword, which must be followed by `for`.
    #[inline(never)]
    fn for_kind_prefix(&mut self) -> PResult<ForKind> {
        let t = self.bump();
        let word = self.text(&t);
        let kind = ForKind::from_name(word).unwrap_or(ForKind::Serial);
        if self.is_word("for") {
            Ok(kind)
        } else {
            Err(self.unexpected(&format!("'for' after '{word}'")))
        }
    }

    /// `for (var, min, extent) { body }`, at the `for` keyword.
    fn for_loop(&mut self, kind: ForKind) -> PResult<Box<Stmt>> {
        let header = self.for_header()?;
        let body = self.braced_block("the for-loop body")?;
        let (var, min, extent) = *header;
        Ok(Box::new(Stmt::For {
            var,
            min,
            extent,
            kind,
            body,
        }))
    }

    #[inline(never)]
    fn for_header(&mut self) -> PResult<Box<(String, Expr, Expr)>> {
        self.bump();
        self.expect_punct("(", "after 'for'")?;
        let var = self.expect_name("a loop variable name")?;
        self.expect_punct(",", "after the loop variable")?;
        let (min, _) = self.expr()?;
        self.expect_punct(",", "after for-loop min")?;
        let (extent, _) = self.expr()?;
        self.expect_punct(")", "after for-loop extent")?;
        Ok(Box::new((var, *min, *extent)))
    }

    fn let_stmt(&mut self) -> PResult<Item> {
        let head = self.let_header()?;
        if self.eat_punct(";") {
            return Ok(Item::LetHead(head));
        }
        if !self.is_punct("{") {
            return Err(self.unexpected("';' or '{' after the let value"));
        }
        let body = self.braced_block("the let body")?;
        let (var, value) = *head;
        Ok(Item::Stmt(Box::new(Stmt::Let { var, value, body })))
    }

    #[inline(never)]
    fn let_header(&mut self) -> PResult<Box<(String, Expr)>> {
        self.bump();
        let var = self.expect_name("a variable name after 'let'")?;
        self.expect_punct("=", "after the let variable")?;
        let (value, _) = self.expr()?;
        Ok(Box::new((var, *value)))
    }

    fn if_stmt(&mut self) -> PResult<Box<Stmt>> {
        self.bump();
        let (cond, _) = self.expr()?;
        let then = self.braced_block("the if body")?;
        let otherwise = if self.is_word("else") {
            Some(self.else_branch()?)
        } else {
            None
        };
        Ok(Box::new(Stmt::If {
            cond: *cond,
            then,
            otherwise,
        }))
    }

    /// `else { ... }` or `else if ...`, at the `else`.
    fn else_branch(&mut self) -> PResult<Box<Stmt>> {
        self.bump();
        if !self.is_word("if") {
            return self.braced_block("the else body");
        }
        self.enter()?;
        self.enter_stmt()?;
        let s = self.if_stmt()?;
        self.stmt_depth = self.stmt_depth.saturating_sub(1);
        self.leave();
        Ok(s)
    }

    fn alloc(&mut self) -> PResult<Box<Stmt>> {
        let header = self.alloc_header()?;
        let body = self.braced_block("the alloc body")?;
        let (name, dtype, shape, scope) = *header;
        Ok(Box::new(Stmt::Allocate {
            name,
            dtype,
            shape,
            scope,
            body,
        }))
    }

    #[inline(never)]
    fn alloc_header(&mut self) -> PResult<Box<AllocHeader>> {
        self.bump();
        let name = self.expect_name("a buffer name after 'alloc'")?;
        self.expect_punct(":", "after the allocated buffer's name")?;
        let dtype = self.dtype()?;
        let shape = self.dims()?;
        let t = self.peek();
        if t.kind != Tok::Ident {
            return Err(self.unexpected("a memory scope (local, shared or global)"));
        }
        let Some(scope) = MemScope::from_name(self.text(&t)) else {
            return Err(self.error_at(
                &t,
                format!(
                    "unknown memory scope '{}', expected one of local, shared, global",
                    truncate(self.text(&t))
                ),
            ));
        };
        self.bump();
        Ok(Box::new((name, dtype, shape, scope)))
    }

    #[inline(never)]
    fn store(&mut self) -> PResult<Stmt> {
        let buffer = self.expect_name("a buffer name")?;
        self.expect_punct("[", &format!("after '{buffer}' in a store"))?;
        let (indices, _) = self.list("]", "an index")?;
        self.expect_punct("=", "after the store's indices")?;
        let (value, _) = self.expr()?;
        self.expect_punct(";", "after the stored value")?;
        Ok(Stmt::Store {
            buffer,
            indices,
            value: *value,
        })
    }

    /// `prefetch NAME[indices];`, at the `prefetch` keyword.
    fn prefetch(&mut self) -> PResult<Stmt> {
        self.bump();
        let buffer = self.expect_name("a buffer name after 'prefetch'")?;
        self.expect_punct("[", &format!("after '{buffer}' in a prefetch"))?;
        let (indices, _) = self.list("]", "an index")?;
        self.expect_punct(";", "after the prefetch's indices")?;
        Ok(Stmt::Prefetch { buffer, indices })
    }

    // ----- expressions -----

    fn expr(&mut self) -> PResult<Tree> {
        self.binary(1)
    }

    fn peek_binop(&self) -> Option<BinOp> {
        let op = match self.peek().kind {
            Tok::Punct("||") => BinOp::Or,
            Tok::Punct("&&") => BinOp::And,
            Tok::Punct("==") => BinOp::Eq,
            Tok::Punct("!=") => BinOp::Ne,
            Tok::Punct("<") => BinOp::Lt,
            Tok::Punct("<=") => BinOp::Le,
            Tok::Punct(">") => BinOp::Gt,
            Tok::Punct(">=") => BinOp::Ge,
            Tok::Punct("+") => BinOp::Add,
            Tok::Punct("-") => BinOp::Sub,
            Tok::Punct("*") => BinOp::Mul,
            Tok::Punct("/") => BinOp::Div,
            Tok::Punct("%") => BinOp::Mod,
            _ => return None,
        };
        Some(op)
    }

    /// Precedence climbing over the operators binding at least as tightly as
    /// `min_prec` (1 `||` ... 5 `*`).
    fn binary(&mut self, min_prec: u8) -> PResult<Tree> {
        let (mut lhs, mut depth) = self.unary()?;
        while let Some(op) = self.peek_binop() {
            let prec = binop_precedence(op);
            if prec < min_prec {
                break;
            }
            self.bump();
            let (rhs, rhs_depth) = self.binary(prec + 1)?;
            depth = self.check_tree_depth(1 + depth.max(rhs_depth))?;
            lhs = Box::new(Expr::Binary(op, lhs, rhs));
            if op.is_comparison() {
                self.no_chained_comparison(op)?;
            }
        }
        Ok((lhs, depth))
    }

    /// Comparisons are non-associative: `a < b < c` is an error.
    #[inline(never)]
    fn no_chained_comparison(&self, op: BinOp) -> PResult<()> {
        match self.peek_binop() {
            Some(next) if next.is_comparison() => Err(self.error_at(
                &self.peek(),
                format!(
                    "comparison operators do not chain: found '{}' after a '{}' comparison; add parentheses",
                    next.symbol(),
                    op.symbol()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn unary(&mut self) -> PResult<Tree> {
        match self.peek().kind {
            Tok::Punct("!") => self.not(),
            Tok::Punct("-") => Ok((Box::new(self.negative_literal()?), 0)),
            _ => self.primary(),
        }
    }

    fn not(&mut self) -> PResult<Tree> {
        self.bump();
        self.enter()?;
        let (e, d) = self.unary()?;
        self.leave();
        let d = self.check_tree_depth(d + 1)?;
        Ok((Box::new(Expr::Unary(UnOp::Not, e)), d))
    }

    /// `-` followed by a numeric literal, at the `-`.
    #[inline(never)]
    fn negative_literal(&mut self) -> PResult<Expr> {
        let minus = self.bump();
        let t = self.peek();
        match t.kind {
            Tok::Int | Tok::Float => self.literal(t, true),
            Tok::Ident if self.text(&t) == "inf" => {
                self.bump();
                Ok(Expr::Float(f32::NEG_INFINITY))
            }
            Tok::Ident if self.text(&t) == "nan" => {
                self.bump();
                Ok(Expr::Float(-f32::NAN))
            }
            Tok::Eof | Tok::Error => Err(self.unexpected("a numeric literal after '-'")),
            _ => Err(self.error_at(
                &minus,
                format!(
                    "unary minus applies only to numeric literals; write (0 - x) (found {} after '-')",
                    self.describe(&t)
                ),
            )),
        }
    }

    /// An integer or float literal token (negated when `negative`), consumed.
    #[inline(never)]
    fn literal(&mut self, t: Token, negative: bool) -> PResult<Expr> {
        let digits = self.text(&t);
        let text = if negative {
            format!("-{digits}")
        } else {
            digits.to_string()
        };
        let e = if t.kind == Tok::Int {
            match text.parse::<i64>() {
                Ok(v) => Expr::Int(v),
                Err(_) => {
                    return Err(self.error_at(
                        &t,
                        format!(
                            "integer literal '{}' is out of range for a 64-bit integer",
                            truncate(&text)
                        ),
                    ))
                }
            }
        } else {
            match text.parse::<f32>() {
                Ok(v) if v.is_finite() => Expr::Float(v),
                _ => {
                    return Err(self.error_at(
                        &t,
                        format!(
                            "float literal '{}' is out of range for f32 (write inf for infinity)",
                            truncate(&text)
                        ),
                    ))
                }
            }
        };
        self.bump();
        Ok(e)
    }

    fn primary(&mut self) -> PResult<Tree> {
        let t = self.peek();
        match t.kind {
            Tok::Int | Tok::Float => Ok((Box::new(self.literal(t, false)?), 0)),
            Tok::Punct("(") => self.paren(),
            Tok::Ident => self.word(t),
            _ => Err(self.unexpected("an expression")),
        }
    }

    fn paren(&mut self) -> PResult<Tree> {
        self.bump();
        self.enter()?;
        let e = self.expr()?;
        self.expect_punct(")", "to close '('")?;
        self.leave();
        Ok(e)
    }

    fn word(&mut self, t: Token) -> PResult<Tree> {
        match classify(self.text(&t)) {
            Word::Leaf(e) => {
                self.bump();
                Ok((Box::new(e), 0))
            }
            Word::Keyword => Err(self.unexpected("an expression")),
            Word::Name => self.name_or_load(t),
            call => self.call(t, call),
        }
    }

    fn name_or_load(&mut self, t: Token) -> PResult<Tree> {
        self.bump();
        let name = self.text(&t).to_string();
        if !self.eat_punct("[") {
            return Ok((Box::new(Expr::Var(name)), 0));
        }
        let (indices, d) = self.list("]", "an index")?;
        let d = self.check_tree_depth(d + 1)?;
        Ok((
            Box::new(Expr::Load {
                buffer: name,
                indices,
            }),
            d,
        ))
    }

    /// A call form (`select`, `min`, a cast, an intrinsic) at its name `t`.
    fn call(&mut self, t: Token, word: Word) -> PResult<Tree> {
        self.open_call(t)?;
        let (args, d) = self.list(")", "an argument")?;
        let d = self.check_tree_depth(d + 1)?;
        Ok((Box::new(self.build_call(t, word, args)?), d))
    }

    /// Consumes the name of a call form and its `(`.
    #[inline(never)]
    fn open_call(&mut self, name: Token) -> PResult<()> {
        self.bump();
        let word = self.text(&name);
        self.expect_punct("(", &format!("after '{word}'"))?;
        Ok(())
    }

    #[inline(never)]
    fn build_call(&self, name: Token, word: Word, args: Vec<Expr>) -> PResult<Expr> {
        let arity = match word {
            Word::Cast(_) => 1,
            Word::MinMax(_) => 2,
            Word::Select => 3,
            _ => args.len(),
        };
        if args.len() != arity {
            let plural = if arity == 1 { "" } else { "s" };
            return Err(self.error_at(
                &name,
                format!(
                    "'{}' takes {arity} argument{plural}, found {}",
                    self.text(&name),
                    args.len()
                ),
            ));
        }
        let mut it = args.into_iter();
        let e = match (word, it.next(), it.next(), it.next()) {
            (Word::Cast(ty), Some(a), None, None) => Expr::Cast(ty, Box::new(a)),
            (Word::MinMax(op), Some(a), Some(b), None) => Expr::binary(op, a, b),
            (Word::Select, Some(c), Some(a), Some(b)) => Expr::select(c, a, b),
            (Word::Intrinsic(i), a, b, c) => {
                Expr::Call(i, a.into_iter().chain(b).chain(c).chain(it).collect())
            }
            _ => return Err(self.error_at(&name, "malformed call")),
        };
        Ok(e)
    }

    /// A comma-separated list of expressions up to `close` (consumed), after the opening
    /// delimiter. Returns the items and their greatest tree depth.
    fn list(&mut self, close: &str, what: &str) -> PResult<(Vec<Expr>, usize)> {
        self.enter()?;
        let mut items = Vec::new();
        let mut depth = 0;
        if !self.eat_punct(close) {
            loop {
                let (e, d) = self.expr()?;
                items.push(*e);
                depth = depth.max(d);
                if self.eat_punct(",") {
                    continue;
                }
                if self.eat_punct(close) {
                    break;
                }
                return Err(self.list_error(close, what));
            }
        }
        self.leave();
        Ok((items, depth))
    }

    #[cold]
    #[inline(never)]
    fn list_error(&self, close: &str, what: &str) -> Box<ParseError> {
        self.unexpected(&format!("',' or '{close}' after {what}"))
    }
}

/// Builds the statement of a block from its segments (see [`Parser::block_items`]).
fn fold_segments(mut segments: Vec<(Vec<Stmt>, String, Expr)>, last: Vec<Stmt>) -> Stmt {
    let mut body = block_of(last);
    while let Some((mut stmts, var, value)) = segments.pop() {
        stmts.push(Stmt::Let {
            var,
            value,
            body: Box::new(body),
        });
        body = block_of(stmts);
    }
    body
}

/// The statement a block of `stmts` stands for.
fn block_of(mut stmts: Vec<Stmt>) -> Stmt {
    if stmts.len() == 1 {
        if let Some(s) = stmts.pop() {
            return s;
        }
    }
    Stmt::Seq(stmts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `text` as a function and checks the error's position and message.
    #[track_caller]
    fn fails(text: &str, line: usize, column: usize, needle: &str) {
        match parse_function(text) {
            Ok(f) => panic!("expected an error for {text:?}, parsed {f:?}"),
            Err(e) => {
                assert_eq!(
                    (e.line, e.column),
                    (line, column),
                    "position of {:?} for {text:?}",
                    e.message
                );
                assert!(
                    e.message.contains(needle),
                    "message {:?} for {text:?} lacks {needle:?}",
                    e.message
                );
            }
        }
    }

    #[test]
    fn malformed_headers() {
        fails(
            "fn f(X: inn f32[1]) {\n}",
            1,
            9,
            "unknown parameter kind 'inn', expected one of in, out, weight",
        );
        fails(
            "fn f(X: in f64[1]) {}",
            1,
            12,
            "unknown element type 'f64', expected f32, i32 or u8",
        );
        fails(
            "fn f(X: in f32[-1]) {}",
            1,
            16,
            "expected a dimension (a non-negative integer), found '-'",
        );
        fails(
            "fn f(X: in f32[2,]) {}",
            1,
            18,
            "expected a dimension (a non-negative integer), found ']'",
        );
        fails(
            "fn f(X: in f32[1.5]) {}",
            1,
            16,
            "expected a dimension (a non-negative integer), found '1.5'",
        );
        fails(
            "fn f(X: in f32[99999999999999999999999]) {}",
            1,
            16,
            "dimension '99999999999999999999999' is too large",
        );
        fails(
            "fn f(X: in f32[1] Y: out f32[1]) {}",
            1,
            19,
            "expected ',' or ')' after a parameter, found 'Y'",
        );
        fails(
            "fn for() {}",
            1,
            4,
            "expected a function name, found keyword 'for' (keywords cannot be used as names)",
        );
        fails("fn 1f() {}", 1, 4, "invalid numeric literal '1f'");
        fails(
            "func f() {}",
            1,
            1,
            "expected 'fn' to start a function, found 'func'",
        );
        fails(
            "",
            1,
            1,
            "unexpected end of input, expected 'fn' to start a function",
        );
        fails(
            "fn f() {}\nfn g() {}",
            2,
            1,
            "unexpected trailing input after the function: expected end of input, found keyword 'fn'",
        );
    }

    #[test]
    fn malformed_statements() {
        fails(
            "fn f() {\n  for (i, 0, 4 {\n  }\n}",
            2,
            16,
            "expected ')' after for-loop extent, found '{'",
        );
        fails(
            "fn f() {\n  for (i, 0, 4) {\n    X[i] = 1;\n  }\n  ",
            5,
            3,
            "unexpected end of input, expected '}' to close the block opened at 1:8",
        );
        fails(
            "fn f() {\n  for (for, 0, 1) {}\n}",
            2,
            8,
            "expected a loop variable name, found keyword 'for'",
        );
        fails(
            "fn f() {\n  X[0] = 1\n}",
            3,
            1,
            "expected ';' after the stored value, found '}'",
        );
        fails(
            "fn f() {\n  x = 1;\n}",
            2,
            5,
            "expected '[' after 'x' in a store, found '='",
        );
        fails(
            "fn f() {\n  let x = 1 X[0] = x;\n}",
            2,
            13,
            "expected ';' or '{' after the let value, found 'X'",
        );
        fails(
            "fn f() {\n  parallel X[0] = 1;\n}",
            2,
            12,
            "expected 'for' after 'parallel', found 'X'",
        );
        fails(
            "fn f() {\n  alloc t: f32[4] register {\n  }\n}",
            2,
            19,
            "unknown memory scope 'register', expected one of local, shared, global",
        );
        fails(
            "fn f() {\n  if x {\n  } else X[0] = 1;\n}",
            3,
            10,
            "expected '{' to open the else body, found 'X'",
        );
        fails(
            "fn f() {\n  min[0] = 1;\n}",
            2,
            3,
            "expected a statement or '}', found keyword 'min'",
        );
        fails(
            "fn f() {\n  ;\n}",
            2,
            3,
            "expected a statement or '}', found ';'",
        );
    }

    #[test]
    fn malformed_expressions() {
        fails(
            "fn f() {\n  X[0] = 99999999999999999999;\n}",
            2,
            10,
            "integer literal '99999999999999999999' is out of range for a 64-bit integer",
        );
        fails(
            "fn f() {\n  X[0] = -9223372036854775809;\n}",
            2,
            11,
            "integer literal '-9223372036854775809' is out of range",
        );
        fails(
            "fn f() {\n  X[0] = 1e39;\n}",
            2,
            10,
            "float literal '1e39' is out of range for f32",
        );
        fails(
            "fn f() {\n  X[0] = a < b < c;\n}",
            2,
            16,
            "comparison operators do not chain",
        );
        fails(
            "fn f() {\n  X[0] = a == b != c;\n}",
            2,
            17,
            "comparison operators do not chain",
        );
        fails(
            "fn f() {\n  X[0] = 2 * -x;\n}",
            2,
            14,
            "unary minus applies only to numeric literals; write (0 - x)",
        );
        fails(
            "fn f() {\n  X[0] = a @ b;\n}",
            2,
            12,
            "unexpected character '@'",
        );
        fails(
            "fn f() {\n  X[0] = a & b;\n}",
            2,
            12,
            "unexpected character '&' (did you mean '&&'?)",
        );
        fails(
            "fn f() {\n  X[0] = min(1);\n}",
            2,
            10,
            "'min' takes 2 arguments, found 1",
        );
        fails(
            "fn f() {\n  X[0] = select(a, b);\n}",
            2,
            10,
            "'select' takes 3 arguments, found 2",
        );
        fails(
            "fn f() {\n  X[0] = (a + b;\n}",
            2,
            16,
            "expected ')' to close '(', found ';'",
        );
        fails(
            "fn f() {\n  X[0] = A[1, 2;\n}",
            2,
            16,
            "expected ',' or ']' after an index, found ';'",
        );
        fails(
            "fn f() {\n  X[0] = for;\n}",
            2,
            10,
            "expected an expression, found keyword 'for'",
        );
        fails(
            "fn f() {\n  X[0] = 1.;\n}",
            2,
            10,
            "invalid numeric literal '1.': expected a digit after '.'",
        );
        fails(
            "fn f() {\n  X[0] = 1 +\n",
            3,
            1,
            "unexpected end of input, expected an expression",
        );
    }

    #[test]
    fn nesting_is_limited() {
        let deep = format!("{}x{}", "(".repeat(100_000), ")".repeat(100_000));
        let e = parse_expr(&deep).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        let nots = format!("{}x", "!".repeat(100_000));
        let e = parse_expr(&nots).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        let sum = format!("x{}", " + x".repeat(100_000));
        let e = parse_expr(&sum).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        let ifs = format!("fn f() {{ {} }}", "if x { ".repeat(100_000));
        let e = parse_function(&ifs).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        let lets = format!("fn f() {{ {} }}", "let x = 1; ".repeat(100_000));
        let e = parse_function(&lets).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        let loads = format!("{}0{}", "A[".repeat(100_000), "]".repeat(100_000));
        let e = parse_expr(&loads).err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("nesting too deep")));

        // Just inside the limits is fine.
        let ok = format!("{}x{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert_eq!(parse_expr(&ok), Ok(Expr::var("x")));
        let ok = format!("x{}", " - 1".repeat(MAX_DEPTH));
        assert!(parse_expr(&ok).is_ok());
        let ok = format!("fn f() {{ {} }}", "let x = 1; ".repeat(MAX_DEPTH - 1));
        assert!(parse_function(&ok).is_ok());
        let e = parse_expr(&format!("x{}", " - 1".repeat(MAX_DEPTH + 1)));
        assert_eq!(
            e.map_err(|e| e.message),
            Err(format!(
                "nesting too deep: more than {MAX_DEPTH} nested subexpressions"
            ))
        );
        let e = parse_expr(&format!(
            "{}x{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        ));
        assert_eq!(
            e.map_err(|e| (e.column, e.message)),
            Err((
                MAX_DEPTH + 2,
                format!(
                    "nesting too deep: more than {MAX_DEPTH} nested blocks, brackets or operators"
                )
            ))
        );
    }

    /// The deepest inputs the parser accepts, for each kind of nesting, parse in a
    /// thread with a 1 MiB stack (half the default for spawned threads and tests).
    #[test]
    fn deepest_inputs_fit_in_a_1_mib_stack() {
        let n = MAX_DEPTH;
        let wrap =
            |open: &str, close: &str, k: usize| format!("{}0{}", open.repeat(k), close.repeat(k));
        // The function body is one level of nesting, the store's `[...]` another.
        let in_fn = |s: String| format!("fn f() {{\n  X[0] = {s};\n}}");
        let cases: Vec<(String, bool)> = [
            (wrap("(", ")", n), false),
            (wrap("!", "", n), false),
            (wrap("A[", "]", n), false),
            (wrap("tanh(", ")", n), false),
            (wrap("select(true, 1, ", ")", n), false),
            (wrap("min(1, ", ")", n), false),
            (wrap("int(", ")", n), false),
            // Each level adds two tree levels here, and five below (the tree-depth limit
            // then bounds the nesting); these keep several `binary` frames per level.
            (wrap("(1 + 2 * ", ")", n / 2), false),
            (wrap("(1 || 2 && 3 == 4 + 5 * ", ")", MAX_DEPTH / 5), false),
            (in_fn(wrap("A[", "]", n - 1)), true),
            (
                format!(
                    "fn f() {{ {}X[0] = 1;{} }}",
                    "if c { ".repeat(n - 2),
                    " }".repeat(n - 2)
                ),
                true,
            ),
            (
                format!(
                    "fn f() {{ {}X[0] = 1;{} }}",
                    "for (i, 0, 1) { ".repeat(n - 2),
                    " }".repeat(n - 2)
                ),
                true,
            ),
            (
                format!(
                    "fn f() {{ {}X[0] = 1;{} }}",
                    "let x = 1 { ".repeat(n - 2),
                    " }".repeat(n - 2)
                ),
                true,
            ),
            (
                format!(
                    "fn f() {{ {}X[0] = 1;{} }}",
                    "alloc t: f32[1] local { ".repeat(n - 2),
                    " }".repeat(n - 2)
                ),
                true,
            ),
            (
                format!(
                    "fn f() {{ if c {{ }}{} else {{ }} }}",
                    " else if c { }".repeat(n - 2)
                ),
                true,
            ),
        ]
        .into_iter()
        .collect();
        let handle = std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                cases
                    .into_iter()
                    .map(|(text, is_fn)| {
                        let ok = if is_fn {
                            parse_function(&text).map(|_| ())
                        } else {
                            parse_expr(&text).map(|_| ())
                        };
                        (text, ok)
                    })
                    .collect::<Vec<_>>()
            });
        let results = handle.map(|h| h.join());
        let Ok(Ok(results)) = results else {
            panic!("the parsing thread failed");
        };
        for (text, ok) in results {
            let short: String = text.chars().take(60).collect();
            assert_eq!(ok, Ok(()), "{short}...");
        }
        // One more level of each is refused.
        assert!(parse_expr(&wrap("tanh(", ")", n + 1)).is_err());
        let ifs = format!(
            "fn f() {{ {}X[0] = 1;{} }}",
            "if c { ".repeat(n),
            " }".repeat(n)
        );
        assert!(parse_function(&ifs).is_err_and(|e| e.message.contains("nesting too deep")));
    }

    #[test]
    fn error_display_and_file() {
        let e = parse_function("fn f(X: inn f32[1]) {}").err();
        let e = e.unwrap_or_else(|| ParseError::new(0, 0, "no error"));
        assert_eq!(
            e.to_string(),
            "1:9: unknown parameter kind 'inn', expected one of in, out, weight"
        );
        assert_eq!(
            e.with_file("k.tir").to_string(),
            "k.tir:1:9: unknown parameter kind 'inn', expected one of in, out, weight"
        );
    }

    #[test]
    fn other_entry_points() {
        assert_eq!(
            parse_expr("a b").map_err(|e| (e.line, e.column, e.message)),
            Err((
                1,
                3,
                "unexpected trailing input after the expression: expected end of input, found 'b'"
                    .to_string()
            ))
        );
        let e = parse_stmt("X[0] = 1;\n}").err();
        assert_eq!(
            e.map(|e| (e.line, e.column, e.message)),
            Some((2, 1, "unexpected '}' with no open block".to_string()))
        );
        assert_eq!(parse_stmt("# nothing\n"), Ok(Stmt::Seq(vec![])));
        assert_eq!(
            parse_stmt("let x = 1;\nX[0] = x;"),
            Ok(Stmt::let_(
                "x",
                Expr::Int(1),
                Stmt::store("X", vec![Expr::Int(0)], Expr::var("x"))
            ))
        );
    }

    #[test]
    fn accepted_variants() {
        // `serial for`, `else if`, comments, and literal forms the printer does not emit.
        let f = parse_function(
            "# header\nfn f() { serial for (i, 0, 2) { X[i] = 1; } # trailing\n\
             if a { } else if b { X[0] = 01; } }",
        );
        let f = f.map(|f| f.body);
        assert_eq!(
            f,
            Ok(Stmt::Seq(vec![
                Stmt::serial(
                    "i",
                    Expr::Int(2),
                    Stmt::store("X", vec![Expr::var("i")], Expr::Int(1))
                ),
                Stmt::If {
                    cond: Expr::var("a"),
                    then: Box::new(Stmt::Seq(vec![])),
                    otherwise: Some(Box::new(Stmt::if_(
                        Expr::var("b"),
                        Stmt::store("X", vec![Expr::Int(0)], Expr::Int(1))
                    ))),
                },
            ]))
        );
        assert_eq!(parse_expr("- 3"), Ok(Expr::Int(-3)));
        assert_eq!(parse_expr("1E+2"), Ok(Expr::Float(100.0)));
        assert_eq!(parse_expr("-9223372036854775808"), Ok(Expr::Int(i64::MIN)));
        assert!(is_valid_name("_a1") && !is_valid_name("1a") && !is_valid_name("select"));
        assert!(!is_valid_name("") && !is_valid_name("a-b"));
    }
}
