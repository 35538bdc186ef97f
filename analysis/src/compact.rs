//! The compact stored form of a ballot: how the form app keeps tens of thousands of
//! ballots in a browser's few megabytes of local storage.
//!
//! One ballot is one line: a JSON array, answers by position in form order rather than by
//! name, and an appraisal grid as one character per cell (the option's position on its
//! scale, `.` for an empty cell). The form and the device are stored once beside the
//! lines, so a line means nothing without them; [`decode`] checks the result against the
//! form.
//!
//! ```text
//! ["~G04ougZ8TdKpeB9d1YmHsg",0,0,1763782221123,271000,"often","window online",12,
//!  "4433425..9",null,null,"服务很好"]
//! ```
//!
//! Fields: the id (a canonical UUID as `~` and 22 characters of base64url, any other id as
//! written, with a `!` in front if it begins with `~` or `!`), the group and the language (as positions in the form's lists, or as text if
//! the form does not list them), the start time (ms since the epoch), the duration (ms),
//! and one value per item: `null` when unanswered.
//!
//! Browsers count local storage in UTF-16 units (Chromium allows 5,242,880 per site), so
//! every character saved here is room for more ballots.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::ballot::{Answer, Ballot, Grid};
use crate::error::cut;
use crate::form::{Form, ItemKind};
use crate::time::{format_rfc3339, parse_rfc3339};

const HEAD: usize = 5;
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// One character per scale position; scales with more options store a grid as an object.
const CELL_CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const EMPTY_CELL: char = '.';
/// The last millisecond of the year 9999: stored times beyond it are damage, not times.
const LATEST_MS: i64 = 253_402_300_799_999;

/// Encodes a ballot of `form` as one line (no line breaks inside).
///
/// Times must be RFC 3339; they are stored as milliseconds and come back in the UTC
/// `Date.toISOString()` shape, which is what the app writes in the first place.
pub fn encode(form: &Form, b: &Ballot) -> Result<String, String> {
    let start = parse_rfc3339(&b.started_at)
        .ok_or_else(|| format!("started_at {:?} is not RFC 3339", b.started_at))?;
    let end = parse_rfc3339(&b.submitted_at)
        .ok_or_else(|| format!("submitted_at {:?} is not RFC 3339", b.submitted_at))?;
    // What decode accepts, so that a stored line always reads back.
    if !(0..=LATEST_MS).contains(&start) || !(0..=LATEST_MS).contains(&end) {
        return Err(format!(
            "started_at {:?} or submitted_at {:?} is not between 1970 and 9999",
            b.started_at, b.submitted_at
        ));
    }
    let position_or_text =
        |pos: Option<usize>, text: &str| pos.map_or_else(|| json!(text), |i| json!(i));
    let mut row = vec![
        json!(pack_id(&b.id)),
        position_or_text(form.groups.iter().position(|g| g.id == b.group), &b.group),
        position_or_text(form.languages.iter().position(|l| *l == b.lang), &b.lang),
        json!(start),
        json!(end - start),
    ];
    for item in form.items() {
        let v = match (b.answers.get(&item.id), &item.kind) {
            (None, _) => Value::Null,
            (
                Some(Answer::Grid(g)),
                ItemKind::Appraisal {
                    scale,
                    units,
                    criteria,
                },
            ) => {
                let codes = item.codes(form);
                if codes.len() > CELL_CHARS.len() {
                    serde_json::to_value(g).map_err(|e| e.to_string())?
                } else {
                    let mut cells = String::with_capacity(units.len() * criteria.len());
                    for u in units {
                        for c in criteria {
                            let ch = match g.get(u).and_then(|row| row.get(&c.id)) {
                                None => EMPTY_CELL,
                                Some(code) => {
                                    let i =
                                        codes.iter().position(|x| x == code).ok_or_else(|| {
                                            format!(
                                                "{}.{u}.{}: {code:?} is not on scale {scale}",
                                                item.id, c.id
                                            )
                                        })?;
                                    CELL_CHARS[i] as char
                                }
                            };
                            cells.push(ch);
                        }
                    }
                    Value::String(cells)
                }
            }
            (Some(Answer::Str(s)), _) => json!(s),
            (Some(Answer::Number(x)), _) => json!(x),
            (Some(Answer::Codes(c)), _) => json!(c.join(" ")),
            (Some(Answer::Grid(_)), kind) => {
                return Err(format!(
                    "{}: a grid answer for a {} item",
                    item.id,
                    kind.type_name()
                ))
            }
        };
        row.push(v);
    }
    Ok(Value::Array(row).to_string())
}

