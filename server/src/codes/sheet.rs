//! The code sheet: A4 pages of tear-off slips (two across, four down, dashed cut lines),
//! one code per slip with the form's title, the group's name, the code in large
//! monospaced letters, short instructions, and a QR code of the form's address with the
//! group and the code filled in; and the same codes as CSV (group, code, slip).

use analysis::access_code::AccessCode;
use krilla::color::{luma, rgb};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke, StrokeDash};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla::Document;
use qrcode::{Color, EcLevel, QrCode};

use super::font::SheetFonts;

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const COLUMNS: usize = 2;
const ROWS: usize = 4;
const SLIP_W: f32 = PAGE_W / COLUMNS as f32;
const SLIP_H: f32 = PAGE_H / ROWS as f32;
/// Inner margin of a slip.
const PAD: f32 = 20.0;
/// The QR code's side, quiet zone included.
const QR_SIDE: f32 = 104.0;

/// What the slips say.
pub struct Sheet<'a> {
    /// The form's title (its first language, Chinese for the built-in form).
    pub title: &'a str,
    /// The group's id, as in ballots and the QR code.
    pub group: &'a str,
    /// The group's name as people read it.
    pub group_label: &'a str,
    /// The address the form is served at (`http://192.168.1.20:8080/`).
    pub public_url: &'a str,
    pub batch: i64,
    pub codes: &'a [AccessCode],
}

/// The address a slip's QR code holds: the form, with its group and code filled in.
pub fn code_url(public_url: &str, group: &str, code: &AccessCode) -> String {
    let join = if public_url.contains('?') { '&' } else { '?' };
    format!(
        "{public_url}{join}group={}&code={}",
        escape(group),
        code.as_str()
    )
}

/// Refuses a public address too long for the slips' QR codes, before any code is issued.
pub fn check_url(public_url: &str, group: &str) -> Result<(), String> {
    let sample = AccessCode::from_random([0; analysis::access_code::RANDOM_CHARS]);
    QrCode::with_error_correction_level(code_url(public_url, group, &sample).as_bytes(), EcLevel::M)
        .map(drop)
        .map_err(|e| {
            format!(
                "the address {} is too long for the slips' QR codes ({e}); give a shorter one",
                analysis::error::quoted(public_url)
            )
        })
}

/// Percent-encodes all but the unreserved characters of a URL's query value.
fn escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The codes as CSV: `group,code,slip` then one row per code, slips numbered from 1.
pub fn csv(sheet: &Sheet) -> Vec<u8> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let rows = std::iter::once(["group".to_string(), "code".into(), "slip".into()]).chain(
        sheet
            .codes
            .iter()
            .enumerate()
            .map(|(i, c)| [sheet.group.to_string(), c.to_string(), (i + 1).to_string()]),
    );
    for row in rows {
        out.write_record(&row)
            .expect("writing to memory cannot fail");
    }
    out.into_inner().expect("writing to memory cannot fail")
}

/// The sheet as a PDF, with the fonts' glyphs embedded (subset).
pub fn pdf(sheet: &Sheet, fonts: &SheetFonts) -> Result<Vec<u8>, String> {
    let unusable = || format!("the font {} cannot be used", fonts.source.display());
    let text = Face::new(fonts, fonts.text).ok_or_else(unusable)?;
    let mono = Face::new(fonts, fonts.mono).ok_or_else(unusable)?;
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(format!("{} · 投票码 {}", sheet.title, sheet.group_label))
            .language("zh-CN".to_string())
            .creator("Pingyi 评议".to_string()),
    );
    for (page_no, page_codes) in sheet.codes.chunks(COLUMNS * ROWS).enumerate() {
        let settings = PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4 is a valid size");
        let mut page = document.start_page_with(settings);
        let mut surface = page.surface();
        cut_lines(&mut surface);
        for (i, code) in page_codes.iter().enumerate() {
            let origin =
                Point::from_xy((i % COLUMNS) as f32 * SLIP_W, (i / COLUMNS) as f32 * SLIP_H);
            let number = page_no * COLUMNS * ROWS + i + 1;
            slip(&mut surface, origin, sheet, code, number, &text, &mono)?;
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| format!("cannot write the code sheet as PDF: {e:?}"))
}

