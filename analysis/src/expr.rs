//! The expression language of `relevant` and `constraint`, in XLSForm's spirit.
//!
//! ```text
//! ${q1} = '2'            ${age} >= 18 and not(${x} = '')
//! selected(${q2}, 'a')   count-selected(${q2}) <= 3
//! . >= 0 and . <= 999    selected(${appr.overall}, '1')
//! ```
//!
//! Grammar, loosest binding first: `or`; `and`; comparisons `= != < <= > >=`;
//! `+ -`; `* div mod`; unary `-`; then literals (`'text'`, `"text"`, `12.5`),
//! references `${item}` / `${item.unit}` / `${item.criterion}` / `${item.unit.criterion}`,
//! `.` (the item being checked), parentheses and function calls.
//!
//! Values follow XPath 1.0 as XLSForm uses it: an unanswered question is the empty string;
//! comparing with a number converts the other side to a number (the empty string becomes
//! NaN, so `${age} >= 18` is false while `${age}` is unanswered); a list (the codes of a
//! `multi` answer, or the cells of an appraisal grid) compares true if any member does.
//! Evaluation never fails: every type error is caught when the form is checked.
//!
//! Nesting is bounded by [`MAX_DEPTH`], checked while parsing, so neither the parser nor the
//! evaluator can run out of stack, in the CLI or in the browser (whose wasm stack is much
//! smaller). Chains of one operator (`a or b or c …`, `1 + 2 - 3 …`) are kept flat, as one
//! node with a list of operands, so a long but flat expression nests no deeper than a short one.

use std::fmt;

use crate::error::cut;

/// The deepest nesting an expression may have: parentheses, function calls and unary
/// minus each open one level (`not(selected(${q}, 'a'))` is 2 levels deep).
///
/// Real `relevant` and `constraint` expressions nest a handful of levels; 32 leaves room
/// for generated ones. Each level costs the parser about nine nested calls (one per
/// precedence level) and the evaluator a few: the deepest expression allowed is parsed,
/// evaluated, cloned and dropped within 256 KiB of stack in an unoptimized build (tested
/// below; 128 KiB is not enough there, optimized frames are much smaller). That is a
/// quarter of the 1 MiB a wasm module gets by default, so it is safe in the browser, and
/// the limit is the same natively: `pingyi form check` refuses exactly what the app would.
pub const MAX_DEPTH: usize = 32;

/// A parsed expression together with its source text.
#[derive(Debug, Clone, PartialEq)]
pub struct Expression {
    source: String,
    root: Node,
}

/// A reference `${item}`, `${item.a}` or `${item.unit.criterion}` to an answer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reference {
    /// The item id.
    pub item: String,
    /// Further dotted parts, for appraisal grids: a unit, a criterion, or unit then criterion.
    pub parts: Vec<String>,
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${{{}", self.item)?;
        for p in &self.parts {
            write!(f, ".{p}")?;
        }
        f.write_str("}")
    }
}

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text (also a single-choice code, and the empty string for "unanswered").
    Str(String),
    /// A number.
    Num(f64),
    /// A boolean.
    Bool(bool),
    /// The codes of a multi-choice answer, or the cells of an appraisal grid.
    List(Vec<String>),
}

impl Value {
    /// The empty string: XLSForm's value of an unanswered question.
    pub fn empty() -> Value {
        Value::Str(String::new())
    }

    /// XPath's boolean(): numbers other than 0 and NaN, non-empty strings and lists are true.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Str(s) => !s.is_empty(),
            Value::Num(n) => *n != 0.0 && !n.is_nan(),
            Value::Bool(b) => *b,
            Value::List(l) => !l.is_empty(),
        }
    }

    /// XPath's number(): text is parsed (NaN when it is not a number); a list takes its first member.
    pub fn number(&self) -> f64 {
        match self {
            Value::Str(s) => parse_number(s),
            Value::Num(n) => *n,
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::List(l) => l.first().map(|s| parse_number(s)).unwrap_or(f64::NAN),
        }
    }

    /// XPath's string(): numbers print without a trailing `.0`; lists join with a space.
    pub fn string(&self) -> String {
        match self {
            Value::Str(s) => s.clone(),
            Value::Num(n) => format_number(*n),
            Value::Bool(b) => b.to_string(),
            Value::List(l) => l.join(" "),
        }
    }

    fn members(&self) -> Vec<String> {
        match self {
            Value::List(l) => l.clone(),
            Value::Str(s) => s.split_whitespace().map(str::to_string).collect(),
            other => vec![other.string()],
        }
    }
}

