//! `include/eta.h` against [`super::ALL`]: every `#define` of an `ETA_*` name or
//! `SOL_ETA` (and any enum constant of such a name) has the same value there, and
//! every constant of the module is in the header.

use std::collections::BTreeMap;

use super::ALL;

/// The header, as the C programs see it.
const HEADER: &str = include_str!("../../../include/eta.h");
/// This module's own source, to check that no constant bypasses [`ALL`].
const MODULE: &str = include_str!("../eta_h.rs");
/// The header has 29 such defines; fewer than this means the parser lost some.
const AT_LEAST: usize = 25;

/// Whether `name` is one of eta's names (the ones this module mirrors).
fn is_eta(name: &str) -> bool {
    name == "SOL_ETA" || name.starts_with("ETA_")
}

/// `text` without comments (a comment becomes a space; newlines are kept) and with
/// backslash-newline continuations joined.
fn clean(text: &str) -> String {
    let text = text.replace("\\\n", " ");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("/*") {
            let end = r.find("*/").expect("an unterminated /* comment");
            out.extend(r[..end].chars().filter(|&c| c == '\n'));
            out.push(' ');
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix("//") {
            rest = &r[r.find('\n').unwrap_or(r.len())..];
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// C tokens: identifiers, numbers, and the operators and punctuation a constant
/// expression or an enum uses. Any other character is an error, unless `any`
/// (declarations around an enum), which makes it a token of its own.
fn tokens(s: &str, any: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(s[start..i].to_string());
        } else if s[i..].starts_with("<<") || s[i..].starts_with(">>") {
            out.push(s[i..i + 2].to_string());
            i += 2;
        } else if b"()~!-+*/%&|^{},=;".contains(&c) {
            out.push((c as char).to_string());
            i += 1;
        } else if any {
            let c = s[i..].chars().next().unwrap();
            out.push(c.to_string());
            i += c.len_utf8();
        } else {
            return Err(format!("unexpected {:?} in {s:?}", c as char));
        }
    }
    Ok(out)
}

/// A C integer literal: decimal, hex or octal, with `u`/`l` suffixes.
fn number(t: &str) -> Option<i128> {
    let t = t.trim_end_matches(['u', 'U', 'l', 'L']);
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()
    } else if t.len() > 1 && t.starts_with('0') {
        i128::from_str_radix(&t[1..], 8).ok()
    } else {
        t.parse().ok()
    }
}

/// Evaluates a constant expression of integer literals, names already defined and
/// the operators `~ ! - + * / % << >> & ^ |` with C's precedence.
struct Expr<'a> {
    toks: &'a [String],
    pos: usize,
    known: &'a BTreeMap<String, i128>,
}

impl<'a> Expr<'a> {
    fn peek(&self) -> Option<&'a str> {
        self.toks.get(self.pos).map(String::as_str)
    }

    fn next(&mut self) -> Result<&'a str, String> {
        let t = self.toks.get(self.pos).ok_or("the expression ends early")?;
        self.pos += 1;
        Ok(t)
    }

    fn unary(&mut self) -> Result<i128, String> {
        match self.next()? {
            "-" => Ok(-self.unary()?),
            "+" => self.unary(),
            "~" => Ok(!self.unary()?),
            "!" => Ok(i128::from(self.unary()? == 0)),
            "(" => {
                let v = self.binary(0)?;
                match self.next()? {
                    ")" => Ok(v),
                    t => Err(format!("expected ), got {t:?}")),
                }
            }
            t => number(t)
                .or_else(|| self.known.get(t).copied())
                .ok_or_else(|| format!("{t:?} is neither a number nor a name defined before")),
        }
    }

    /// Operators binding at least as tightly as `min` (0 = `|`, 5 = `*`).
    fn binary(&mut self, min: u8) -> Result<i128, String> {
        let mut v = self.unary()?;
        loop {
            let prec = match self.peek() {
                Some("|") => 0,
                Some("^") => 1,
                Some("&") => 2,
                Some("<<" | ">>") => 3,
                Some("+" | "-") => 4,
                Some("*" | "/" | "%") => 5,
                _ => return Ok(v),
            };
            if prec < min {
                return Ok(v);
            }
            let op = self.next()?;
            let r = self.binary(prec + 1)?;
            v = match op {
                "|" => v | r,
                "^" => v ^ r,
                "&" => v & r,
                "<<" => v << r,
                ">>" => v >> r,
                "+" => v + r,
                "-" => v - r,
                "*" => v * r,
                "/" => v.checked_div(r).ok_or("division by zero")?,
                _ => v.checked_rem(r).ok_or("division by zero")?,
            };
        }
    }
}

fn eval(toks: &[String], known: &BTreeMap<String, i128>) -> Result<i128, String> {
    let mut e = Expr {
        toks,
        pos: 0,
        known,
    };
    let v = e.binary(0)?;
    match e.peek() {
        None => Ok(v),
        Some(t) => Err(format!("unexpected {t:?} after the value")),
    }
}