/// A face of the sheet's font, for drawing (krilla) and measuring (ttf-parser).
struct Face<'a> {
    font: Font,
    metrics: ttf_parser::Face<'a>,
}

impl<'a> Face<'a> {
    fn new(fonts: &'a SheetFonts, index: u32) -> Option<Face<'a>> {
        Some(Face {
            font: Font::new(fonts.data.clone().into(), index)?,
            metrics: ttf_parser::Face::parse(&fonts.data, index).ok()?,
        })
    }

    /// The width of `text` at `size` points.
    fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| {
                self.metrics
                    .glyph_index(c)
                    .and_then(|g| self.metrics.glyph_hor_advance(g))
                    .map_or(0, u32::from)
            })
            .sum();
        units as f32 * size / f32::from(self.metrics.units_per_em())
    }

    /// `text` broken into lines at most `width` wide (between any two Chinese characters,
    /// between words elsewhere), at most `max` lines, the last cut with "…" if need be.
    fn wrap(&self, text: &str, size: f32, width: f32, max: usize) -> Vec<String> {
        if max == 0 {
            return Vec::new();
        }
        let mut lines: Vec<String> = vec![String::new()];
        for token in tokens(text) {
            let line = lines.last_mut().expect("never empty");
            let longer = format!("{line}{token}");
            if self.width(&longer, size) > width && !line.trim().is_empty() {
                lines.push(token.trim_start().to_string());
            } else {
                *line = longer;
            }
        }
        if lines.len() > max {
            lines.truncate(max);
            let last = lines.last_mut().expect("max > 0");
            while !last.is_empty() && self.width(&format!("{last}…"), size) > width {
                last.pop();
            }
            last.push('…');
        }
        lines
    }

    fn draw(&self, surface: &mut Surface, at: Point, size: f32, text: &str) {
        surface.draw_text(
            at,
            self.font.clone(),
            size,
            text,
            false,
            TextDirection::Auto,
        );
    }
}