fn parse_number(s: &str) -> f64 {
    let t = s.trim();
    if t.is_empty() {
        return f64::NAN;
    }
    t.parse::<f64>().unwrap_or(f64::NAN)
}

fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// Where answers come from during evaluation: the form app's draft, or a ballot being checked.
pub trait Answers {
    /// The value of a reference; the empty string when unanswered.
    fn value(&self, reference: &Reference) -> Value;
    /// The value of `.`, the item whose constraint is being checked.
    fn current(&self) -> Value {
        Value::empty()
    }
}

/// A parse error: what was found at which character, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based character position in the expression.
    pub position: usize,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at character {}: {}", self.position, self.message)
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

/// The functions the language knows, with their number of arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Not,
    Selected,
    CountSelected,
    StringLength,
    Number,
    If,
    True,
    False,
    Contains,
}

impl Func {
    fn lookup(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "not" => (Func::Not, 1),
            "selected" => (Func::Selected, 2),
            "count-selected" => (Func::CountSelected, 1),
            "string-length" => (Func::StringLength, 1),
            "number" => (Func::Number, 1),
            "if" => (Func::If, 3),
            "true" => (Func::True, 0),
            "false" => (Func::False, 0),
            "contains" => (Func::Contains, 2),
            _ => return None,
        })
    }
}

const FUNCTION_NAMES: &str =
    "not, selected, count-selected, string-length, number, if, true, false, contains";

/// A node of the parse tree. A chain of one operator is one node with every operand, so the
/// tree is only as deep as the expression's nesting (see [`MAX_DEPTH`]).
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Str(String),
    Num(f64),
    Ref(Reference),
    Current,
    Neg(Box<Node>),
    /// `a and b and …`: true when every operand is.
    And(Vec<Node>),
    /// `a or b or …`: true when any operand is.
    Or(Vec<Node>),
    /// `a = b != c …`, left to right: `(a = b) != c`.
    Cmp(Box<Node>, Vec<(CmpOp, Node)>),
    /// `a + b * …` within one precedence level, left to right: `(a + b) - c`.
    Arith(Box<Node>, Vec<(ArithOp, Node)>),
    Call(Func, Vec<Node>),
}

impl Node {
    /// The operands directly below this node.
    fn children(&self) -> Vec<&Node> {
        match self {
            Node::Str(_) | Node::Num(_) | Node::Ref(_) | Node::Current => Vec::new(),
            Node::Neg(a) => vec![a],
            Node::And(list) | Node::Or(list) | Node::Call(_, list) => list.iter().collect(),
            Node::Cmp(first, rest) => std::iter::once(&**first)
                .chain(rest.iter().map(|(_, n)| n))
                .collect(),
            Node::Arith(first, rest) => std::iter::once(&**first)
                .chain(rest.iter().map(|(_, n)| n))
                .collect(),
        }
    }
}

