//! A small, bounded Python pickle virtual machine: enough of protocols 0-5 to read
//! PyTorch `state_dict` files (`data.pkl` inside a `torch.save` zip), and nothing
//! that executes code.
//!
//! Classes are never instantiated: `GLOBAL` pushes a [`Value::Global`] naming the
//! class, and `REDUCE`/`NEWOBJ`/`BINPERSID` hand the call to a [`Resolver`], which
//! returns a value (usually an opaque [`Value::Ext`] handle into its own table) or an
//! error. The VM itself only builds `collections.OrderedDict` (as a dict). `BUILD`
//! (setting an object's state) keeps the object and drops the state.
//!
//! Limits: the stack, the mark stack, the memo and every container are bounded
//! ([`Limits`]); string and byte lengths are checked against the remaining input
//! before anything is allocated. Every error names the byte offset and the opcode.

use std::collections::HashMap;
use std::rc::Rc;

/// A value on the pickle stack.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(Rc<str>),
    /// A byte string.
    Bytes(Rc<[u8]>),
    /// A tuple.
    Tuple(Rc<Vec<Value>>),
    /// A list: index into [`Pickled::containers`].
    List(usize),
    /// A dict: index into [`Pickled::containers`].
    Dict(usize),
    /// A class or function named by `GLOBAL` (never imported).
    Global {
        /// The module, e.g. `torch._utils`.
        module: Rc<str>,
        /// The name, e.g. `_rebuild_tensor_v2`.
        name: Rc<str>,
    },
    /// An object built by the [`Resolver`]: an index into its own table.
    Ext(usize),
}

impl Value {
    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Value::None => "None".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Str(s) => format!("{:?}", truncate(s)),
            Value::Bytes(b) => format!("bytes of length {}", b.len()),
            Value::Tuple(t) => format!("tuple of {}", t.len()),
            Value::List(_) => "list".to_string(),
            Value::Dict(_) => "dict".to_string(),
            Value::Global { module, name } => format!("{module}.{name}"),
            Value::Ext(_) => "object".to_string(),
        }
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(60).collect()
}

/// A mutable container built while unpickling.
#[derive(Debug, Clone, PartialEq)]
pub enum Container {
    /// A list's items.
    List(Vec<Value>),
    /// A dict's items in insertion order (a later equal key replaces the value).
    Dict(Vec<(Value, Value)>),
}

/// What the VM asks of its caller: calls of named classes and functions, and
/// persistent ids.
pub trait Resolver {
    /// `callable(*args)`, for `REDUCE` and `NEWOBJ`. Errors are plain messages; the VM
    /// adds the position.
    fn reduce(
        &mut self,
        callable: &Value,
        args: &[Value],
        containers: &[Container],
    ) -> Result<Value, String>;

    /// The object a persistent id (`BINPERSID`) stands for.
    fn persistent_load(&mut self, pid: &Value, containers: &[Container]) -> Result<Value, String>;
}

/// Bounds on what one pickle may build.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most values on the stack at once.
    pub stack: usize,
    /// Most open marks.
    pub marks: usize,
    /// Most memo entries.
    pub memo: usize,
    /// Most items in one list, dict or tuple, and most containers in all.
    pub items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            stack: 100_000,
            marks: 10_000,
            memo: 1_000_000,
            items: 1_000_000,
        }
    }
}

/// The result of unpickling: the root value and the containers it refers to.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickled {
    /// The value `STOP` returned.
    pub root: Value,
    /// Lists and dicts, referred to by index.
    pub containers: Vec<Container>,
}

