//! What a citizen and an official do with the default form, as reusable steps, and the
//! answers those steps give (to compare with what comes back out of an export).

use std::collections::BTreeMap;

use analysis::ballot::{Answer, Ballot, Grid};
use analysis::form::{Form, ItemKind};

use crate::harness::Session;

/// The default form's grid: (units, criteria).
pub fn grid_shape() -> (Vec<String>, Vec<String>) {
    let form = Form::default_form();
    let ItemKind::Appraisal {
        units, criteria, ..
    } = &form.item("appr").unwrap().kind
    else {
        unreachable!()
    };
    (
        units.clone(),
        criteria.iter().map(|c| c.id.clone()).collect(),
    )
}

/// A grid answer where every cell is `code`, except `overall` of the first unit.
pub fn grid_answers(code: &str, first_overall: &str) -> Grid {
    let (units, criteria) = grid_shape();
    let mut g = Grid::new();
    for (i, u) in units.iter().enumerate() {
        for c in &criteria {
            let v = if i == 0 && c == "overall" {
                first_overall
            } else {
                code
            };
            g.entry(u.clone())
                .or_default()
                .insert(c.clone(), v.to_string());
        }
    }
    g
}

/// Chooses a group and starts a ballot from the start screen.
pub async fn start(s: &Session, group: &str) {
    s.click(&format!("group-{group}")).await;
    s.click("start-button").await;
    s.find("page-about").await;
}

/// Answers page 1 (about you) and moves on.
pub async fn fill_about(s: &Session) {
    s.click("opt-contact-often").await;
    s.click("opt-channels-online").await;
    s.click("opt-channels-phone").await;
    s.type_into("input-times", "12").await;
    s.click("next").await;
    s.find("page-appraisal").await;
}

/// Starts a ballot as `group` and answers page 1, arriving at the appraisal grid.
pub async fn to_grid(s: &Session, group: &str) {
    start(s, group).await;
    fill_about(s).await;
}

/// Clears the device from the open admin screen (after an export) and waits until the
/// store reports empty.
pub async fn clear_device(s: &Session) {
    s.type_into("clear-word", "清空").await;
    s.click("clear-button").await;
    s.wait_for_text("the store to be empty", |t| t.contains("已清空本机问卷"))
        .await;
    assert_eq!(admin_total(s).await, 0);
}

/// Clicks every cell of the grid as in `grid`.
pub async fn fill_grid(s: &Session, grid: &Grid) {
    for (unit, row) in grid {
        for (crit, code) in row {
            s.click(&format!("opt-appr-{unit}-{crit}-{code}")).await;
        }
    }
}

/// From page 2 on: rates the grid as `grid` and goes to the last page.
pub async fn grid_then_last_page(s: &Session, grid: &Grid) {
    fill_grid(s, grid).await;
    s.click("next").await;
    s.find("page-opinions").await;
}

/// The answers [`fill_about`] gives.
pub fn about_answers() -> BTreeMap<String, Answer> {
    let mut a = BTreeMap::new();
    a.insert("contact".into(), Answer::Str("often".into()));
    a.insert(
        "channels".into(),
        Answer::Codes(vec!["online".into(), "phone".into()]),
    );
    a.insert("times".into(), Answer::Number(12.0));
    a
}

/// Goes through a whole ballot: group `public`, every page, a dissatisfied overall for the
/// first unit (so the follow-up question appears), a formula-like suggestion. Returns the
/// answers that the stored ballot must hold.
pub async fn complete_ballot(s: &Session) -> BTreeMap<String, Answer> {
    to_grid(s, "public").await;
    let grid = grid_answers("4", "2");
    grid_then_last_page(s, &grid).await;
    s.click("opt-environment-4").await;
    s.type_into("input-why", "窗口排队太久").await;
    s.type_into("input-suggestion", "=1+1 建议增加\"自助机\"")
        .await;
    s.click("submit").await;
    s.find("thanks").await;
    let mut a = about_answers();
    a.insert("appr".into(), Answer::Grid(grid));
    a.insert("environment".into(), Answer::Str("4".into()));
    a.insert("why".into(), Answer::Str("窗口排队太久".into()));
    a.insert(
        "suggestion".into(),
        Answer::Str("=1+1 建议增加\"自助机\"".into()),
    );
    a
}

/// Opens the admin screen, choosing the PIN on first use or entering it after.
pub async fn open_admin(s: &Session, pin: &str, first_time: bool) {
    s.click("open-admin").await;
    s.type_into("pin", pin).await;
    if first_time {
        s.type_into("pin-repeat", pin).await;
    }
    s.click("pin-ok").await;
    s.find("admin-panel").await;
}

/// The number of ballots the admin screen reports.
pub async fn admin_total(s: &Session) -> usize {
    s.find("ballot-total")
        .await
        .text()
        .await
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Exports the (single form's) ballots from the open admin screen as CSV or JSON, reads the
/// download back with `analysis`, and removes it so the next export is found afresh.
pub async fn export(s: &Session, csv: bool) -> Vec<Ballot> {
    let (button, ext) = if csv {
        ("export-csv-0", ".csv")
    } else {
        ("export-json-0", ".json")
    };
    s.click(button).await;
    let path = s.download(ext).await;
    let form = Form::default_form();
    let file = std::fs::File::open(&path).unwrap();
    let name = path.display().to_string();
    let ballots = if csv {
        analysis::wide_csv::read_all(&form, &name, file)
    } else {
        analysis::json::read_all(&form, &name, file)
    };
    std::fs::remove_file(&path).unwrap();
    ballots.unwrap_or_else(|e| panic!("the export does not read back: {e}"))
}