impl Expression {
    /// Parses `source`; an empty or blank source is an error (leave the field out instead).
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        let tokens = tokenize(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: source.chars().count() + 1,
            depth: 0,
        };
        let root = p.or()?;
        if let Some((tok, at)) = p.tokens.get(p.pos) {
            return Err(ParseError {
                position: *at,
                message: format!(
                    "unexpected {}, expected an operator or the end",
                    tok.describe()
                ),
            });
        }
        Ok(Expression {
            source: source.to_string(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Every `${…}` reference, in order of appearance.
    pub fn references(&self) -> Vec<&Reference> {
        let mut out = Vec::new();
        collect_refs(&self.root, &mut out);
        out
    }

    /// Whether the expression uses `.`.
    pub fn uses_current(&self) -> bool {
        fn walk(n: &Node) -> bool {
            matches!(n, Node::Current) || n.children().into_iter().any(walk)
        }
        walk(&self.root)
    }

    /// Evaluates to a value.
    pub fn evaluate(&self, answers: &dyn Answers) -> Value {
        eval(&self.root, answers)
    }

    /// Evaluates and converts to a boolean (for `relevant` and `constraint`).
    pub fn is_true(&self, answers: &dyn Answers) -> bool {
        self.evaluate(answers).truthy()
    }
}

fn collect_refs<'a>(n: &'a Node, out: &mut Vec<&'a Reference>) {
    if let Node::Ref(r) = n {
        out.push(r);
    }
    for child in n.children() {
        collect_refs(child, out);
    }
}

fn eval(n: &Node, ctx: &dyn Answers) -> Value {
    match n {
        Node::Str(s) => Value::Str(s.clone()),
        Node::Num(x) => Value::Num(*x),
        Node::Ref(r) => ctx.value(r),
        Node::Current => ctx.current(),
        Node::Neg(a) => Value::Num(-eval(a, ctx).number()),
        Node::And(list) => Value::Bool(list.iter().all(|a| eval(a, ctx).truthy())),
        Node::Or(list) => Value::Bool(list.iter().any(|a| eval(a, ctx).truthy())),
        Node::Cmp(first, rest) => {
            let mut left = eval(first, ctx);
            for (op, right) in rest {
                left = Value::Bool(compare(*op, &left, &eval(right, ctx)));
            }
            left
        }
        Node::Arith(first, rest) => {
            let mut x = eval(first, ctx).number();
            for (op, right) in rest {
                let y = eval(right, ctx).number();
                x = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div => x / y,
                    ArithOp::Mod => x % y,
                };
            }
            Value::Num(x)
        }
        Node::Call(f, args) => call(*f, args, ctx),
    }
}

fn call(f: Func, args: &[Node], ctx: &dyn Answers) -> Value {
    let arg = |i: usize| eval(&args[i], ctx);
    match f {
        Func::Not => Value::Bool(!arg(0).truthy()),
        Func::Selected => {
            let code = arg(1).string();
            Value::Bool(arg(0).members().contains(&code))
        }
        Func::CountSelected => Value::Num(arg(0).members().len() as f64),
        Func::StringLength => Value::Num(arg(0).string().chars().count() as f64),
        Func::Number => Value::Num(arg(0).number()),
        Func::If => {
            if arg(0).truthy() {
                arg(1)
            } else {
                arg(2)
            }
        }
        Func::True => Value::Bool(true),
        Func::False => Value::Bool(false),
        Func::Contains => Value::Bool(arg(0).string().contains(&arg(1).string())),
    }
}

/// XPath 1.0 comparison: lists compare member-wise (true if any member matches);
/// with a boolean on either side both become booleans; `<`-style comparisons and
/// comparisons with a number are numeric; otherwise strings are compared.
fn compare(op: CmpOp, a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::List(l), other) => l.iter().any(|m| compare(op, &Value::Str(m.clone()), other)),
        (other, Value::List(l)) => l.iter().any(|m| compare(op, other, &Value::Str(m.clone()))),
        _ => {
            if matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)) {
                let (x, y) = (a.truthy(), b.truthy());
                return match op {
                    CmpOp::Eq => x == y,
                    CmpOp::Ne => x != y,
                    _ => compare_numbers(op, f64::from(u8::from(x)), f64::from(u8::from(y))),
                };
            }
            let numeric = matches!(a, Value::Num(_))
                || matches!(b, Value::Num(_))
                || !matches!(op, CmpOp::Eq | CmpOp::Ne);
            if numeric {
                compare_numbers(op, a.number(), b.number())
            } else {
                let (x, y) = (a.string(), b.string());
                match op {
                    CmpOp::Eq => x == y,
                    _ => x != y,
                }
            }
        }
    }
}

