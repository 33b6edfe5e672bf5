//! The function table: names resolved once at compile time to an enum, with arity and
//! whether arguments are evaluated per input item (`where`, `select`, …).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Empty,
    Exists,
    All,
    AllTrue,
    AnyTrue,
    AllFalse,
    AnyFalse,
    SubsetOf,
    SupersetOf,
    Count,
    Distinct,
    IsDistinct,
    Where,
    Select,
    Repeat,
    OfType,
    Single,
    First,
    Last,
    Tail,
    Skip,
    Take,
    Intersect,
    Exclude,
    Union,
    Combine,
    Iif,
    ToBoolean,
    ConvertsToBoolean,
    ToInteger,
    ConvertsToInteger,
    ToDecimal,
    ConvertsToDecimal,
    ToString,
    ConvertsToString,
    ToDate,
    ConvertsToDate,
    ToDateTime,
    ConvertsToDateTime,
    ToTime,
    ConvertsToTime,
    ToQuantity,
    ConvertsToQuantity,
    ToLong,
    ConvertsToLong,
    IndexOf,
    LastIndexOf,
    Substring,
    StartsWith,
    EndsWith,
    Contains,
    Upper,
    Lower,
    Replace,
    Matches,
    MatchesFull,
    ReplaceMatches,
    Length,
    ToChars,
    Trim,
    Split,
    Join,
    Encode,
    Decode,
    Escape,
    Unescape,
    Abs,
    Ceiling,
    Exp,
    Floor,
    Ln,
    Log,
    Power,
    Round,
    Sqrt,
    Truncate,
    Children,
    Descendants,
    Trace,
    Now,
    Today,
    TimeOfDay,
    Aggregate,
    Sum,
    Min,
    Max,
    Avg,
    Sort,
    RepeatAll,
    Coalesce,
    YearOf,
    MonthOf,
    DayOf,
    HourOf,
    MinuteOf,
    SecondOf,
    MillisecondOf,
    TimezoneOffsetOf,
    DateOf,
    TimeOf,
    Not,
    Is,
    As,
    Type,
    LowBoundary,
    HighBoundary,
    Precision,
    Comparable,
    HasValue,
    GetValue,
    Extension,
    HasExtension,
    Resolve,
    MemberOf,
    ConformsTo,
    HtmlChecks,
}

/// How a function's arguments are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgMode {
    /// Once, against the enclosing focus.
    Value,
    /// Per input item, with `$this`/`$index` bound.
    Lambda,
    /// The argument is a type specifier.
    TypeArg,
}

use ArgMode::{Lambda, TypeArg, Value};
use Func::*;