/// Decodes a line written by [`encode`] for the same form, taken on `device`, and checks
/// the ballot.
pub fn decode(form: &Form, device: &str, line: &str) -> Result<Ballot, String> {
    let row: Vec<Value> =
        serde_json::from_str(line).map_err(|e| format!("not a stored ballot: {e}"))?;
    let items: Vec<_> = form.items().collect();
    if row.len() != HEAD + items.len() {
        return Err(format!(
            "has {} fields, expected {} for form {:?} version {:?}",
            row.len(),
            HEAD + items.len(),
            form.id,
            form.version
        ));
    }
    let listed = |v: &Value, list: Vec<&String>, what: &str| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|i| list.get(i as usize).map(|s| s.to_string()))
            .ok_or_else(|| format!("{what} {n} is not a position in the form's list")),
        other => Err(format!(
            "{what} is {}, expected text or a position",
            cut(&other.to_string())
        )),
    };
    let id = row[0]
        .as_str()
        .ok_or_else(|| format!("the id is {}, expected text", cut(&row[0].to_string())))?;
    let start = row[3]
        .as_i64()
        .filter(|t| (0..=LATEST_MS).contains(t))
        .ok_or_else(|| {
            format!(
                "the start time {} is not a time in ms from 1970 to 9999",
                cut(&row[3].to_string())
            )
        })?;
    let duration = row[4]
        .as_i64()
        .filter(|d| (-start..=LATEST_MS - start).contains(d))
        .ok_or_else(|| {
            format!(
                "the duration {} is not a number of ms ending between 1970 and 9999",
                cut(&row[4].to_string())
            )
        })?;
    let mut b = Ballot {
        id: unpack_id(id),
        form_id: form.id.clone(),
        form_version: form.version.clone(),
        device_id: device.to_string(),
        group: listed(
            &row[1],
            form.groups.iter().map(|g| &g.id).collect(),
            "the group",
        )?,
        lang: listed(&row[2], form.languages.iter().collect(), "the language")?,
        started_at: format_rfc3339(start),
        submitted_at: format_rfc3339(start + duration),
        answers: BTreeMap::new(),
        access_code: None,
    };
    for (item, v) in items.iter().zip(&row[HEAD..]) {
        let answer = match (v, &item.kind) {
            (Value::Null, _) => continue,
            (
                Value::String(cells),
                ItemKind::Appraisal {
                    scale,
                    units,
                    criteria,
                },
            ) => {
                let codes = item.codes(form);
                if cells.len() != units.len() * criteria.len() {
                    return Err(format!(
                        "{}: {} cells, expected {}",
                        item.id,
                        cells.len(),
                        units.len() * criteria.len()
                    ));
                }
                let mut g = Grid::new();
                for (k, ch) in cells.bytes().enumerate() {
                    if ch == EMPTY_CELL as u8 {
                        continue;
                    }
                    let code = CELL_CHARS
                        .iter()
                        .position(|c| *c == ch)
                        .and_then(|i| codes.get(i))
                        .ok_or_else(|| {
                            format!(
                                "{}: cell {} is {:?}, not a position on scale {scale}",
                                item.id,
                                k + 1,
                                ch as char
                            )
                        })?;
                    let (u, c) = (&units[k / criteria.len()], &criteria[k % criteria.len()].id);
                    g.entry(u.clone())
                        .or_default()
                        .insert(c.clone(), code.to_string());
                }
                Answer::Grid(g)
            }
            (Value::Object(_), ItemKind::Appraisal { .. }) => Answer::Grid(
                serde_json::from_value(v.clone()).map_err(|e| format!("{}: {e}", item.id))?,
            ),
            (Value::String(s), ItemKind::Multi { .. }) => {
                Answer::Codes(s.split(' ').map(str::to_string).collect())
            }
            (Value::String(s), _) => Answer::Str(s.clone()),
            (Value::Number(n), ItemKind::Number { .. }) => {
                Answer::Number(n.as_f64().ok_or("a number out of range")?)
            }
            (other, kind) => {
                return Err(format!(
                    "{}: {} does not fit a {} item",
                    item.id,
                    cut(&other.to_string()),
                    kind.type_name()
                ))
            }
        };
        b.answers.insert(item.id.clone(), answer);
    }
    if let Some(p) = b.problems(form).into_iter().next() {
        return Err(p.to_string());
    }
    Ok(b)
}

