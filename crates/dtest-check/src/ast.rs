//! The syntax tree of a spec, as written (aliases resolved to one operator,
//! lets still by name), with byte spans for error messages.
//!
//! Two trees are equal when they have the same structure: spans are not
//! compared (see [`Span`]), so `parse(print(f)) == f` holds.

/// A byte range in the spec source. Spans never take part in equality.
#[derive(Clone, Copy, Debug, Default, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl PartialEq for Span {
    fn eq(&self, _: &Span) -> bool {
        true
    }
}

impl Span {
    /// A span from `start` to `end`.
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }
}

/// A whole spec: lets and properties in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The items in source order.
    pub items: Vec<Item>,
}

/// `let NAME = FORMULA` or `property NAME: FORMULA`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Let or property.
    pub kind: ItemKind,
    /// The name.
    pub name: String,
    /// Where the name is.
    pub name_span: Span,
    /// The formula.
    pub formula: Formula,
}

/// What an [`Item`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// `let NAME = FORMULA`: a named formula, usable in later items.
    Let,
    /// `property NAME: FORMULA`: checked on every trace.
    Property,
}

/// A formula with its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Formula {
    /// What the formula is.
    pub kind: FormulaKind,
    /// Where it is.
    pub span: Span,
}

/// Binary boolean connectives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BoolOp {
    /// `&&`, `and`.
    And,
    /// `||`, `or`.
    Or,
    /// `->`, `implies` (right associative).
    Implies,
    /// `<->`.
    Iff,
}

/// Unary temporal operators (and `!`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `!`, `not`.
    Not,
    /// `X`, `next`: strong next.
    Next,
    /// `WX`: weak next.
    WeakNext,
    /// `F`, `eventually`.
    Eventually,
    /// `G`, `always`.
    Always,
    /// `Y`: strong previous.
    Prev,
    /// `WY`: weak previous.
    WeakPrev,
    /// `O`, `once`.
    Once,
    /// `H`, `historically`.
    Historically,
    /// `CO`, `causally_once`: some event in the causal past (or this one).
    CausallyOnce,
    /// `CH`, `causally_historically`: every event in the causal past.
    CausallyHistorically,
    /// `CF`, `causally_eventually`: some event in the causal future (or this one).
    CausallyEventually,
    /// `CG`, `causally_always`: every event in the causal future.
    CausallyAlways,
    /// `CC`, `concurrently`: some event concurrent with this one.
    Concurrently,
}

impl UnOp {
    /// Whether the operator takes an `[a, b]` interval.
    pub fn takes_interval(self) -> bool {
        matches!(
            self,
            UnOp::Eventually | UnOp::Always | UnOp::Once | UnOp::Historically
        )
    }

    /// The symbol the printer uses.
    pub fn symbol(self) -> &'static str {
        match self {
            UnOp::Not => "!",
            UnOp::Next => "X",
            UnOp::WeakNext => "WX",
            UnOp::Eventually => "F",
            UnOp::Always => "G",
            UnOp::Prev => "Y",
            UnOp::WeakPrev => "WY",
            UnOp::Once => "O",
            UnOp::Historically => "H",
            UnOp::CausallyOnce => "CO",
            UnOp::CausallyHistorically => "CH",
            UnOp::CausallyEventually => "CF",
            UnOp::CausallyAlways => "CG",
            UnOp::Concurrently => "CC",
        }
    }
}

/// Binary temporal operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TempOp {
    /// `U`, `until` (strong).
    Until,
    /// `W`: weak until.
    WeakUntil,
    /// `R`: release.
    Release,
    /// `S`, `since`.
    Since,
}

impl TempOp {
    /// Whether the operator takes an `[a, b]` interval.
    pub fn takes_interval(self) -> bool {
        matches!(self, TempOp::Until | TempOp::Since)
    }

    /// The symbol the printer uses.
    pub fn symbol(self) -> &'static str {
        match self {
            TempOp::Until => "U",
            TempOp::WeakUntil => "W",
            TempOp::Release => "R",
            TempOp::Since => "S",
        }
    }
}

/// A time unit of an interval bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
    /// Minutes.
    M,
    /// Hours.
    H,
}

