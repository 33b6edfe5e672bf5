//! Quantities and the part of UCUM needed to compare and combine them: prefixes, the common
//! base and derived units, customary units (`[lb_av]`, `[in_i]`), products, quotients,
//! exponents and annotations. Calendar durations (`week`, `days`) follow the FHIRPath rule:
//! weeks and below equal their UCUM counterparts, months and years compare only with
//! themselves.

use crate::decimal::Decimal;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct Quantity {
    pub value: Decimal,
    /// UCUM code, or a calendar keyword as written (`week`, `days`).
    pub unit: Arc<str>,
}

/// Singular calendar keyword for `week`/`weeks`/… (also when written quoted: `'month'`).
pub fn calendar_unit(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "year" | "years" => "year",
        "month" | "months" => "month",
        "week" | "weeks" => "week",
        "day" | "days" => "day",
        "hour" | "hours" => "hour",
        "minute" | "minutes" => "minute",
        "second" | "seconds" => "second",
        "millisecond" | "milliseconds" => "millisecond",
        _ => return None,
    })
}

/// The calendar unit a UCUM time code may stand for in date arithmetic; `mo` and `a` are
/// deliberately absent (their UCUM lengths are averages, not calendar steps).
pub fn ucum_time_as_calendar(unit: &str) -> Option<&'static str> {
    Some(match unit {
        "wk" => "week",
        "d" => "day",
        "h" => "hour",
        "min" => "minute",
        "s" => "second",
        "ms" => "millisecond",
        _ => return None,
    })
}

const DIMS: usize = 9;
type Dims = [i8; DIMS];

#[derive(Clone, Debug)]
struct Unit {
    factor: Decimal,
    dims: Dims,
}

// Dimension indexes: m, g, s, rad, K, C, cd, mol, arbitrary (IU).