const TABLE: &[(&str, Func, usize, usize, ArgMode)] = &[
    ("empty", Empty, 0, 0, Value),
    ("exists", Exists, 0, 1, Lambda),
    ("all", All, 1, 1, Lambda),
    ("allTrue", AllTrue, 0, 0, Value),
    ("anyTrue", AnyTrue, 0, 0, Value),
    ("allFalse", AllFalse, 0, 0, Value),
    ("anyFalse", AnyFalse, 0, 0, Value),
    ("subsetOf", SubsetOf, 1, 1, Value),
    ("supersetOf", SupersetOf, 1, 1, Value),
    ("count", Count, 0, 0, Value),
    ("distinct", Distinct, 0, 0, Value),
    ("isDistinct", IsDistinct, 0, 0, Value),
    ("where", Where, 1, 1, Lambda),
    ("select", Select, 1, 1, Lambda),
    ("repeat", Repeat, 1, 1, Lambda),
    ("ofType", OfType, 1, 1, TypeArg),
    ("single", Single, 0, 0, Value),
    ("first", First, 0, 0, Value),
    ("last", Last, 0, 0, Value),
    ("tail", Tail, 0, 0, Value),
    ("skip", Skip, 1, 1, Value),
    ("take", Take, 1, 1, Value),
    ("intersect", Intersect, 1, 1, Value),
    ("exclude", Exclude, 1, 1, Value),
    ("union", Union, 1, 1, Value),
    ("combine", Combine, 1, 1, Value),
    ("iif", Iif, 2, 3, Lambda),
    ("toBoolean", ToBoolean, 0, 0, Value),
    ("convertsToBoolean", ConvertsToBoolean, 0, 0, Value),
    ("toInteger", ToInteger, 0, 0, Value),
    ("convertsToInteger", ConvertsToInteger, 0, 0, Value),
    ("toDecimal", ToDecimal, 0, 0, Value),
    ("convertsToDecimal", ConvertsToDecimal, 0, 0, Value),
    ("toString", ToString, 0, 0, Value),
    ("convertsToString", ConvertsToString, 0, 0, Value),
    ("toDate", ToDate, 0, 0, Value),
    ("convertsToDate", ConvertsToDate, 0, 0, Value),
    ("toDateTime", ToDateTime, 0, 0, Value),
    ("convertsToDateTime", ConvertsToDateTime, 0, 0, Value),
    ("toTime", ToTime, 0, 0, Value),
    ("convertsToTime", ConvertsToTime, 0, 0, Value),
    ("toQuantity", ToQuantity, 0, 1, Value),
    ("convertsToQuantity", ConvertsToQuantity, 0, 1, Value),
    ("toLong", ToLong, 0, 0, Value),
    ("convertsToLong", ConvertsToLong, 0, 0, Value),
    ("indexOf", IndexOf, 1, 1, Value),
    ("lastIndexOf", LastIndexOf, 1, 1, Value),
    ("substring", Substring, 1, 2, Value),
    ("startsWith", StartsWith, 1, 1, Value),
    ("endsWith", EndsWith, 1, 1, Value),
    ("contains", Contains, 1, 1, Value),
    ("upper", Upper, 0, 0, Value),
    ("lower", Lower, 0, 0, Value),
    ("replace", Replace, 2, 2, Value),
    ("matches", Matches, 1, 1, Value),
    ("matchesFull", MatchesFull, 1, 1, Value),
    ("replaceMatches", ReplaceMatches, 2, 2, Value),
    ("length", Length, 0, 0, Value),
    ("toChars", ToChars, 0, 0, Value),
    ("trim", Trim, 0, 0, Value),
    ("split", Split, 1, 1, Value),
    ("join", Join, 0, 1, Value),
    ("encode", Encode, 1, 1, Value),
    ("decode", Decode, 1, 1, Value),
    ("escape", Escape, 1, 1, Value),
    ("unescape", Unescape, 1, 1, Value),
    ("abs", Abs, 0, 0, Value),
    ("ceiling", Ceiling, 0, 0, Value),
    ("exp", Exp, 0, 0, Value),
    ("floor", Floor, 0, 0, Value),
    ("ln", Ln, 0, 0, Value),
    ("log", Log, 1, 1, Value),
    ("power", Power, 1, 1, Value),
    ("round", Round, 0, 1, Value),
    ("sqrt", Sqrt, 0, 0, Value),
    ("truncate", Truncate, 0, 0, Value),
    ("children", Children, 0, 0, Value),
    ("descendants", Descendants, 0, 0, Value),
    ("trace", Trace, 1, 2, Lambda),
    ("now", Now, 0, 0, Value),
    ("today", Today, 0, 0, Value),
    ("timeOfDay", TimeOfDay, 0, 0, Value),
    ("aggregate", Aggregate, 1, 2, Lambda),
    ("sort", Sort, 0, usize::MAX, Lambda),
    ("sum", Sum, 0, 0, Value),
    ("min", Min, 0, 0, Value),
    ("max", Max, 0, 0, Value),
    ("avg", Avg, 0, 0, Value),
    ("repeatAll", RepeatAll, 1, 1, Lambda),
    ("coalesce", Coalesce, 1, usize::MAX, Value),
    ("yearOf", YearOf, 0, 0, Value),
    ("monthOf", MonthOf, 0, 0, Value),
    ("dayOf", DayOf, 0, 0, Value),
    ("hourOf", HourOf, 0, 0, Value),
    ("minuteOf", MinuteOf, 0, 0, Value),
    ("secondOf", SecondOf, 0, 0, Value),
    ("millisecondOf", MillisecondOf, 0, 0, Value),
    ("timezoneOffsetOf", TimezoneOffsetOf, 0, 0, Value),
    ("dateOf", DateOf, 0, 0, Value),
    ("timeOf", TimeOf, 0, 0, Value),
    ("not", Not, 0, 0, Value),
    ("is", Is, 1, 1, TypeArg),
    ("as", As, 1, 1, TypeArg),
    ("type", Type, 0, 0, Value),
    ("lowBoundary", LowBoundary, 0, 1, Value),
    ("highBoundary", HighBoundary, 0, 1, Value),
    ("precision", Precision, 0, 0, Value),
    ("comparable", Comparable, 1, 1, Value),
    ("hasValue", HasValue, 0, 0, Value),
    ("getValue", GetValue, 0, 0, Value),
    ("extension", Extension, 1, 1, Value),
    // Not in the FHIRPath text, but used by R4 core search parameters.
    ("hasExtension", HasExtension, 1, 1, Value),
    ("resolve", Resolve, 0, 0, Value),
    ("memberOf", MemberOf, 1, 1, Value),
    ("conformsTo", ConformsTo, 1, 1, Value),
    ("htmlChecks", HtmlChecks, 0, 0, Value),
    ("htmlchecks", HtmlChecks, 0, 0, Value),
];

pub(crate) fn lookup(name: &str) -> Option<(Func, usize, usize, ArgMode)> {
    TABLE.iter().find(|t| t.0 == name).map(|t| (t.1, t.2, t.3, t.4))
}

impl Func {
    /// Functions whose result depends on input order (rejected after `children()` /
    /// `descendants()` when ordered-function checking is on).
    pub(crate) fn needs_order(self) -> bool {
        matches!(self, Single | First | Last | Tail | Skip | Take)
    }

    /// String functions: their input must be able to be a string.
    pub(crate) fn wants_string_input(self) -> bool {
        matches!(
            self,
            StartsWith
                | EndsWith
                | Contains
                | Upper
                | Lower
                | Replace
                | Matches
                | MatchesFull
                | ReplaceMatches
                | Length
                | ToChars
                | Trim
                | Split
                | IndexOf
                | LastIndexOf
                | Substring
                | Encode
                | Decode
                | Escape
                | Unescape
        )
    }
}