fn compare_numbers(op: CmpOp, x: f64, y: f64) -> bool {
    match op {
        CmpOp::Eq => x == y,
        CmpOp::Ne => x != y,
        CmpOp::Lt => x < y,
        CmpOp::Le => x <= y,
        CmpOp::Gt => x > y,
        CmpOp::Ge => x >= y,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ref(Reference),
    Dot,
    Name(String),
    LParen,
    RParen,
    Comma,
    Op(&'static str),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Str(s) => format!("text '{}'", cut(s)),
            Tok::Num(n) => format!("number {}", cut(&format_number(*n))),
            Tok::Ref(r) => format!("reference {}", cut(&r.to_string())),
            Tok::Dot => "'.'".into(),
            Tok::Name(n) => format!("'{}'", cut(n)),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Op(o) => format!("'{o}'"),
        }
    }
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn tokenize(source: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = source.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let err = |at: usize, message: String| ParseError {
        position: at + 1,
        message,
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let tok = match c {
            '$' => {
                if chars.get(i + 1) != Some(&'{') {
                    return Err(err(i, "'$' must start a reference like ${q1}".into()));
                }
                let close = chars[i + 2..]
                    .iter()
                    .position(|&c| c == '}')
                    .ok_or_else(|| err(i, "reference is not closed with '}'".into()))?;
                let inner: String = chars[i + 2..i + 2 + close].iter().collect();
                let mut parts = inner.split('.').map(str::to_string);
                let item = parts.next().unwrap_or_default();
                let parts: Vec<String> = parts.collect();
                if item.is_empty()
                    || parts.len() > 2
                    || std::iter::once(&item)
                        .chain(&parts)
                        .any(|p| p.is_empty() || !p.chars().all(is_id_char))
                {
                    return Err(err(
                        i,
                        format!(
                            "bad reference ${{{}}}, expected ${{item}}, ${{item.part}} or ${{item.unit.criterion}} made of letters, digits, '_' and '-'",
                            cut(&inner)
                        ),
                    ));
                }
                i += close + 3;
                Tok::Ref(Reference { item, parts })
            }
            '\'' | '"' => {
                let close = chars[i + 1..]
                    .iter()
                    .position(|&q| q == c)
                    .ok_or_else(|| err(i, format!("text is not closed with {c}")))?;
                let s: String = chars[i + 1..i + 1 + close].iter().collect();
                i += close + 2;
                Tok::Str(s)
            }
            '0'..='9' => {
                let mut j = i;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                let n = text
                    .parse::<f64>()
                    .map_err(|_| err(i, format!("bad number {}", cut(&text))))?;
                i = j;
                Tok::Num(n)
            }
            '.' if chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()) => {
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_ascii_digit() {
                    j += 1;
                }
                let text: String = chars[i..j].iter().collect();
                i = j;
                Tok::Num(
                    text.parse::<f64>()
                        .map_err(|_| err(start, format!("bad number {}", cut(&text))))?,
                )
            }
            '.' => {
                i += 1;
                Tok::Dot
            }
            '(' => {
                i += 1;
                Tok::LParen
            }
            ')' => {
                i += 1;
                Tok::RParen
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            '=' => {
                i += 1;
                Tok::Op("=")
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Op("!=")
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                i += if eq { 2 } else { 1 };
                Tok::Op(match (c, eq) {
                    ('<', false) => "<",
                    ('<', true) => "<=",
                    ('>', false) => ">",
                    _ => ">=",
                })
            }
            '+' => {
                i += 1;
                Tok::Op("+")
            }
            '-' => {
                i += 1;
                Tok::Op("-")
            }
            '*' => {
                i += 1;
                Tok::Op("*")
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i;
                while j < chars.len() && is_id_char(chars[j]) {
                    j += 1;
                }
                // A trailing '-' belongs to a following minus, not to the name.
                while j > i + 1 && chars[j - 1] == '-' {
                    j -= 1;
                }
                let name: String = chars[i..j].iter().collect();
                i = j;
                Tok::Name(name)
            }
            other => {
                return Err(err(
                    i,
                    format!("unexpected character {other:?}, expected a value, an operator or a parenthesis"),
                ))
            }
        };
        out.push((tok, start + 1));
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
    /// Levels of nesting open at `pos` (see [`MAX_DEPTH`]).
    depth: usize,
}

/// `first op x op y …` as one node, or `first` alone.
fn arith(first: Node, rest: Vec<(ArithOp, Node)>) -> Node {
    if rest.is_empty() {
        first
    } else {
        Node::Arith(Box::new(first), rest)
    }
}

/// How deep the tokens nest, counted as the parser counts (each parenthesis or call, and
/// each unary minus until its operand ends), without recursion: for the message that
/// refuses an expression nested deeper than [`MAX_DEPTH`].
fn nesting_depth(tokens: &[(Tok, usize)]) -> usize {
    // Per open parenthesis, the unary minuses waiting for it as their operand; `stacked`
    // is their sum, and `waiting` counts those since the last operand at this level.
    let mut open: Vec<usize> = Vec::new();
    let (mut stacked, mut waiting, mut deepest) = (0, 0, 0);
    let mut previous: Option<&Tok> = None;
    for (tok, _) in tokens {
        match tok {
            Tok::Op("-") if starts_operand(previous) => waiting += 1,
            Tok::LParen => {
                open.push(waiting);
                stacked += waiting;
                waiting = 0;
            }
            Tok::RParen | Tok::Str(_) | Tok::Num(_) | Tok::Ref(_) | Tok::Dot => waiting = 0,
            _ => {}
        }
        deepest = deepest.max(open.len() + stacked + waiting);
        if matches!(tok, Tok::RParen) {
            stacked -= open.pop().unwrap_or(0);
        }
        previous = Some(tok);
    }
    deepest
}

/// Whether a token after `previous` begins an operand (so a `-` there is unary).
fn starts_operand(previous: Option<&Tok>) -> bool {
    match previous {
        None | Some(Tok::Op(_) | Tok::LParen | Tok::Comma) => true,
        Some(Tok::Name(n)) => matches!(n.as_str(), "and" | "or" | "div" | "mod"),
        _ => false,
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|(t, _)| t)
    }

    fn at(&self) -> usize {
        self.tokens
            .get(self.pos)
            .map(|(_, p)| *p)
            .unwrap_or(self.end)
    }

    fn is_name(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Name(n)) if n == name)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn error<T>(&self, expected: &str) -> Result<T, ParseError> {
        let found = match self.peek() {
            Some(t) => t.describe(),
            None => "the end".into(),
        };
        Err(ParseError {
            position: self.at(),
            message: format!("found {found}, expected {expected}"),
        })
    }

    /// Opens one level of nesting (a parenthesis, a call, a unary minus), refusing to go
    /// past [`MAX_DEPTH`] before any deeper call is made.
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError {
                position: self.at(),
                message: format!(
                    "the expression is nested {} levels deep (parentheses, function calls and unary minus), expected at most {MAX_DEPTH}; split it or write it flatter",
                    nesting_depth(&self.tokens)
                ),
            });
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// One flat node for `first op x op y …` (or `first` alone).
    fn chain(
        &mut self,
        operand: fn(&mut Parser) -> Result<Node, ParseError>,
        operator: &str,
        build: fn(Vec<Node>) -> Node,
    ) -> Result<Node, ParseError> {
        let first = operand(self)?;
        if !self.is_name(operator) {
            return Ok(first);
        }
        let mut list = vec![first];
        while self.is_name(operator) {
            self.pos += 1;
            list.push(operand(self)?);
        }
        Ok(build(list))
    }

    fn or(&mut self) -> Result<Node, ParseError> {
        self.chain(Parser::and, "or", Node::Or)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        self.chain(Parser::comparison, "and", Node::And)
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let first = self.additive()?;
        let mut rest = Vec::new();
        loop {
            let op = match self.peek() {
                Some(Tok::Op("=")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                _ => break,
            };
            self.pos += 1;
            rest.push((op, self.additive()?));
        }
        Ok(if rest.is_empty() {
            first
        } else {
            Node::Cmp(Box::new(first), rest)
        })
    }

    fn additive(&mut self) -> Result<Node, ParseError> {
        let first = self.multiplicative()?;
        let mut rest = Vec::new();
        loop {
            let op = if self.is_op("+") {
                ArithOp::Add
            } else if self.is_op("-") {
                ArithOp::Sub
            } else {
                break;
            };
            self.pos += 1;
            rest.push((op, self.multiplicative()?));
        }
        Ok(arith(first, rest))
    }

    fn multiplicative(&mut self) -> Result<Node, ParseError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        loop {
            let op = if self.is_op("*") {
                ArithOp::Mul
            } else if self.is_name("div") {
                ArithOp::Div
            } else if self.is_name("mod") {
                ArithOp::Mod
            } else {
                break;
            };
            self.pos += 1;
            rest.push((op, self.unary()?));
        }
        Ok(arith(first, rest))
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.is_op("-") {
            self.enter()?;
            self.pos += 1;
            let operand = self.unary()?;
            self.leave();
            return Ok(Node::Neg(Box::new(operand)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let expected = "a value: 'text', a number, ${item}, '.', a function call or '('";
        let Some((tok, at)) = self.tokens.get(self.pos).cloned() else {
            return self.error(expected);
        };
        match tok {
            Tok::Str(s) => {
                self.pos += 1;
                Ok(Node::Str(s))
            }
            Tok::Num(n) => {
                self.pos += 1;
                Ok(Node::Num(n))
            }
            Tok::Ref(r) => {
                self.pos += 1;
                Ok(Node::Ref(r))
            }
            Tok::Dot => {
                self.pos += 1;
                Ok(Node::Current)
            }
            Tok::LParen => {
                self.enter()?;
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error("')'");
                }
                self.pos += 1;
                self.leave();
                Ok(inner)
            }
            Tok::Name(name) => {
                if matches!(name.as_str(), "and" | "or" | "div" | "mod") {
                    return self.error(expected);
                }
                let Some((func, arity)) = Func::lookup(&name) else {
                    return Err(ParseError {
                        position: at,
                        message: format!(
                            "unknown function '{}', expected one of {FUNCTION_NAMES}",
                            cut(&name)
                        ),
                    });
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::LParen) {
                    return self.error(&format!("'(' after {name}"));
                }
                self.enter()?;
                self.pos += 1;
                let mut args = Vec::new();
                if self.peek() != Some(&Tok::RParen) {
                    loop {
                        args.push(self.or()?);
                        if self.peek() == Some(&Tok::Comma) {
                            self.pos += 1;
                        } else {
                            break;
                        }
                    }
                }
                if self.peek() != Some(&Tok::RParen) {
                    return self.error(&format!("',' or ')' in the call of {name}"));
                }
                self.pos += 1;
                self.leave();
                if args.len() != arity {
                    return Err(ParseError {
                        position: at,
                        message: format!(
                            "{name}() takes {arity} argument{}, found {}",
                            if arity == 1 { "" } else { "s" },
                            args.len()
                        ),
                    });
                }
                Ok(Node::Call(func, args))
            }
            _ => self.error(expected),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Map(HashMap<String, Value>, Value);

    impl Answers for Map {
        fn value(&self, r: &Reference) -> Value {
            let mut key = r.item.clone();
            for p in &r.parts {
                key.push('.');
                key.push_str(p);
            }
            self.0.get(&key).cloned().unwrap_or_else(Value::empty)
        }
        fn current(&self) -> Value {
            self.1.clone()
        }
    }

    fn ctx(pairs: &[(&str, Value)]) -> Map {
        Map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            Value::empty(),
        )
    }

    fn s(v: &str) -> Value {
        Value::Str(v.into())
    }

    fn t(src: &str, m: &Map) -> bool {
        Expression::parse(src).unwrap().is_true(m)
    }

    #[test]
    fn equality_on_codes() {
        let m = ctx(&[("q1", s("2"))]);
        assert!(t("${q1} = '2'", &m));
        assert!(!t("${q1} = '3'", &m));
        assert!(t("${q1} != '3'", &m));
        assert!(t("${q1} = 2", &m), "a number compares numerically");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let m = ctx(&[]);
        // true or (false and false) = true; (true or false) and false would be false.
        assert!(t("1 = 1 or 1 = 2 and 1 = 2", &m));
        assert!(!t("(1 = 1 or 1 = 2) and 1 = 2", &m));
    }

    #[test]
    fn arithmetic_precedence_and_unary_minus() {
        let m = ctx(&[]);
        let v = Expression::parse("1 + 2 * 3 - 4 div 2")
            .unwrap()
            .evaluate(&m);
        assert_eq!(v, Value::Num(5.0));
        let v = Expression::parse("-2 * -3 + 7 mod 4").unwrap().evaluate(&m);
        assert_eq!(v, Value::Num(9.0));
        assert!(
            t("1 + 1 = 2", &m),
            "arithmetic binds tighter than comparison"
        );
    }

    #[test]
    fn unanswered_is_empty_and_numeric_comparison_is_false() {
        let m = ctx(&[]);
        assert!(!t("${age} >= 18", &m));
        assert!(!t("${age} < 18", &m));
        assert!(t("${age} = ''", &m));
        assert!(t("not(${x} = '') or true()", &m));
        let m = ctx(&[("age", Value::Num(20.0)), ("x", s("y"))]);
        assert!(t("${age} >= 18 and not(${x} = '')", &m));
    }

    #[test]
    fn selected_and_count_selected_on_lists_and_strings() {
        let m = ctx(&[
            ("q2", Value::List(vec!["a".into(), "c".into()])),
            ("q3", s("a b")),
        ]);
        assert!(t("selected(${q2}, 'a')", &m));
        assert!(!t("selected(${q2}, 'b')", &m));
        assert!(t("count-selected(${q2}) = 2", &m));
        assert!(
            t("selected(${q3}, 'b')", &m),
            "a space-joined string is a list"
        );
        assert!(t("count-selected(${none}) = 0", &m));
    }

    #[test]
    fn grid_columns_compare_member_wise() {
        let m = ctx(&[(
            "appr.overall",
            Value::List(vec!["5".into(), "1".into(), "4".into()]),
        )]);
        assert!(t(
            "selected(${appr.overall}, '1') or selected(${appr.overall}, '2')",
            &m
        ));
        assert!(t("${appr.overall} = '4'", &m));
        assert!(!t("${appr.overall} = '3'", &m));
    }

    #[test]
    fn current_value_in_constraints() {
        let mut m = ctx(&[]);
        m.1 = Value::Num(12.0);
        assert!(t(". >= 0 and . <= 999", &m));
        m.1 = s("1000");
        assert!(!t(". >= 0 and . <= 999", &m));
        assert!(Expression::parse(". > 1").unwrap().uses_current());
    }

    #[test]
    fn booleans_and_if() {
        let m = ctx(&[("q", s("x"))]);
        assert!(t("true() = (${q} = 'x')", &m));
        let v = Expression::parse("if(${q} = 'x', 'yes', 'no')")
            .unwrap()
            .evaluate(&m);
        assert_eq!(v, s("yes"));
        assert!(t("string-length(${q}) = 1 and contains('abc', 'b')", &m));
    }

    #[test]
    fn references_are_listed() {
        let e = Expression::parse("${a} = '1' and selected(${b.u1.c2}, 'x')").unwrap();
        let refs: Vec<String> = e.references().iter().map(|r| r.to_string()).collect();
        assert_eq!(refs, vec!["${a}", "${b.u1.c2}"]);
    }

    #[test]
    fn errors_say_where_and_what_was_expected() {
        let e = Expression::parse("${q1} = ").unwrap_err();
        assert_eq!(e.position, 9);
        assert!(e.message.contains("found the end"), "{e}");
        let e = Expression::parse("${q1} == '2'").unwrap_err();
        assert_eq!(e.position, 8);
        let e = Expression::parse("foo(${q})").unwrap_err();
        assert!(e.message.contains("unknown function 'foo'"), "{e}");
        let e = Expression::parse("selected(${q})").unwrap_err();
        assert!(e.message.contains("takes 2 arguments, found 1"), "{e}");
        let e = Expression::parse("${q1 = '2'").unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = Expression::parse("'abc").unwrap_err();
        assert!(e.message.contains("not closed"), "{e}");
        let e = Expression::parse("(1 = 1").unwrap_err();
        assert!(e.message.contains("expected ')'"), "{e}");
        let e = Expression::parse("${a b}").unwrap_err();
        assert!(e.message.contains("bad reference"), "{e}");
        let e = Expression::parse("").unwrap_err();
        assert_eq!(e.position, 1);
        let e = Expression::parse("1 = 1 1").unwrap_err();
        assert!(e.message.contains("unexpected number 1"), "{e}");
    }

    #[test]
    fn hyphenated_function_names_do_not_swallow_minus() {
        let m = ctx(&[("q", Value::List(vec!["a".into(), "b".into()]))]);
        let v = Expression::parse("count-selected(${q})-1")
            .unwrap()
            .evaluate(&m);
        assert_eq!(v, Value::Num(1.0));
    }

    /// An expression exactly `depth` levels deep, cycling through every construct that
    /// nests (a call, parentheses, unary minus, a call with a flat `or` chain inside).
    fn nested(depth: usize) -> String {
        let (mut open, mut close) = (String::new(), String::new());
        for level in 0..depth {
            let (o, c) = match level % 4 {
                0 => ("not(", ")"),
                1 => ("(", " or ${q} = 'x')"),
                2 => ("-", ""),
                _ => ("number(", ")"),
            };
            open.push_str(o);
            close.insert_str(0, c);
        }
        format!("{open}${{q}}{close}")
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        // Before MAX_DEPTH each of these overflowed the stack and aborted the process.
        const N: usize = 100_000;
        let cases = [
            (
                "parentheses",
                format!("{}1{}", "(".repeat(N), ")".repeat(N)),
            ),
            (
                "not()",
                format!("{}true(){}", "not(".repeat(N - 1), ")".repeat(N - 1)),
            ),
            ("unary minus", format!("{}1", "-".repeat(N))),
            (
                "number()",
                format!("{}1{}", "number(".repeat(N), ")".repeat(N)),
            ),
            (
                "or inside parentheses",
                format!(
                    "{}${{q}} = 'x'{}",
                    "(${q} = 'y' or ".repeat(N),
                    ")".repeat(N)
                ),
            ),
        ];
        for (what, src) in &cases {
            let e = Expression::parse(src).unwrap_err();
            assert!(
                e.message.contains(&format!("nested {N} levels deep"))
                    && e.message.contains(&format!("expected at most {MAX_DEPTH}")),
                "{what}: {}",
                e.message
            );
            assert!(e.message.len() < 200, "{what}: {}", e.message);
        }
    }

    #[test]
    fn the_limit_is_exact_and_the_message_counts_like_the_parser() {
        let m = ctx(&[("q", s("x"))]);
        // Outermost: not((… or ${q} = 'x')) = not(true), whatever is deeper.
        let deepest = Expression::parse(&nested(MAX_DEPTH)).unwrap();
        assert_eq!(deepest.evaluate(&m), Value::Bool(false));
        for depth in [MAX_DEPTH + 1, MAX_DEPTH + 2, 3 * MAX_DEPTH] {
            let e = Expression::parse(&nested(depth)).unwrap_err();
            assert!(
                e.message.contains(&format!("nested {depth} levels deep")),
                "{depth}: {e}"
            );
        }
        // A binary minus opens no level: 40 subtractions in a row are flat.
        let flat = vec!["1"; 41].join(" - ");
        assert_eq!(
            Expression::parse(&flat).unwrap().evaluate(&m),
            Value::Num(-39.0)
        );
    }

    #[test]
    fn the_deepest_allowed_expression_fits_a_small_stack() {
        // Parse, evaluate, clone, compare, print and drop the deepest expression allowed on
        // a 256 KiB stack, a quarter of what a wasm module gets by default.
        let src = nested(MAX_DEPTH);
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let m = ctx(&[("q", s("x"))]);
                let e = Expression::parse(&src).unwrap();
                let _ = e.evaluate(&m);
                assert_eq!(e.clone(), e);
                assert!(format!("{e:?}").contains("Call(Not"));
                assert_eq!(e.references().len(), 1 + MAX_DEPTH / 4);
                assert!(!e.uses_current());
            })
            .unwrap()
            .join()
            .expect("the deepest expression fits a 256 KiB stack");
    }

    #[test]
    fn long_flat_chains_parse_and_evaluate() {
        // Before chains were kept flat, these parsed into trees 10,000–100,000 levels deep
        // whose evaluation (and drop) overflowed the stack.
        let m = ctx(&[("q", s("x"))]);
        let ors = format!(
            "{} or ${{q}} = 'x'",
            vec!["${q} = 'y'"; 10_000].join(" or ")
        );
        assert!(t(&ors, &m));
        assert_eq!(Expression::parse(&ors).unwrap().references().len(), 10_001);
        let ands = vec!["${q} = 'x'"; 10_000].join(" and ");
        assert!(t(&ands, &m));
        assert!(!t(&format!("{ands} and ${{q}} = 'y'"), &m));
        let sum = vec!["1"; 100_000].join(" + ");
        assert_eq!(
            Expression::parse(&sum).unwrap().evaluate(&m),
            Value::Num(100_000.0)
        );
        let product = vec!["2"; 1000].join(" * ");
        assert_eq!(
            Expression::parse(&product).unwrap().evaluate(&m),
            Value::Num(2f64.powi(1000))
        );
        // (1 = 1) = 1 … compares booleans left to right: true all the way.
        assert!(t(&vec!["1"; 10_000].join(" = "), &m));
    }

    #[test]
    fn long_values_in_messages_are_cut() {
        let long = "x".repeat(10_000);
        let e = Expression::parse(&format!("'{long}' '{long}'")).unwrap_err();
        assert!(e.message.contains("(10000 characters)"), "{e}");
        assert!(e.message.len() < 200, "{e}");
        let e = Expression::parse(&format!("{long}(1)")).unwrap_err();
        assert!(
            e.message.len() < 300 && e.message.contains("unknown function"),
            "{e}"
        );
    }
}