/// (code, metric (takes prefixes), factor to base units, dimensions as (base, exponent)).
type Atom = (&'static str, bool, &'static str, &'static [(usize, i8)]);

const ATOMS: &[Atom] = &[
    ("m", true, "1", &[(0, 1)]),
    ("g", true, "1", &[(1, 1)]),
    ("s", true, "1", &[(2, 1)]),
    ("rad", true, "1", &[(3, 1)]),
    ("K", true, "1", &[(4, 1)]),
    ("C", true, "1", &[(5, 1)]),
    ("cd", true, "1", &[(6, 1)]),
    ("mol", true, "1", &[(7, 1)]),
    ("eq", true, "1", &[(7, 1)]),
    ("osm", true, "1", &[(7, 1)]),
    ("[IU]", true, "1", &[(8, 1)]),
    ("[iU]", true, "1", &[(8, 1)]),
    ("sr", true, "1", &[(3, 2)]),
    ("L", true, "0.001", &[(0, 3)]),
    ("l", true, "0.001", &[(0, 3)]),
    ("min", false, "60", &[(2, 1)]),
    ("h", false, "3600", &[(2, 1)]),
    ("d", false, "86400", &[(2, 1)]),
    ("wk", false, "604800", &[(2, 1)]),
    ("mo", false, "2629800", &[(2, 1)]),
    ("a", false, "31557600", &[(2, 1)]),
    ("Hz", true, "1", &[(2, -1)]),
    ("N", true, "1000", &[(1, 1), (0, 1), (2, -2)]),
    ("Pa", true, "1000", &[(1, 1), (0, -1), (2, -2)]),
    ("bar", true, "100000000", &[(1, 1), (0, -1), (2, -2)]),
    ("m[Hg]", true, "133322000", &[(1, 1), (0, -1), (2, -2)]),
    ("J", true, "1000", &[(1, 1), (0, 2), (2, -2)]),
    ("cal", true, "4184", &[(1, 1), (0, 2), (2, -2)]),
    ("W", true, "1000", &[(1, 1), (0, 2), (2, -3)]),
    ("A", true, "1", &[(5, 1), (2, -1)]),
    ("V", true, "1000", &[(1, 1), (0, 2), (2, -2), (5, -1)]),
    ("kat", true, "1", &[(7, 1), (2, -1)]),
    ("U", true, "0.0000000166666666666667", &[(7, 1), (2, -1)]),
    ("%", false, "0.01", &[]),
    ("[ppm]", false, "0.000001", &[]),
    ("[ppb]", false, "0.000000001", &[]),
    ("[in_i]", false, "0.0254", &[(0, 1)]),
    ("[ft_i]", false, "0.3048", &[(0, 1)]),
    ("[yd_i]", false, "0.9144", &[(0, 1)]),
    ("[mi_i]", false, "1609.344", &[(0, 1)]),
    ("[lb_av]", false, "453.59237", &[(1, 1)]),
    ("[oz_av]", false, "28.349523125", &[(1, 1)]),
    ("[gr]", false, "0.06479891", &[(1, 1)]),
    ("deg", false, "0.0174532925199433", &[(3, 1)]),
    ("[pi]", false, "3.1415926535897932", &[]),
];

const PREFIXES: &[(&str, i32)] = &[
    ("da", 1),
    ("Y", 24),
    ("Z", 21),
    ("E", 18),
    ("P", 15),
    ("T", 12),
    ("G", 9),
    ("M", 6),
    ("k", 3),
    ("h", 2),
    ("d", -1),
    ("c", -2),
    ("m", -3),
    ("u", -6),
    ("n", -9),
    ("p", -12),
    ("f", -15),
    ("a", -18),
    ("z", -21),
    ("y", -24),
];

fn pow10(e: i32) -> Decimal {
    if e >= 0 {
        Decimal::new(10i128.pow(e as u32), 0)
    } else {
        Decimal::new(1, (-e) as u32)
    }
}

fn atom(code: &str) -> Option<Unit> {
    let (_, _, f, d) = ATOMS.iter().find(|a| a.0 == code)?;
    let mut dims = [0; DIMS];
    for &(i, e) in d.iter() {
        dims[i] = e;
    }
    Some(Unit { factor: Decimal::parse(f)?, dims })
}

fn symbol(sym: &str) -> Option<Unit> {
    if let Some(u) = atom(sym) {
        return Some(u);
    }
    for (p, e) in PREFIXES {
        if let Some(rest) = sym.strip_prefix(p) {
            if let Some((_, true, ..)) = ATOMS.iter().find(|a| a.0 == rest) {
                let u = atom(rest)?;
                return Some(Unit { factor: u.factor.checked_mul(&pow10(*e))?, dims: u.dims });
            }
        }
    }
    None
}

fn unit_pow(u: &Unit, e: i32) -> Option<Unit> {
    let mut f = Decimal::from_i64(1);
    for _ in 0..e.unsigned_abs() {
        f = f.checked_mul(&u.factor)?;
    }
    if e < 0 {
        f = Decimal::from_i64(1).checked_div(&f)?;
    }
    let mut dims = u.dims;
    for d in dims.iter_mut() {
        *d = d.checked_mul(e as i8)?;
    }
    Some(Unit { factor: f, dims })
}

fn unit_mul(a: &Unit, b: &Unit, div: bool) -> Option<Unit> {
    let mut dims = a.dims;
    for (d, e) in dims.iter_mut().zip(b.dims) {
        *d = if div { d.checked_sub(e)? } else { d.checked_add(e)? };
    }
    let factor = if div { a.factor.checked_div(&b.factor)? } else { a.factor.checked_mul(&b.factor)? };
    Some(Unit { factor, dims })
}

struct UnitParser<'s> {
    s: &'s [u8],
    src: &'s str,
    i: usize,
}

