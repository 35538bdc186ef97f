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

use std::fmt;

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

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Str(String),
    Num(f64),
    Ref(Reference),
    Current,
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

impl Expression {
    /// Parses `source`; an empty or blank source is an error (leave the field out instead).
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        let tokens = tokenize(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            end: source.chars().count() + 1,
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
            match n {
                Node::Current => true,
                Node::Neg(a) => walk(a),
                Node::And(a, b) | Node::Or(a, b) | Node::Cmp(_, a, b) | Node::Arith(_, a, b) => {
                    walk(a) || walk(b)
                }
                Node::Call(_, args) => args.iter().any(walk),
                _ => false,
            }
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
    match n {
        Node::Ref(r) => out.push(r),
        Node::Neg(a) => collect_refs(a, out),
        Node::And(a, b) | Node::Or(a, b) | Node::Cmp(_, a, b) | Node::Arith(_, a, b) => {
            collect_refs(a, out);
            collect_refs(b, out);
        }
        Node::Call(_, args) => args.iter().for_each(|a| collect_refs(a, out)),
        _ => {}
    }
}

fn eval(n: &Node, ctx: &dyn Answers) -> Value {
    match n {
        Node::Str(s) => Value::Str(s.clone()),
        Node::Num(x) => Value::Num(*x),
        Node::Ref(r) => ctx.value(r),
        Node::Current => ctx.current(),
        Node::Neg(a) => Value::Num(-eval(a, ctx).number()),
        Node::And(a, b) => Value::Bool(eval(a, ctx).truthy() && eval(b, ctx).truthy()),
        Node::Or(a, b) => Value::Bool(eval(a, ctx).truthy() || eval(b, ctx).truthy()),
        Node::Cmp(op, a, b) => Value::Bool(compare(*op, &eval(a, ctx), &eval(b, ctx))),
        Node::Arith(op, a, b) => {
            let (x, y) = (eval(a, ctx).number(), eval(b, ctx).number());
            Value::Num(match op {
                ArithOp::Add => x + y,
                ArithOp::Sub => x - y,
                ArithOp::Mul => x * y,
                ArithOp::Div => x / y,
                ArithOp::Mod => x % y,
            })
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
            Tok::Str(s) => format!("text '{s}'"),
            Tok::Num(n) => format!("number {}", format_number(*n)),
            Tok::Ref(r) => format!("reference {r}"),
            Tok::Dot => "'.'".into(),
            Tok::Name(n) => format!("'{n}'"),
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
                            "bad reference ${{{inner}}}, expected ${{item}}, ${{item.part}} or ${{item.unit.criterion}} made of letters, digits, '_' and '-'"
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
                    .map_err(|_| err(i, format!("bad number {text}")))?;
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
                Tok::Num(text.parse::<f64>().map_err(|_| err(start, format!("bad number {text}")))?)
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

    fn or(&mut self) -> Result<Node, ParseError> {
        let mut left = self.and()?;
        while self.is_name("or") {
            self.pos += 1;
            let right = self.and()?;
            left = Node::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, ParseError> {
        let mut left = self.comparison()?;
        while self.is_name("and") {
            self.pos += 1;
            let right = self.comparison()?;
            left = Node::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Node, ParseError> {
        let mut left = self.additive()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("=")) => CmpOp::Eq,
                Some(Tok::Op("!=")) => CmpOp::Ne,
                Some(Tok::Op("<")) => CmpOp::Lt,
                Some(Tok::Op("<=")) => CmpOp::Le,
                Some(Tok::Op(">")) => CmpOp::Gt,
                Some(Tok::Op(">=")) => CmpOp::Ge,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.additive()?;
            left = Node::Cmp(op, Box::new(left), Box::new(right));
        }
    }

    fn additive(&mut self) -> Result<Node, ParseError> {
        let mut left = self.multiplicative()?;
        loop {
            let op = if self.is_op("+") {
                ArithOp::Add
            } else if self.is_op("-") {
                ArithOp::Sub
            } else {
                return Ok(left);
            };
            self.pos += 1;
            let right = self.multiplicative()?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Node, ParseError> {
        let mut left = self.unary()?;
        loop {
            let op = if self.is_op("*") {
                ArithOp::Mul
            } else if self.is_name("div") {
                ArithOp::Div
            } else if self.is_name("mod") {
                ArithOp::Mod
            } else {
                return Ok(left);
            };
            self.pos += 1;
            let right = self.unary()?;
            left = Node::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        if self.is_op("-") {
            self.pos += 1;
            return Ok(Node::Neg(Box::new(self.unary()?)));
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
                self.pos += 1;
                let inner = self.or()?;
                if self.peek() != Some(&Tok::RParen) {
                    return self.error("')'");
                }
                self.pos += 1;
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
                            "unknown function '{name}', expected one of {FUNCTION_NAMES}"
                        ),
                    });
                };
                self.pos += 1;
                if self.peek() != Some(&Tok::LParen) {
                    return self.error(&format!("'(' after {name}"));
                }
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
}