/// The values of eta's names in a C header: `#define`s (object-like, with a
/// constant expression) and enum constants. The include guard (`#ifndef X` then
/// `#define X`) is skipped; any other eta name without a value, or a function-like
/// one, is an error.
fn parse(header: &str) -> Result<BTreeMap<String, i128>, String> {
    let text = clean(header);
    let mut found = BTreeMap::new();
    let mut code = String::new();
    let mut guard: Option<String> = None;
    for line in text.lines() {
        let Some(directive) = line.trim_start().strip_prefix('#') else {
            code.push_str(line);
            code.push('\n');
            continue;
        };
        let directive = directive.trim_start();
        let after_ifndef = guard.take();
        if let Some(name) = directive.strip_prefix("ifndef") {
            guard = Some(name.trim().to_string());
            continue;
        }
        let Some(rest) = directive.strip_prefix("define") else {
            continue;
        };
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let (name, value) = rest.split_at(end);
        if !is_eta(name) {
            continue;
        }
        if value.starts_with('(') {
            return Err(format!("{name} is a function-like macro"));
        }
        let toks = tokens(value, false)?;
        if toks.is_empty() {
            if after_ifndef.as_deref() == Some(name) {
                continue;
            }
            return Err(format!("{name} is defined without a value"));
        }
        let v = eval(&toks, &found).map_err(|e| format!("{name}: {e}"))?;
        if found.insert(name.to_string(), v).is_some() {
            return Err(format!("{name} is defined twice"));
        }
    }
    enums(&tokens(&code, true)?, &mut found)?;
    Ok(found)
}

/// Adds the constants of every `enum [tag] { A [= expr], ... }` in `toks`.
fn enums(toks: &[String], found: &mut BTreeMap<String, i128>) -> Result<(), String> {
    let mut i = 0;
    while i < toks.len() {
        if toks[i] != "enum" {
            i += 1;
            continue;
        }
        let Some(open) = toks[i..].iter().position(|t| t == "{" || t == ";") else {
            break;
        };
        if toks[i + open] == ";" {
            i += open + 1;
            continue;
        }
        let body_start = i + open + 1;
        let close = toks[body_start..]
            .iter()
            .position(|t| t == "}")
            .ok_or("an enum without its }")?;
        let body = &toks[body_start..body_start + close];
        let mut next = 0i128;
        for entry in body.split(|t| t == ",").filter(|e| !e.is_empty()) {
            let name = &entry[0];
            let v = match entry.get(1).map(String::as_str) {
                None => next,
                Some("=") => eval(&entry[2..], found).map_err(|e| format!("{name}: {e}"))?,
                Some(t) => return Err(format!("enum constant {name} followed by {t:?}")),
            };
            next = v + 1;
            if is_eta(name) && found.insert(name.clone(), v).is_some() {
                return Err(format!("{name} is defined twice"));
            }
        }
        i = body_start + close + 1;
    }
    Ok(())
}

#[test]
fn every_eta_h_constant_has_the_same_value_here_and_back() {
    let header = parse(HEADER).unwrap_or_else(|e| panic!("include/eta.h: {e}"));
    assert!(
        header.len() >= AT_LEAST,
        "only {} ETA_*/SOL_ETA values found in include/eta.h: {header:?}",
        header.len()
    );
    assert!(header.contains_key("SOL_ETA") && header.contains_key("ETA_DDPMODE"));
    let ours: BTreeMap<String, i128> = ALL
        .iter()
        .map(|&(n, v)| (n.to_string(), i128::from(v)))
        .collect();
    assert_eq!(ours.len(), ALL.len(), "a name twice in eta_h::ALL");
    let mut wrong = Vec::new();
    for (name, v) in &header {
        match ours.get(name) {
            None => wrong.push(format!("{name} = {v} is in eta.h, not in eta_h.rs")),
            Some(o) if o != v => wrong.push(format!("{name}: eta.h {v}, eta_h.rs {o}")),
            Some(_) => {}
        }
    }
    for name in ours.keys().filter(|n| !header.contains_key(*n)) {
        wrong.push(format!("{name} is in eta_h.rs, not in eta.h"));
    }
    assert!(
        wrong.is_empty(),
        "eta.h and eta_h.rs differ:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_constant_of_the_module_is_in_the_list() {
    // The macro's two `pub const` lines; a constant written outside it would
    // escape the comparison with the header.
    assert_eq!(
        MODULE.matches("pub const ").count(),
        2,
        "a constant outside eta_h!"
    );
    let declared = MODULE
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.split_once(':')
                .is_some_and(|(n, _)| is_eta(n) && l.contains(" = "))
        })
        .count();
    assert_eq!(declared, ALL.len());
}

#[test]
fn the_parser_reads_every_form_a_header_may_use() {
    let h = "#ifndef ETA_H\n#define ETA_H\n\
             /* #define ETA_IN_COMMENT 1 */\n\
             #define ETA_DEC 12 /* twelve */\n\
             #  define ETA_HEX 0x1Fu // thirty-one\n\
             #define ETA_OCT 010\n\
             #define ETA_EXPR (ETA_DEC | (1 << 4)) - ~0\n\
             #define ETA_LONG \\\n    0xffffffffUL\n\
             #define OTHER 5\n\
             extern \"C\" { int eta_f(const char *s, struct x *p); }\n\
             enum eta_kind { ETA_A, ETA_B = ETA_HEX + 1, ETA_C, OTHER_D };\n\
             #endif\n";
    let got = parse(h).unwrap();
    let want: BTreeMap<String, i128> = [
        ("ETA_DEC", 12),
        ("ETA_HEX", 31),
        ("ETA_OCT", 8),
        ("ETA_EXPR", 29),
        ("ETA_LONG", 0xffff_ffff),
        ("ETA_A", 0),
        ("ETA_B", 32),
        ("ETA_C", 33),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    assert_eq!(got, want);
    assert!(parse("#define ETA_X\n").is_err(), "a valueless define");
    assert!(
        parse("#define ETA_F(x) (x)\n").is_err(),
        "a function-like macro"
    );
    assert!(
        parse("#define ETA_Y ETA_NOPE\n").is_err(),
        "an unknown name"
    );
    assert!(
        parse("#define ETA_Z 1\n#define ETA_Z 1\n").is_err(),
        "twice"
    );
}