impl<'s> UnitParser<'s> {
    fn term(&mut self) -> Option<Unit> {
        let mut acc = if self.peek() == Some(b'/') {
            self.i += 1;
            let c = self.component()?;
            unit_pow(&c, -1)?
        } else {
            self.component()?
        };
        while let Some(op) = self.peek() {
            match op {
                b'.' | b'/' => {
                    self.i += 1;
                    let c = self.component()?;
                    acc = unit_mul(&acc, &c, op == b'/')?;
                }
                _ => break,
            }
        }
        Some(acc)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn annotation(&mut self) -> Option<()> {
        if self.peek() == Some(b'{') {
            let end = self.src[self.i..].find('}')?;
            self.i += end + 1;
        }
        Some(())
    }

    /// An optional signed exponent. Bounded: real units use small powers, and a huge one
    /// would only make conversion slow.
    fn exponent(&mut self) -> Option<i32> {
        let start = self.i;
        if matches!(self.peek(), Some(b'+') | Some(b'-')) {
            self.i += 1;
        }
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        if self.i == start {
            return Some(1);
        }
        let e: i32 = self.src[start..self.i].parse().ok()?;
        (e.abs() <= 24).then_some(e)
    }

    fn component(&mut self) -> Option<Unit> {
        let one = Unit { factor: Decimal::from_i64(1), dims: [0; DIMS] };
        match self.peek()? {
            b'(' => {
                self.i += 1;
                let u = self.term()?;
                if self.peek() != Some(b')') {
                    return None;
                }
                self.i += 1;
                let e = self.exponent()?;
                unit_pow(&u, e)
            }
            b'{' => {
                self.annotation()?;
                Some(one)
            }
            b'0'..=b'9' => {
                let start = self.i;
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.i += 1;
                }
                let n = Decimal::parse(&self.src[start..self.i])?;
                if matches!(self.peek(), Some(b'*') | Some(b'^')) && &self.src[start..self.i] == "10" {
                    self.i += 1;
                    let e = self.exponent()?;
                    self.annotation()?;
                    return Some(Unit { factor: pow10(e), dims: [0; DIMS] });
                }
                self.annotation()?;
                Some(Unit { factor: n, dims: [0; DIMS] })
            }
            _ => {
                let start = self.i;
                let mut depth = 0;
                while let Some(c) = self.peek() {
                    match c {
                        b'[' => depth += 1,
                        b']' => depth -= 1,
                        b'.' | b'/' | b'(' | b')' | b'{' if depth == 0 => break,
                        b'0'..=b'9' | b'+' | b'-' if depth == 0 => break,
                        _ => {}
                    }
                    self.i += 1;
                }
                let sym = &self.src[start..self.i];
                let u = symbol(sym)?;
                let e = self.exponent()?;
                self.annotation()?;
                unit_pow(&u, e)
            }
        }
    }
}

fn parse_ucum(code: &str) -> Option<Unit> {
    if code.is_empty() {
        return None;
    }
    let mut p = UnitParser { s: code.as_bytes(), src: code, i: 0 };
    let u = p.term()?;
    (p.i == code.len()).then_some(u)
}

/// True when the string is a UCUM code this module understands.
pub fn is_known_ucum(code: &str) -> bool {
    parse_ucum(code).is_some()
}

impl Quantity {
    pub fn new(value: Decimal, unit: &str) -> Quantity {
        Quantity { value, unit: Arc::from(unit) }
    }

    /// The UCUM code this quantity's unit compares as (calendar weeks and below map to
    /// their UCUM codes; months and years have none).
    fn ucum_code(&self) -> Option<&str> {
        match calendar_unit(&self.unit) {
            Some("year") | Some("month") => None,
            Some("week") => Some("wk"),
            Some("day") => Some("d"),
            Some("hour") => Some("h"),
            Some("minute") => Some("min"),
            Some("second") => Some("s"),
            Some("millisecond") => Some("ms"),
            _ => Some(&self.unit),
        }
    }

