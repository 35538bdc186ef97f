//! Finding a font that has Chinese characters, for the code sheet: `--font FILE`, or the
//! usual places of Linux, Windows and macOS (or the folders of `PINGYI_FONT_DIRS`). A
//! font collection (.ttc) is searched for its Simplified Chinese face, and for a
//! monospaced face to print the codes with.

use std::path::{Path, PathBuf};

use ttf_parser::{fonts_in_collection, name_id, Face};

/// Characters the sheet cannot do without.
const NEEDED: &str = "评议投票码请扫描";

/// Font files tried first, in order (Noto Sans CJK / Source Han Sans, WenQuanYi, the
/// Windows and macOS fonts).
const KNOWN_FILES: &[&str] = &[
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "C:\\Windows\\Fonts\\msyh.ttc",
    "C:\\Windows\\Fonts\\simhei.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/System/Library/Fonts/STHeiti Light.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
];

/// Folders searched (to a few levels) when no known file is there.
const FONT_DIRS: &[&str] = &[
    "/usr/share/fonts",
    "/usr/local/share/fonts",
    "~/.local/share/fonts",
    "~/.fonts",
    "C:\\Windows\\Fonts",
    "/System/Library/Fonts",
    "/Library/Fonts",
    "~/Library/Fonts",
];

/// File names (lower case) that usually hold Chinese.
const CJK_NAMES: &[&str] = &[
    "notosanscjk",
    "notosanssc",
    "sourcehansans",
    "notoserifcjk",
    "wqy",
    "msyh",
    "simhei",
    "simsun",
    "pingfang",
    "droidsansfallback",
];

/// The faces the sheet prints with: one for text, one monospaced for the codes (the same
/// face when the font has no monospaced one).
pub struct SheetFonts {
    pub data: Vec<u8>,
    pub text: u32,
    pub mono: u32,
    /// Where the font was found, for messages.
    pub source: PathBuf,
}

/// Loads `--font FILE`, or finds a Chinese font on this system.
pub fn find(given: Option<&Path>) -> Result<SheetFonts, String> {
    if let Some(path) = given {
        let data = std::fs::read(path)
            .map_err(|e| format!("cannot read the font {}: {e}", path.display()))?;
        return faces(data, path).ok_or_else(|| {
            format!(
                "the font {} has no face with Chinese characters (such as {NEEDED}); give a \
                 font for Simplified Chinese, e.g. NotoSansCJK-Regular.ttc",
                path.display()
            )
        });
    }
    let (files, dirs) = places();
    for file in &files {
        if let Some(fonts) = std::fs::read(file).ok().and_then(|d| faces(d, file)) {
            return Ok(fonts);
        }
    }
    for dir in &dirs {
        for file in cjk_files(dir, 4) {
            if let Some(fonts) = std::fs::read(&file).ok().and_then(|d| faces(d, &file)) {
                return Ok(fonts);
            }
        }
    }
    let looked: Vec<String> = files
        .iter()
        .chain(&dirs)
        .map(|p| p.display().to_string())
        .collect();
    Err(format!(
        "no font with Chinese characters was found for the code sheet; looked in: {}. \
         Install one (Debian/Ubuntu: apt install fonts-noto-cjk), or give a font file with \
         --font FILE, or write the codes as CSV instead (-o codes.csv)",
        looked.join(", ")
    ))
}

/// The files and folders searched: `PINGYI_FONT_DIRS` (folders separated like PATH)
/// replaces the system's places when set.
fn places() -> (Vec<PathBuf>, Vec<PathBuf>) {
    if let Some(dirs) = std::env::var_os("PINGYI_FONT_DIRS") {
        return (Vec::new(), std::env::split_paths(&dirs).collect());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let expand = |p: &&str| match (p.strip_prefix("~/"), &home) {
        (Some(rest), Some(home)) => Some(home.join(rest)),
        (Some(_), None) => None,
        (None, _) => Some(PathBuf::from(p)),
    };
    (
        KNOWN_FILES.iter().filter_map(expand).collect(),
        FONT_DIRS.iter().filter_map(expand).collect(),
    )
}

/// Font files under `dir` whose names suggest Chinese, sorted, `depth` levels down.
fn cjk_files(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if depth > 0 {
                found.extend(cjk_files(&path, depth - 1));
            }
            continue;
        }
        let name = path
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .to_lowercase()
                    .replace(['-', '_', ' '], "")
            })
            .unwrap_or_default();
        let font = [".ttc", ".ttf", ".otf", ".otc"]
            .iter()
            .any(|ext| name.ends_with(ext));
        if font && CJK_NAMES.iter().any(|n| name.contains(n)) {
            found.push(path);
        }
    }
    found
}

/// Picks the text and monospaced faces of a font file that can write Chinese; prefers
/// the Simplified Chinese face of a collection.
fn faces(data: Vec<u8>, source: &Path) -> Option<SheetFonts> {
    let count = fonts_in_collection(&data).unwrap_or(1);
    let mut usable = Vec::new();
    for index in 0..count {
        let Ok(face) = Face::parse(&data, index) else {
            continue;
        };
        if !NEEDED.chars().all(|c| face.glyph_index(c).is_some()) {
            continue;
        }
        let family = family(&face);
        let simplified = family.contains(" SC") || family.contains("SC ") || family.ends_with("SC");
        usable.push((
            index,
            simplified,
            face.is_monospaced() || family.contains("Mono"),
        ));
    }
    let text = usable
        .iter()
        .find(|(_, sc, mono)| *sc && !*mono)
        .or_else(|| usable.iter().find(|(_, _, mono)| !*mono))
        .or_else(|| usable.first())?
        .0;
    let mono = usable
        .iter()
        .find(|(_, sc, mono)| *sc && *mono)
        .or_else(|| usable.iter().find(|(_, _, mono)| *mono))
        .map_or(text, |f| f.0);
    Some(SheetFonts {
        data,
        text,
        mono,
        source: source.to_path_buf(),
    })
}

/// The face's family name, in English when it has one.
fn family(face: &Face) -> String {
    face.names()
        .into_iter()
        .filter(|n| n.name_id == name_id::FAMILY && n.is_unicode())
        .filter_map(|n| n.to_string())
        .next()
        .unwrap_or_default()
}