impl Pickled {
    /// The items of a dict value, or `None` when `v` is not a dict.
    pub fn dict_items(&self, v: &Value) -> Option<&[(Value, Value)]> {
        match v {
            Value::Dict(i) => match self.containers.get(*i) {
                Some(Container::Dict(items)) => Some(items),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A pickle that could not be read: where and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pickle byte {offset}{}: {reason}", opcode_note(*.opcode))]
pub struct PickleError {
    /// Byte offset of the opcode at fault.
    pub offset: usize,
    /// The opcode, when one was read.
    pub opcode: Option<u8>,
    /// What is wrong.
    pub reason: String,
}

fn opcode_note(op: Option<u8>) -> String {
    match op {
        Some(op) => format!(" (opcode {} 0x{op:02x})", opcode_name(op)),
        None => String::new(),
    }
}

/// The pickletools name of an opcode.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        0x80 => "PROTO",
        0x95 => "FRAME",
        b'.' => "STOP",
        b'(' => "MARK",
        b'0' => "POP",
        b'1' => "POP_MARK",
        b'2' => "DUP",
        b'N' => "NONE",
        0x88 => "NEWTRUE",
        0x89 => "NEWFALSE",
        b'J' => "BININT",
        b'K' => "BININT1",
        b'M' => "BININT2",
        0x8a => "LONG1",
        b'G' => "BINFLOAT",
        b'X' => "BINUNICODE",
        0x8c => "SHORT_BINUNICODE",
        0x8d => "BINUNICODE8",
        b'U' => "SHORT_BINSTRING",
        b'T' => "BINSTRING",
        b'B' => "BINBYTES",
        b'C' => "SHORT_BINBYTES",
        0x8e => "BINBYTES8",
        b')' => "EMPTY_TUPLE",
        b't' => "TUPLE",
        0x85 => "TUPLE1",
        0x86 => "TUPLE2",
        0x87 => "TUPLE3",
        b']' => "EMPTY_LIST",
        b'l' => "LIST",
        b'a' => "APPEND",
        b'e' => "APPENDS",
        b'}' => "EMPTY_DICT",
        b'd' => "DICT",
        b's' => "SETITEM",
        b'u' => "SETITEMS",
        b'c' => "GLOBAL",
        0x93 => "STACK_GLOBAL",
        b'R' => "REDUCE",
        0x81 => "NEWOBJ",
        b'b' => "BUILD",
        b'Q' => "BINPERSID",
        b'q' => "BINPUT",
        b'r' => "LONG_BINPUT",
        0x94 => "MEMOIZE",
        b'h' => "BINGET",
        b'j' => "LONG_BINGET",
        _ => "unsupported",
    }
}

enum Slot {
    Value(Value),
    Mark,
}

struct Vm<'a, 'r> {
    data: &'a [u8],
    pos: usize,
    op_at: usize,
    op: Option<u8>,
    stack: Vec<Slot>,
    marks: usize,
    memo: HashMap<u32, Value>,
    containers: Vec<Container>,
    limits: Limits,
    resolver: &'r mut dyn Resolver,
}

/// Unpickles `data`, handing calls and persistent ids to `resolver`.
pub fn unpickle(
    data: &[u8],
    resolver: &mut dyn Resolver,
    limits: Limits,
) -> Result<Pickled, PickleError> {
    let mut vm = Vm {
        data,
        pos: 0,
        op_at: 0,
        op: None,
        stack: Vec::new(),
        marks: 0,
        memo: HashMap::new(),
        containers: Vec::new(),
        limits,
        resolver,
    };
    let root = vm.run()?;
    Ok(Pickled {
        root,
        containers: vm.containers,
    })
}

impl Vm<'_, '_> {
    fn err(&self, reason: impl Into<String>) -> PickleError {
        PickleError {
            offset: self.op_at,
            opcode: self.op,
            reason: reason.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PickleError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                self.err(format!(
                    "needs {n} more bytes, the pickle ends after {} (truncated?)",
                    self.data.len().saturating_sub(self.pos)
                ))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    fn le<const N: usize>(&mut self) -> Result<[u8; N], PickleError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn len_u32(&mut self) -> Result<usize, PickleError> {
        Ok(u32::from_le_bytes(self.le::<4>()?) as usize)
    }

    fn len_u64(&mut self) -> Result<usize, PickleError> {
        let n = u64::from_le_bytes(self.le::<8>()?);
        usize::try_from(n).map_err(|_| self.err(format!("length {n} too large")))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos..];
        let nl = rest
            .iter()
            .take(1024)
            .position(|&b| b == b'\n')
            .ok_or_else(|| self.err("no newline within 1024 bytes (truncated?)"))?;
        let s = std::str::from_utf8(&rest[..nl])
            .map_err(|_| self.err("a GLOBAL name is not UTF-8"))?
            .to_string();
        self.pos += nl + 1;
        Ok(s)
    }

    fn text(&mut self, n: usize) -> Result<Value, PickleError> {
        let (offset, opcode) = (self.op_at, self.op);
        let b = self.take(n)?;
        let s = std::str::from_utf8(b).map_err(|_| PickleError {
            offset,
            opcode,
            reason: "string is not valid UTF-8".to_string(),
        })?;
        Ok(Value::Str(s.into()))
    }

    /// A Python 2 `str`: text when it is UTF-8 (names are), bytes otherwise.
    fn str_or_bytes(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?;
        Ok(match std::str::from_utf8(b) {
            Ok(s) => Value::Str(s.into()),
            Err(_) => Value::Bytes(b.to_vec().into()),
        })
    }

    fn bytes(&mut self, n: usize) -> Result<Value, PickleError> {
        let b = self.take(n)?.to_vec();
        Ok(Value::Bytes(b.into()))
    }

    fn push(&mut self, v: Value) -> Result<(), PickleError> {
        if self.stack.len() >= self.limits.stack {
            return Err(self.err(format!(
                "stack deeper than the limit of {}",
                self.limits.stack
            )));
        }
        self.stack.push(Slot::Value(v));
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        match self.stack.pop() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => Err(self.err("expected a value, found a MARK")),
            None => Err(self.err("stack underflow")),
        }
    }

    fn top(&self) -> Result<&Value, PickleError> {
        match self.stack.last() {
            Some(Slot::Value(v)) => Ok(v),
            Some(Slot::Mark) => Err(self.err("expected a value, found a MARK")),
            None => Err(self.err("stack underflow")),
        }
    }

    /// Pops everything down to the last mark (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let at = self
            .stack
            .iter()
            .rposition(|s| matches!(s, Slot::Mark))
            .ok_or_else(|| self.err("no MARK on the stack"))?;
        let items: Vec<Value> = self
            .stack
            .drain(at + 1..)
            .filter_map(|s| match s {
                Slot::Value(v) => Some(v),
                Slot::Mark => None,
            })
            .collect();
        self.stack.pop();
        self.marks = self.marks.saturating_sub(1);
        Ok(items)
    }

    fn new_container(&mut self, c: Container) -> Result<usize, PickleError> {
        if self.containers.len() >= self.limits.items {
            return Err(self.err(format!("more than {} lists and dicts", self.limits.items)));
        }
        self.containers.push(c);
        Ok(self.containers.len() - 1)
    }

    fn memo_put(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self.top()?.clone();
        if self.memo.len() >= self.limits.memo && !self.memo.contains_key(&key) {
            return Err(self.err(format!("more than {} memo entries", self.limits.memo)));
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), PickleError> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| self.err(format!("memo key {key} was never stored")))?;
        self.push(v)
    }