/// A canonical lowercase UUID as `~` + 22 base64url characters; anything else unchanged.
fn pack_id(id: &str) -> String {
    let hex: String = id.split('-').collect();
    let canonical = id.len() == 36
        && [8, 13, 18, 23].iter().all(|&i| id.as_bytes()[i] == b'-')
        && hex.len() == 32
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c));
    if !canonical {
        // Keep ids that look packed (or escaped) apart from packed ones.
        return if id.starts_with(['~', '!']) {
            format!("!{id}")
        } else {
            id.to_string()
        };
    }
    let bytes: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
        .collect();
    let mut out = String::from("~");
    let mut bits = 0u32;
    let mut n = 0;
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        n += 8;
        while n >= 6 {
            n -= 6;
            out.push(B64[((bits >> n) & 63) as usize] as char);
        }
    }
    if n > 0 {
        out.push(B64[((bits << (6 - n)) & 63) as usize] as char);
    }
    out
}

/// Undoes [`pack_id`].
fn unpack_id(s: &str) -> String {
    if let Some(escaped) = s.strip_prefix('!') {
        return escaped.to_string();
    }
    let Some(packed) = s.strip_prefix('~').filter(|p| p.len() == 22) else {
        return s.to_string();
    };
    let mut bytes = Vec::with_capacity(16);
    let mut bits = 0u32;
    let mut n = 0;
    for c in packed.bytes() {
        let Some(v) = B64.iter().position(|x| *x == c) else {
            return s.to_string();
        };
        bits = (bits << 6) | v as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            bytes.push((bits >> n) as u8);
        }
    }
    let hex: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(form: &Form) -> Ballot {
        let mut answers = BTreeMap::new();
        answers.insert("contact".into(), Answer::Str("often".into()));
        answers.insert(
            "channels".into(),
            Answer::Codes(vec!["online".into(), "window".into()]),
        );
        answers.insert("times".into(), Answer::Number(12.0));
        let mut g = Grid::new();
        for u in &form.units {
            g.entry(u.id.clone())
                .or_default()
                .insert("overall".into(), "4".into());
            g.entry(u.id.clone())
                .or_default()
                .insert("attitude".into(), "9".into());
        }
        g.get_mut("gaj").unwrap().remove("attitude");
        answers.insert("appr".into(), Answer::Grid(g));
        answers.insert(
            "suggestion".into(),
            Answer::Str("窗口\"排队\"太久,\n建议增加\\自助机".into()),
        );
        Ballot {
            id: "1b4e28ba-2fa1-41d2-883f-0016d3cca427".into(),
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            device_id: "kiosk-7".into(),
            group: "npc".into(),
            lang: "en".into(),
            started_at: "2026-11-22T01:30:00.250Z".into(),
            submitted_at: "2026-11-22T01:34:31.000Z".into(),
            answers,
            access_code: None,
        }
    }

    #[test]
    fn round_trip_is_exact_and_one_line() {
        let form = Form::default_form();
        let b = sample(&form);
        let line = encode(&form, &b).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(decode(&form, "kiosk-7", &line).unwrap(), b);
        assert!(line.starts_with("[\"~"), "the UUID is packed: {line}");
    }

    #[test]
    fn a_default_form_ballot_is_small() {
        // The app's capacity rests on this: a full 40-cell grid plus the usual answers
        // in under 200 characters (the same ballot as JSON takes over three times as much).
        let form = Form::default_form();
        let mut b = sample(&form);
        b.answers.remove("suggestion");
        let mut g = Grid::new();
        for u in &form.units {
            for c in ["attitude", "efficiency", "lawful", "integrity", "overall"] {
                g.entry(u.id.clone())
                    .or_default()
                    .insert(c.into(), "4".into());
            }
        }
        b.answers.insert("appr".into(), Answer::Grid(g));
        let line = encode(&form, &b).unwrap();
        assert!(line.len() < 140, "{} chars: {line}", line.len());
        let json = serde_json::to_string(&b).unwrap().len();
        assert!(
            json > 3 * line.len(),
            "JSON {json} vs compact {}",
            line.len()
        );
    }

    #[test]
    fn damaged_lines_are_refused_with_a_reason() {
        let form = Form::default_form();
        let line = encode(&form, &sample(&form)).unwrap();
        let group_at = line
            .find(",2,1,")
            .expect("npc is the third group, en the second language");
        let aliens = format!("{},\"aliens\"{}", &line[..group_at], &line[group_at + 2..]);
        assert!(decode(&form, "k", &aliens).unwrap_err().contains("aliens"));
        let far = format!("{},9{}", &line[..group_at], &line[group_at + 2..]);
        assert!(
            decode(&form, "k", &far)
                .unwrap_err()
                .contains("not a position"),
            "{far}"
        );
        assert!(decode(&form, "k", &line[..line.len() - 1])
            .unwrap_err()
            .starts_with("not a stored ballot"));
        let e = decode(&form, "k", &line.replacen("[", "[\"x\",", 1)).unwrap_err();
        assert!(e.contains("fields, expected"), "{e}");
    }

    /// Times far outside any calendar overflowed the end time; a stored line is damage
    /// to report, never a reason to panic.
    #[test]
    fn impossible_times_are_refused_not_overflowed() {
        let form = Form::default_form();
        let line = encode(&form, &sample(&form)).unwrap();
        let row: Vec<Value> = serde_json::from_str(&line).unwrap();
        for (start, duration) in [
            (json!(i64::MAX), json!(1)),
            (json!(0), json!(i64::MAX)),
            (json!(-5), json!(0)),
            (json!(1e300), json!(0)),
            (json!(5), json!(-6)),
        ] {
            let mut bad = row.clone();
            bad[3] = start;
            bad[4] = duration;
            let e = decode(&form, "k", &Value::Array(bad).to_string()).unwrap_err();
            assert!(
                e.contains("from 1970 to 9999") || e.contains("ending between 1970 and 9999"),
                "{e}"
            );
        }
    }

    #[test]
    fn ids_pack_and_unpack() {
        for id in [
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427",
            "00000000-0000-4000-8000-000000000000",
            "ffffffff-ffff-4fff-bfff-ffffffffffff",
        ] {
            let p = pack_id(id);
            assert_eq!(p.len(), 23, "{p}");
            assert_eq!(unpack_id(&p), id);
        }
        for other in [
            "paper-0001",
            "1B4E28BA-2FA1-41D2-883F-0016D3CCA427",
            "~short",
            "~AAAAAAAAAAAAAAAAAAAAAA",
            "!x",
            "!~y",
        ] {
            assert_eq!(unpack_id(&pack_id(other)), other);
        }
    }
}