impl Unit {
    /// Nanoseconds in one unit.
    pub fn nanos(self) -> u64 {
        match self {
            Unit::Ns => 1,
            Unit::Us => 1_000,
            Unit::Ms => 1_000_000,
            Unit::S => 1_000_000_000,
            Unit::M => 60_000_000_000,
            Unit::H => 3_600_000_000_000,
        }
    }

    /// The unit's suffix.
    pub fn suffix(self) -> &'static str {
        match self {
            Unit::Ns => "ns",
            Unit::Us => "us",
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::M => "m",
            Unit::H => "h",
        }
    }
}

/// A duration as written: a number and a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Duration {
    /// The number.
    pub value: u64,
    /// The unit.
    pub unit: Unit,
}

impl Duration {
    /// The duration in nanoseconds (saturating).
    pub fn nanos(self) -> u64 {
        self.value.saturating_mul(self.unit.nanos())
    }
}

/// `[a, b]`, both ends inclusive; `b` is `None` for `inf`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    /// Lower bound.
    pub lo: Duration,
    /// Upper bound, `None` for `inf`.
    pub hi: Option<Duration>,
}

/// Comparison of a count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`.
    Eq,
    /// `!=`.
    Ne,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
}

impl CmpOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// The formulas.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FormulaKind {
    /// `true` / `false`.
    Const(bool),
    /// An event atom.
    Atom(Atom),
    /// The name of a `let`.
    Ref(String),
    /// A unary operator with its optional interval.
    Unary(UnOp, Option<Interval>, Box<Formula>),
    /// A boolean connective.
    Bool(BoolOp, Box<Formula>, Box<Formula>),
    /// A binary temporal operator with its optional interval.
    Temporal(TempOp, Option<Interval>, Box<Formula>, Box<Formula>),
    /// `count[a, b](p) CMP n`: the number of events at or before this one,
    /// within the interval back in time, where `p` holds.
    Count {
        /// The window back in time (all of the past when absent).
        interval: Option<Interval>,
        /// What is counted.
        body: Box<Formula>,
        /// The comparison.
        cmp: CmpOp,
        /// The number compared with.
        n: u64,
    },
    /// `forall VAR in ATOM: BODY` / `exists VAR in ATOM: BODY`.
    Quant {
        /// `forall` (true) or `exists` (false).
        forall: bool,
        /// The event variable.
        var: String,
        /// The events the variable ranges over.
        binder: Atom,
        /// The body, evaluated at each such event.
        body: Box<Formula>,
    },
}

/// The kind an atom matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomKind {
    /// `any`: every kind.
    Any,
    /// One event kind.
    Kind(dtest_trace::Kind),
}

/// The actor argument of an atom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorPat {
    /// `_` or absent.
    Any,
    /// An actor name (identifier or string).
    Name(String),
}

/// The text argument of an atom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextPat {
    /// `_` or absent.
    Any,
    /// A string: the text equals it.
    Eq(String),
    /// A regex `/.../` (flag `i`): found anywhere in the text.
    Regex {
        /// The source between the slashes, as written.
        source: String,
        /// The `i` flag.
        icase: bool,
    },
}

/// `KIND(ACTOR, TEXT, FIELD = VALUE, ...)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Atom {
    /// The kind.
    pub kind: AtomKind,
    /// The actor.
    pub actor: ActorPat,
    /// The text.
    pub text: TextPat,
    /// Named arguments.
    pub fields: Vec<FieldTest>,
    /// Where the atom is.
    pub span: Span,
}

/// A field of an event, in a named argument or after `VAR.`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FieldRef {
    /// A named field (`status`, `ok`, `text`, `actor`, ...).
    Named(String),
    /// `$N`: group N of the atom's regex, found in the event's text.
    Capture(u32),
}

/// The right side of a named argument.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// `true` / `false`.
    Bool(bool),
    /// A bare word (`stderr`, `send`, `KILL`).
    Word(String),
    /// A string.
    Str(String),
    /// `VAR.FIELD`: the field of the event bound to a quantifier variable.
    Var(String, FieldRef),
}

/// `FIELD = VALUE` or `FIELD != VALUE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTest {
    /// The field.
    pub field: FieldRef,
    /// `!=` rather than `=`.
    pub negated: bool,
    /// The value.
    pub value: Value,
    /// Where the argument is.
    pub span: Span,
}