    fn same_unit(&self, o: &Quantity) -> bool {
        if self.unit == o.unit {
            return true;
        }
        match (calendar_unit(&self.unit), calendar_unit(&o.unit)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }

    /// Both values in a common unit, or `None` when the units are not comparable.
    fn common(&self, o: &Quantity) -> Option<(Decimal, Decimal)> {
        if self.same_unit(o) {
            return Some((self.value, o.value));
        }
        let a = parse_ucum(self.ucum_code()?)?;
        let b = parse_ucum(o.ucum_code()?)?;
        if a.dims != b.dims {
            return None;
        }
        Some((self.value.checked_mul(&a.factor)?, o.value.checked_mul(&b.factor)?))
    }

    pub fn comparable(&self, o: &Quantity) -> bool {
        self.common(o).is_some()
    }

    pub fn partial_cmp_q(&self, o: &Quantity) -> Option<Ordering> {
        let (a, b) = self.common(o)?;
        Some(a.cmp_num(&b))
    }

    /// Equivalence: equal after rounding to the precision of the less precise operand.
    pub fn equivalent(&self, o: &Quantity) -> bool {
        match self.common(o) {
            Some((a, b)) => {
                let p = self.value.scale().min(o.value.scale());
                a.round(p).cmp_num(&b.round(p)) == Ordering::Equal
            }
            None => false,
        }
    }

    /// `o` expressed in this quantity's unit, for addition and subtraction.
    pub fn convert_to_unit_of(&self, o: &Quantity) -> Option<Decimal> {
        if self.same_unit(o) {
            return Some(o.value);
        }
        let a = parse_ucum(self.ucum_code()?)?;
        let b = parse_ucum(o.ucum_code()?)?;
        if a.dims != b.dims {
            return None;
        }
        o.value.checked_mul(&b.factor)?.checked_div(&a.factor)
    }

    pub fn mul(&self, o: &Quantity, div: bool) -> Option<Quantity> {
        let a = self.ucum_code()?;
        let b = o.ucum_code()?;
        let value = if div { self.value.checked_div(&o.value)? } else { self.value.checked_mul(&o.value)? };
        let unit = match (a, b, div) {
            (a, "1", _) => a.to_string(),
            ("1", b, false) => b.to_string(),
            ("1", b, true) => format!("/({b})"),
            (a, b, false) => format!("({a}).({b})"),
            (a, b, true) if a == b => "1".to_string(),
            (a, b, true) => format!("({a})/({b})"),
        };
        // Simplify when the combined unit reduces to a plain one we can name.
        let unit = simplify(&unit).unwrap_or(unit);
        Some(Quantity { value, unit: Arc::from(unit.as_str()) })
    }

    pub fn is_calendar(&self) -> bool {
        calendar_unit(&self.unit).is_some()
    }
}

/// Writes `(g)/(m)` as `g/m` when the unit strings have no operators of their own.
fn simplify(u: &str) -> Option<String> {
    let stripped: String = u.chars().filter(|c| *c != '(' && *c != ')').collect();
    let simple = |s: &str| !s.contains(['.', '/']);
    let parts: Vec<&str> = u.split(['.', '/']).collect();
    if parts.iter().all(|p| simple(p.trim_matches(['(', ')']))) && parse_ucum(&stripped).is_some() {
        Some(stripped)
    } else {
        None
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if calendar_unit(&self.unit).is_some() && !self.unit.starts_with('\'') {
            write!(f, "{} {}", self.value, self.unit)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(v: &str, u: &str) -> Quantity {
        Quantity::new(Decimal::parse(v).unwrap(), u)
    }

    #[test]
    fn conversions() {
        assert_eq!(q("4.0000", "g").partial_cmp_q(&q("4000.0", "mg")), Some(Ordering::Equal));
        assert!(q("4", "g").equivalent(&q("4040", "mg")));
        assert_eq!(q("7", "days").partial_cmp_q(&q("1", "week")), Some(Ordering::Equal));
        assert_eq!(q("1", "mo").partial_cmp_q(&q("1", "month")), None);
        assert_eq!(q("185", "[lb_av]").partial_cmp_q(&q("185", "kg")), Some(Ordering::Less));
        let m2 = q("2.0", "cm").mul(&q("2.0", "m"), false).unwrap();
        assert_eq!(m2.partial_cmp_q(&q("0.040", "m2")), Some(Ordering::Equal));
        assert!(is_known_ucum("10*3/uL"));
        assert!(is_known_ucum("mm[Hg]"));
        assert!(!q("1", "cm").comparable(&q("1", "s")));
    }
}

#[cfg(test)]
mod limits {
    use super::*;

    #[test]
    fn absurd_exponents_are_not_units() {
        assert!(!is_known_ucum("m777777777g"));
        assert!(!is_known_ucum("10*99"));
        assert!(is_known_ucum("10*6/L"));
        assert!(is_known_ucum("m-2"));
    }
}
