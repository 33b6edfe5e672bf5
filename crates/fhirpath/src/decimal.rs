//! Exact decimal numbers: an i128 mantissa and a base-10 scale, so `0.1 + 0.2 = 0.3` and a
//! literal keeps its written precision (`1.50` prints as `1.50`, and `precision()` is 2).

use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mant: i128,
    scale: u32,
    /// A zero reached from below (`lowBoundary` of a tiny negative prints `-0.0`).
    neg_zero: bool,
}

/// Digits kept after the point by division (beyond that the result is rounded).
const DIV_SCALE: u32 = 16;
const MAX_SCALE: u32 = 30;

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// `mant * 10^n`, or `None` past the i128 range.
fn scale_up(mant: i128, n: u32) -> Option<i128> {
    mant.checked_mul(pow10(n)?)
}

/// `mant / 10^n` truncated (zero once 10^n is out of range).
fn scale_down(mant: i128, n: u32) -> i128 {
    pow10(n).map_or(0, |p| mant / p)
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { mant: 0, scale: 0, neg_zero: false };

    pub fn new(mant: i128, scale: u32) -> Decimal {
        Decimal { mant, scale, neg_zero: false }
    }

    /// Zero with `scale` places that prints as `-0.…`.
    pub fn negative_zero(scale: u32) -> Decimal {
        Decimal { mant: 0, scale, neg_zero: true }
    }

    pub fn from_i64(v: i64) -> Decimal {
        Decimal { mant: v as i128, scale: 0, neg_zero: false }
    }

    pub fn mantissa(&self) -> i128 {
        self.mant
    }

    pub fn scale(&self) -> u32 {
        self.scale
    }

    /// Parses `-?digits(.digits)?` exactly (also accepts an exponent, as JSON may).
    pub fn parse(s: &str) -> Option<Decimal> {
        let s = s.trim();
        let (num, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match num.as_bytes().first()? {
            b'-' => (true, &num[1..]),
            b'+' => (false, &num[1..]),
            _ => (false, num),
        };
        let (int, frac) = match digits.find('.') {
            Some(i) => (&digits[..i], &digits[i + 1..]),
            None => (digits, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if digits.contains('.') && frac.is_empty() {
            return None;
        }
        let mut mant: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mant = mant.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        let mut scale = frac.len() as i32 - exp;
        while scale < 0 {
            mant = mant.checked_mul(10)?;
            scale += 1;
        }
        Some(Decimal { mant: if neg { -mant } else { mant }, scale: scale as u32, neg_zero: false })
    }

    pub fn from_f64(v: f64) -> Option<Decimal> {
        if !v.is_finite() {
            return None;
        }
        // 15 significant digits: what an f64 can carry faithfully, and it hides binary
        // noise such as 1.9999999999999998.
        let s = format!("{:.*e}", 14, v);
        let d = Decimal::parse(&s)?;
        Some(d.normalized())
    }

    pub fn to_f64(&self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Drops trailing zeros after the point.
    pub fn normalized(mut self) -> Decimal {
        while self.scale > 0 && self.mant % 10 == 0 {
            self.mant /= 10;
            self.scale -= 1;
        }
        self
    }

    fn rescale(&self, scale: u32) -> Option<i128> {
        if scale >= self.scale {
            scale_up(self.mant, scale - self.scale)
        } else {
            Some(scale_down(self.mant, self.scale - scale))
        }
    }

    fn align(a: &Decimal, b: &Decimal) -> Option<(i128, i128, u32)> {
        let s = a.scale.max(b.scale);
        Some((a.rescale(s)?, b.rescale(s)?, s))
    }

    pub fn checked_add(&self, o: &Decimal) -> Option<Decimal> {
        let (a, b, s) = Self::align(self, o)?;
        Some(Decimal { mant: a.checked_add(b)?, scale: s, neg_zero: false })
    }

    pub fn checked_sub(&self, o: &Decimal) -> Option<Decimal> {
        let (a, b, s) = Self::align(self, o)?;
        Some(Decimal { mant: a.checked_sub(b)?, scale: s, neg_zero: false })
    }

    pub fn checked_mul(&self, o: &Decimal) -> Option<Decimal> {
        let mut r = Decimal { mant: self.mant.checked_mul(o.mant)?, scale: self.scale + o.scale, neg_zero: false };
        while r.scale > MAX_SCALE {
            r = r.round(r.scale - 1);
        }
        Some(r)
    }

    /// Division rounded to `DIV_SCALE` digits, trailing zeros removed; `None` on zero.
    pub fn checked_div(&self, o: &Decimal) -> Option<Decimal> {
        if o.mant == 0 {
            return None;
        }
        // a/10^sa ÷ b/10^sb = (a·10^(k)) / b / 10^(sa - sb + k)
        let target = DIV_SCALE + 1;
        let k = (target + o.scale).saturating_sub(self.scale);
        let num = scale_up(self.mant, k)?;
        let q = num / o.mant;
        let r = Decimal { mant: q, scale: self.scale + k - o.scale, neg_zero: false };
        Some(r.round(DIV_SCALE).normalized())
    }

    /// Integer division (truncated); `None` on zero.
    pub fn div_trunc(&self, o: &Decimal) -> Option<i128> {
        if o.mant == 0 {
            return None;
        }
        let (a, b, _) = Self::align(self, o)?;
        Some(a / b)
    }

    pub fn checked_rem(&self, o: &Decimal) -> Option<Decimal> {
        if o.mant == 0 {
            return None;
        }
        let (a, b, s) = Self::align(self, o)?;
        Some(Decimal { mant: a % b, scale: s, neg_zero: false })
    }

    pub fn neg(&self) -> Decimal {
        Decimal { mant: -self.mant, scale: self.scale, neg_zero: false }
    }

    pub fn abs(&self) -> Decimal {
        Decimal { mant: self.mant.abs(), scale: self.scale, neg_zero: false }
    }

    pub fn is_zero(&self) -> bool {
        self.mant == 0
    }

    /// Round half away from zero to `digits` places.
    pub fn round(&self, digits: u32) -> Decimal {
        if digits >= self.scale {
            return self.widen(digits);
        }
        let Some(f) = pow10(self.scale - digits) else {
            return Decimal { mant: 0, scale: digits, neg_zero: false };
        };
        let q = self.mant / f;
        let r = self.mant % f;
        // |r| < f <= 10^38, so doubling fits in i128.
        let adj = if r.abs() >= f - r.abs() { self.mant.signum() } else { 0 };
        Decimal { mant: q + adj, scale: digits, neg_zero: false }
    }

    /// Towards zero, to `digits` places.
    pub fn truncate(&self, digits: u32) -> Decimal {
        if digits >= self.scale {
            return self.widen(digits);
        }
        Decimal { mant: scale_down(self.mant, self.scale - digits), scale: digits, neg_zero: false }
    }

    /// The same value written with more digits after the point (unchanged if that cannot
    /// be represented).
    fn widen(&self, digits: u32) -> Decimal {
        match scale_up(self.mant, digits - self.scale) {
            Some(mant) => Decimal { mant, scale: digits, neg_zero: false },
            None => *self,
        }
    }

    pub fn floor(&self, digits: u32) -> Decimal {
        let t = self.truncate(digits);
        if t.cmp_num(self) == Ordering::Greater {
            Decimal { mant: t.mant - 1, scale: digits, neg_zero: false }
        } else {
            t
        }
    }

    pub fn ceil(&self, digits: u32) -> Decimal {
        let t = self.truncate(digits);
        if t.cmp_num(self) == Ordering::Less {
            Decimal { mant: t.mant + 1, scale: digits, neg_zero: false }
        } else {
            t
        }
    }

    /// Numeric comparison, ignoring the written precision.
    pub fn cmp_num(&self, o: &Decimal) -> Ordering {
        match Self::align(self, o) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.to_f64().partial_cmp(&o.to_f64()).unwrap_or(Ordering::Equal),
        }
    }

    /// As an integer when it has no fractional part.
    pub fn to_integer(&self) -> Option<i64> {
        let n = self.normalized();
        if n.scale == 0 {
            i64::try_from(n.mant).ok()
        } else {
            None
        }
    }

    pub fn trunc_i64(&self) -> Option<i64> {
        i64::try_from(self.truncate(0).mant).ok()
    }
}

impl PartialEq for Decimal {
    fn eq(&self, o: &Decimal) -> bool {
        self.cmp_num(o) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let neg = self.mant < 0;
        let digits = self.mant.unsigned_abs().to_string();
        let scale = self.scale as usize;
        if neg || (self.neg_zero && self.mant == 0) {
            f.write_str("-")?;
        }
        if scale == 0 {
            return f.write_str(&digits);
        }
        if digits.len() <= scale {
            f.write_str("0.")?;
            for _ in 0..scale - digits.len() {
                f.write_str("0")?;
            }
            f.write_str(&digits)
        } else {
            let (i, d) = digits.split_at(digits.len() - scale);
            write!(f, "{i}.{d}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap()
    }

    #[test]
    fn exact_arithmetic() {
        assert_eq!(d("0.1").checked_add(&d("0.2")).unwrap().to_string(), "0.3");
        assert_eq!(d("1.2").checked_mul(&d("1.8")).unwrap().to_string(), "2.16");
        assert_eq!(d("1").checked_div(&d("2")).unwrap().to_string(), "0.5");
        assert_eq!(d("1.2").checked_div(&d("1.8")).unwrap().round(2).to_string(), "0.67");
        assert_eq!(d("2.2").checked_rem(&d("1.8")).unwrap(), d("0.4"));
        assert_eq!(d("-0.1").to_string(), "-0.1");
        assert_eq!(d("1.58700").to_string(), "1.58700");
        assert_eq!(d("1e2").to_string(), "100");
    }

    #[test]
    fn rounding() {
        assert_eq!(d("3.14159").round(3).to_string(), "3.142");
        assert_eq!(d("-1.5").round(0).to_string(), "-2");
        assert_eq!(d("-2.1").floor(0).to_string(), "-3");
        assert_eq!(d("-1.1").ceil(0).to_string(), "-1");
    }
}