/// The pieces a line may break between: each Chinese character on its own, a Latin
/// word with the spaces before it.
fn tokens(text: &str) -> Vec<String> {
    let mut tokens: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c.is_ascii() && (c != ' ' || word.trim().is_empty()) {
            word.push(c);
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if c == ' ' {
            word.push(c);
        } else {
            tokens.push(c.to_string());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

/// Dashed lines between the slips, to cut along.
fn cut_lines(surface: &mut Surface) {
    let mut path = PathBuilder::new();
    for column in 1..COLUMNS {
        path.move_to(column as f32 * SLIP_W, 0.0);
        path.line_to(column as f32 * SLIP_W, PAGE_H);
    }
    for row in 1..ROWS {
        path.move_to(0.0, row as f32 * SLIP_H);
        path.line_to(PAGE_W, row as f32 * SLIP_H);
    }
    let Some(path) = path.finish() else {
        return;
    };
    surface.set_fill(None);
    surface.set_stroke(Some(Stroke {
        paint: luma::Color::new(140).into(),
        width: 0.6,
        dash: Some(StrokeDash {
            array: vec![5.0, 4.0],
            offset: 0.0,
        }),
        ..Stroke::default()
    }));
    surface.draw_path(&path);
    surface.set_stroke(None);
}

/// One slip, its top left corner at `origin`.
fn slip(
    surface: &mut Surface,
    origin: Point,
    sheet: &Sheet,
    code: &AccessCode,
    number: usize,
    text: &Face,
    mono: &Face,
) -> Result<(), String> {
    let (x, top) = (origin.x + PAD, origin.y + PAD);
    let width = SLIP_W - 2.0 * PAD;
    let ink = |surface: &mut Surface, level: u8| {
        surface.set_fill(Some(Fill {
            paint: rgb::Color::new(level, level, level).into(),
            ..Fill::default()
        }));
    };
    ink(surface, 0);
    let mut y = top + 12.0;
    for line in text.wrap(sheet.title, 12.0, width, 2) {
        text.draw(surface, Point::from_xy(x, y), 12.0, &line);
        y += 16.0;
    }
    ink(surface, 60);
    let group = format!("评议主体 Group：{}", sheet.group_label);
    for line in text.wrap(&group, 9.5, width, 1) {
        text.draw(surface, Point::from_xy(x, y), 9.5, &line);
    }
    let body_top = y + 10.0;
    let left_w = width - QR_SIDE - 8.0;
    text.draw(
        surface,
        Point::from_xy(x, body_top + 12.0),
        9.0,
        "投票码 Access code",
    );
    ink(surface, 0);
    let shown = code.to_string();
    let code_size = (left_w / mono.width(&shown, 1.0)).min(26.0);
    mono.draw(
        surface,
        Point::from_xy(x, body_top + 44.0),
        code_size,
        &shown,
    );
    ink(surface, 60);
    let mut y = body_top + 64.0;
    let bottom = origin.y + SLIP_H - PAD;
    // The help is cut to the room above the address: Chinese first, then English.
    let room = |y: f32, size: f32| ((bottom - 21.0 - y) / (size + 2.5)).max(0.0) as usize;
    let help = "扫描二维码，或打开下面的网址并输入投票码。每码只能投一票，请勿转交他人。";
    let help_en =
        "Scan the QR code, or open the address below and enter the code. One code, one ballot.";
    for line in text.wrap(help, 8.0, left_w, room(y, 8.0).min(3)) {
        text.draw(surface, Point::from_xy(x, y), 8.0, &line);
        y += 10.5;
    }
    for line in text.wrap(help_en, 7.0, left_w, room(y, 7.0).min(3)) {
        text.draw(surface, Point::from_xy(x, y), 7.0, &line);
        y += 9.5;
    }
    for (i, line) in text
        .wrap(sheet.public_url, 7.5, left_w, 2)
        .iter()
        .enumerate()
    {
        text.draw(
            surface,
            Point::from_xy(x, bottom - 12.0 + i as f32 * 9.0),
            7.5,
            line,
        );
    }
    let label = format!("No. {number} · batch {}", sheet.batch);
    let label_x = origin.x + SLIP_W - PAD - text.width(&label, 7.0);
    text.draw(surface, Point::from_xy(label_x, bottom + 6.0), 7.0, &label);
    let url = code_url(sheet.public_url, sheet.group, code);
    ink(surface, 0);
    qr(
        surface,
        Point::from_xy(origin.x + SLIP_W - PAD - QR_SIDE, body_top),
        &url,
    )
}

/// A QR code of `data` with its quiet zone, `QR_SIDE` wide, its top left at `at`.
fn qr(surface: &mut Surface, at: Point, data: &str) -> Result<(), String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| format!("the address {data} does not fit a QR code: {e}"))?;
    let side = code.width();
    const QUIET: usize = 4;
    let module = QR_SIDE / (side + 2 * QUIET) as f32;
    let mut path = PathBuilder::new();
    for (i, color) in code.to_colors().into_iter().enumerate() {
        if color == Color::Dark {
            let (col, row) = ((i % side + QUIET) as f32, (i / side + QUIET) as f32);
            // A hair wider than the module, so neighbours meet without seams.
            if let Some(rect) = Rect::from_xywh(
                at.x + col * module,
                at.y + row * module,
                module + 0.05,
                module + 0.05,
            ) {
                path.push_rect(rect);
            }
        }
    }
    if let Some(path) = path.finish() {
        surface.draw_path(&path);
    }
    Ok(())
}