    fn tuple(&mut self, items: Vec<Value>) -> Result<(), PickleError> {
        self.push(Value::Tuple(Rc::new(items)))
    }

    fn append(&mut self, list: &Value, items: Vec<Value>) -> Result<(), PickleError> {
        let limit = self.limits.items;
        let err = self.err(format!("APPEND to a {}", list.describe()));
        let Value::List(i) = list else {
            return Err(err);
        };
        match self.containers.get_mut(*i) {
            Some(Container::List(l)) => {
                if l.len() + items.len() > limit {
                    return Err(self.err(format!("a list longer than {limit} items")));
                }
                l.extend(items);
                Ok(())
            }
            _ => Err(err),
        }
    }

    fn set_items(&mut self, dict: &Value, items: Vec<Value>) -> Result<(), PickleError> {
        if items.len() % 2 != 0 {
            return Err(self.err("an odd number of keys and values"));
        }
        let limit = self.limits.items;
        let err = self.err(format!("SETITEM on a {}", dict.describe()));
        let Value::Dict(i) = dict else {
            return Err(err);
        };
        let Some(Container::Dict(d)) = self.containers.get_mut(*i) else {
            return Err(err);
        };
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if let Some(slot) = d.iter_mut().find(|(dk, _)| *dk == k) {
                slot.1 = v;
            } else {
                d.push((k, v));
            }
        }
        if d.len() > limit {
            return Err(self.err(format!("a dict larger than {limit} items")));
        }
        Ok(())
    }

    fn reduce(&mut self, callable: Value, args: Value) -> Result<(), PickleError> {
        let Value::Tuple(args) = args else {
            return Err(self.err(format!(
                "arguments of a call are a {}, not a tuple",
                args.describe()
            )));
        };
        if let Value::Global { module, name } = &callable {
            if &**module == "collections" && &**name == "OrderedDict" {
                if !args.is_empty() {
                    return Err(self.err("OrderedDict with arguments is not supported"));
                }
                let i = self.new_container(Container::Dict(Vec::new()))?;
                return self.push(Value::Dict(i));
            }
        }
        let v = self
            .resolver
            .reduce(&callable, &args, &self.containers)
            .map_err(|reason| PickleError {
                offset: self.op_at,
                opcode: self.op,
                reason: format!("calling {}: {reason}", callable.describe()),
            })?;
        self.push(v)
    }

    fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            self.op_at = self.pos;
            self.op = None;
            let op = self.u8().map_err(|_| PickleError {
                offset: self.pos,
                opcode: None,
                reason: "the pickle ends without STOP (truncated?)".to_string(),
            })?;
            self.op = Some(op);
            match op {
                0x80 => {
                    let p = self.u8()?;
                    if p > 5 {
                        return Err(self.err(format!("protocol {p} is newer than 5")));
                    }
                }
                0x95 => {
                    self.len_u64()?;
                }
                b'.' => {
                    let v = self.pop()?;
                    return Ok(v);
                }
                b'(' => {
                    if self.marks >= self.limits.marks {
                        return Err(self.err(format!("more than {} open MARKs", self.limits.marks)));
                    }
                    if self.stack.len() >= self.limits.stack {
                        return Err(self.err(format!(
                            "stack deeper than the limit of {}",
                            self.limits.stack
                        )));
                    }
                    self.marks += 1;
                    self.stack.push(Slot::Mark);
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let v = self.top()?.clone();
                    self.push(v)?;
                }
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = i32::from_le_bytes(self.le::<4>()?);
                    self.push(Value::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?;
                }
                b'M' => {
                    let v = u16::from_le_bytes(self.le::<2>()?);
                    self.push(Value::Int(v as i64))?;
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    if n > 8 {
                        return Err(self.err(format!("a {n}-byte integer does not fit i64")));
                    }
                    let b = self.take(n)?;
                    let mut v: i64 = 0;
                    for (i, &byte) in b.iter().enumerate() {
                        v |= (byte as i64) << (8 * i);
                    }
                    if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 {
                        v -= 1i64 << (8 * n);
                    }
                    self.push(Value::Int(v))?;
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.le::<8>()?);
                    self.push(Value::Float(v))?;
                }
                b'X' => {
                    let n = self.len_u32()?;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                0x8d => {
                    let n = self.len_u64()?;
                    let v = self.text(n)?;
                    self.push(v)?;
                }
                b'U' => {
                    let n = self.u8()? as usize;
                    let v = self.str_or_bytes(n)?;
                    self.push(v)?;
                }
                b'T' => {
                    let n = i32::from_le_bytes(self.le::<4>()?);
                    let n =
                        usize::try_from(n).map_err(|_| self.err(format!("negative length {n}")))?;
                    let v = self.str_or_bytes(n)?;
                    self.push(v)?;
                }
                b'B' => {
                    let n = self.len_u32()?;
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                b'C' => {
                    let n = self.u8()? as usize;
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                0x8e => {
                    let n = self.len_u64()?;
                    let v = self.bytes(n)?;
                    self.push(v)?;
                }
                b')' => self.tuple(Vec::new())?,
                b't' => {
                    let items = self.pop_mark()?;
                    if items.len() > self.limits.items {
                        return Err(self.err("a tuple too long"));
                    }
                    self.tuple(items)?;
                }
                0x85 => {
                    let a = self.pop()?;
                    self.tuple(vec![a])?;
                }
                0x86 => {
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.tuple(vec![a, b])?;
                }
                0x87 => {
                    let c = self.pop()?;
                    let b = self.pop()?;
                    let a = self.pop()?;
                    self.tuple(vec![a, b, c])?;
                }
                b']' => {
                    let i = self.new_container(Container::List(Vec::new()))?;
                    self.push(Value::List(i))?;
                }
                b'l' => {
                    let items = self.pop_mark()?;
                    let i = self.new_container(Container::List(items))?;
                    self.push(Value::List(i))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    let list = self.top()?.clone();
                    self.append(&list, vec![v])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?.clone();
                    self.append(&list, items)?;
                }
                b'}' => {
                    let i = self.new_container(Container::Dict(Vec::new()))?;
                    self.push(Value::Dict(i))?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    let i = self.new_container(Container::Dict(Vec::new()))?;
                    let d = Value::Dict(i);
                    self.set_items(&d, items)?;
                    self.push(d)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let d = self.top()?.clone();
                    self.set_items(&d, items)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global {
                        module: module.into(),
                        name: name.into(),
                    })?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (module, name) {
                        (Value::Str(module), Value::Str(name)) => {
                            self.push(Value::Global { module, name })?
                        }
                        (m, n) => {
                            return Err(self.err(format!(
                                "module and name are {} and {}, not strings",
                                m.describe(),
                                n.describe()
                            )))
                        }
                    }
                }
                b'R' | 0x81 => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    self.reduce(callable, args)?;
                }
                b'b' => {
                    // BUILD: set the object's state. Only plain data is loaded, so the
                    // state (e.g. an OrderedDict's `_metadata`) is dropped.
                    self.pop()?;
                    self.top()?;
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let v = self
                        .resolver
                        .persistent_load(&pid, &self.containers)
                        .map_err(|reason| PickleError {
                            offset: self.op_at,
                            opcode: self.op,
                            reason: format!("persistent id {}: {reason}", pid.describe()),
                        })?;
                    self.push(v)?;
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = u32::from_le_bytes(self.le::<4>()?);
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k =
                        u32::try_from(self.memo.len()).map_err(|_| self.err("memo too large"))?;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = u32::from_le_bytes(self.le::<4>()?);
                    self.memo_get(k)?;
                }
                other => {
                    return Err(self.err(format!(
                        "opcode 0x{other:02x} is not supported by this reader"
                    )))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct NoCalls;
    impl Resolver for NoCalls {
        fn reduce(&mut self, c: &Value, _: &[Value], _: &[Container]) -> Result<Value, String> {
            Err(format!("{} is not allowed", c.describe()))
        }
        fn persistent_load(&mut self, _: &Value, _: &[Container]) -> Result<Value, String> {
            Err("no persistent ids".to_string())
        }
    }

    fn run(data: &[u8]) -> Result<Pickled, PickleError> {
        unpickle(data, &mut NoCalls, Limits::default())
    }

    #[test]
    fn reads_a_dict_of_tuples_with_memo() {
        // pickle.dumps({'a': (1, 300, -2), 'b': [True, None, 'a']}, protocol=2)
        // (hand-assembled; `h\x01` re-reads the memoized key 'a').
        let mut p = vec![
            0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b'q', 1,
        ];
        p.extend([b'K', 1, b'M', 0x2c, 1, b'J', 0xfe, 0xff, 0xff, 0xff, 0x87]);
        p.extend([
            b'X', 1, 0, 0, 0, b'b', b']', b'(', 0x88, b'N', b'h', 1, b'e',
        ]);
        p.extend([b'u', b'.']);
        let r = run(&p).unwrap();
        let items = r.dict_items(&r.root).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].0, Value::Str("a".into()));
        assert_eq!(
            items[0].1,
            Value::Tuple(Rc::new(vec![
                Value::Int(1),
                Value::Int(300),
                Value::Int(-2)
            ]))
        );
        let Value::List(l) = &items[1].1 else {
            panic!("{:?}", items[1].1)
        };
        assert_eq!(
            r.containers[*l],
            Container::List(vec![Value::Bool(true), Value::None, Value::Str("a".into())])
        );
    }

    #[test]
    fn long1_is_signed() {
        let r = run(&[0x80, 2, 0x8a, 2, 0x00, 0xff, b'.']).unwrap();
        assert_eq!(r.root, Value::Int(-256));
        let r = run(&[0x80, 2, 0x8a, 1, 0x7f, b'.']).unwrap();
        assert_eq!(r.root, Value::Int(127));
    }

    #[test]
    fn bad_pickles_name_the_offset_and_opcode() {
        let e = run(&[0x80, 2, b'X', 9, 0, 0, 0, b'a']).unwrap_err();
        assert_eq!((e.offset, e.opcode), (2, Some(b'X')));
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = run(&[0x80, 2, b'K', 1]).unwrap_err();
        assert!(e.to_string().contains("without STOP"), "{e}");
        let e = run(&[0x80, 2, b'h', 7, b'.']).unwrap_err();
        assert!(e.to_string().contains("BINGET") && e.to_string().contains("memo key 7"));
        let e = run(&[
            0x80, 2, b'c', b'o', b's', b'\n', b's', b'y', b's', b't', b'e', b'm',
        ]);
        assert!(e.unwrap_err().to_string().contains("newline"));
        let e = run(b"cos\ns\n)R.").unwrap_err();
        assert!(e.to_string().contains("os.s is not allowed"), "{e}");
        let e = run(b"(.").unwrap_err();
        assert!(e.to_string().contains("MARK"), "{e}");
        let e = run(b"s.").unwrap_err();
        assert!(e.to_string().contains("underflow"), "{e}");
        let e = run(&[0xff]).unwrap_err();
        assert!(e.to_string().contains("not supported"), "{e}");
    }

    #[test]
    fn limits_are_enforced() {
        let lim = Limits {
            stack: 4,
            marks: 2,
            memo: 2,
            items: 3,
        };
        let e = unpickle(&[b'N'; 10], &mut NoCalls, lim).unwrap_err();
        assert!(e.to_string().contains("stack deeper"), "{e}");
        let e = unpickle(b"(((.", &mut NoCalls, lim).unwrap_err();
        assert!(e.to_string().contains("MARK"), "{e}");
        let e = unpickle(b"](NNNNe", &mut NoCalls, lim);
        assert!(e.unwrap_err().to_string().contains("stack deeper"));
        let e = unpickle(b"](NNe(NNe", &mut NoCalls, lim);
        assert!(e.unwrap_err().to_string().contains("longer than 3"));
    }

    #[test]
    fn every_prefix_and_byte_flip_of_a_pickle_gives_an_error_or_a_value() {
        let mut p = vec![
            0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b'q', 1,
        ];
        p.extend([b'K', 1, b'M', 0x2c, 1, b'J', 0xfe, 0xff, 0xff, 0xff, 0x87]);
        p.extend([
            b'X', 1, 0, 0, 0, b'b', b']', b'(', 0x88, b'N', b'h', 1, b'e',
        ]);
        p.extend([b'u', b'.']);
        for n in 0..p.len() {
            assert!(run(&p[..n]).is_err(), "prefix {n} accepted");
        }
        for i in 0..p.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut q = p.clone();
                q[i] ^= flip;
                let _ = run(&q);
            }
        }
    }
}
