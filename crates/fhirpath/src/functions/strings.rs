//! String functions.

use super::b;
use super::codec::{decode, encode, escape, unescape};
use crate::compile::Node as CNode;
use crate::error::Result;
use crate::eval::{Env, Items, Scope};
use crate::func::Func;
use crate::item::Item;
use crate::regex_cache::{replace_all, with_regex, Mode};
use regex_automata::Input;

impl<'a> Env<'a> {
    pub(super) fn string_fn(
        &self,
        f: Func,
        items: &[Item<'a>],
        args: &[CNode],
        sc: Scope<'_, 'a>,
        pos: usize,
    ) -> Result<Items<'a>> {
        use Func::*;
        let Some(s) = Self::input_str(items, pos)? else {
            return Ok(vec![]);
        };
        // Strings built from the input are charged before they are built where their size
        // is known (replace, replaceMatches), else when built (at most a few times `s`).
        let st = |v: String| {
            self.budget.bytes(v.len(), pos)?;
            Ok(vec![Item::string(&v)])
        };
        // Functions whose first argument is required: an empty argument gives empty.
        let a0 = if matches!(f, Upper | Lower | Length | ToChars | Trim | Substring) {
            None
        } else {
            self.arg_str(args, 0, sc, pos)?
        };
        if a0.is_none() && !matches!(f, Upper | Lower | Length | ToChars | Trim | Substring) {
            return Ok(vec![]);
        }
        let a: String = a0.as_deref().unwrap_or("").to_string();
        // Every string function scans its input (and argument) at least once.
        self.budget.bytes(s.len() + a.len(), pos)?;
        match f {
            IndexOf => Ok(vec![Item::Integer(match s.find(&a) {
                Some(byte) => s[..byte].chars().count() as i64,
                None => -1,
            })]),
            LastIndexOf => Ok(vec![Item::Integer(match s.rfind(&a) {
                Some(byte) => s[..byte].chars().count() as i64,
                None => -1,
            })]),
            Substring => {
                let Some(start) = self.arg_int(args, 0, sc, pos)? else {
                    return Ok(vec![]);
                };
                let chars: Vec<char> = s.chars().collect();
                if start < 0 || start as usize >= chars.len() {
                    return Ok(vec![]);
                }
                let len = match args.get(1) {
                    Some(_) => match self.arg_int(args, 1, sc, pos)? {
                        Some(l) => l.max(0) as usize,
                        None => chars.len(),
                    },
                    None => chars.len(),
                };
                let start = start as usize;
                let end = start.saturating_add(len).min(chars.len());
                st(chars[start..end].iter().collect())
            }
            StartsWith => b(s.starts_with(&a)),
            EndsWith => b(s.ends_with(&a)),
            Contains => b(s.contains(&a)),
            Upper => st(s.to_uppercase()),
            Lower => st(s.to_lowercase()),
            Length => Ok(vec![Item::Integer(s.chars().count() as i64)]),
            ToChars => {
                self.budget.items(s.chars().count(), pos)?;
                Ok(s.chars().map(|c| Item::string(c.encode_utf8(&mut [0; 4]))).collect())
            }
            Trim => st(s.trim().to_string()),
            Split => {
                let parts: Items<'a> = s.split(a.as_str()).map(Item::string).collect();
                self.budget.items(parts.len(), pos)?;
                Ok(parts)
            }
            Replace => {
                let Some(to) = self.arg_str(args, 1, sc, pos)? else {
                    return Ok(vec![]);
                };
                let hits = if a.is_empty() { s.chars().count() + 1 } else { s.matches(a.as_str()).count() };
                self.budget.bytes(s.len().saturating_add(hits.saturating_mul(to.len())), pos)?;
                st(s.replace(&a, &to[..]))
            }
            // Compiled regexes are cached process-wide, bounded in bytes (see `regex_cache`).
            Matches => b(with_regex("matches", &a, Mode::Find, pos, |re, c| re.is_match_with(c, &Input::new(&s)))?),
            MatchesFull => {
                b(with_regex("matchesFull", &a, Mode::Full, pos, |re, c| re.is_match_with(c, &Input::new(&s)))?)
            }
            ReplaceMatches => {
                let Some(to) = self.arg_str(args, 1, sc, pos)? else {
                    return Ok(vec![]);
                };
                if a.is_empty() {
                    return st(s);
                }
                // The output's size is known only while it is built: the budget's bytes left
                // bound it (a pattern matching everywhere, a replacement naming groups).
                let room = self.budget.bytes_left();
                match with_regex("replaceMatches", &a, Mode::Replace, pos, |re, c| replace_all(re, c, &s, &to, room))? {
                    Some(v) => st(v),
                    None => Err(self.budget.exhausted(pos)),
                }
            }
            Encode | Decode | Escape | Unescape => {
                let v = match f {
                    Encode => encode(&s, &a),
                    Decode => decode(&s, &a),
                    Escape => escape(&s, &a),
                    _ => unescape(&s, &a),
                };
                match v {
                    Some(v) => st(v),
                    None => Ok(vec![]),
                }
            }
            _ => unreachable!(),
        }
    }
}
