//! One campaign: the live dashboard (ballots per unit × group, per hour, attendance and
//! quorum, devices and addresses, refusals, current scores), refreshed every few seconds
//! in place (old numbers stay until new ones arrive, so nothing flickers), followed by the
//! codes, meeting and close/export sections.

use std::time::Duration;

use leptos::prelude::*;
use serde_json::Value;

use super::{actions, chart, ctx, label, ErrorLine, Route};
use crate::api::{self, campaign_url, Campaign, Campaigns, CodeCounts, Dashboard, Info, Sources};
use crate::i18n::{fill, reason, Lang};
use crate::platform::local_time;

/// How often the dashboard asks again.
const REFRESH: Duration = Duration::from_secs(4);

/// What the page knows about the campaign's form: its labels and which groups need codes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FormInfo {
    pub title: Value,
    /// (id, label) of each unit, in the form's order.
    pub units: Vec<(String, Value)>,
    /// (id, label, code_required) of each respondent group.
    pub groups: Vec<(String, Value, bool)>,
}

impl FormInfo {
    fn from_json(form: &Value) -> FormInfo {
        let list = |key: &str| {
            form.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let id = |v: &Value| {
            v.get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        FormInfo {
            title: form.get("title").cloned().unwrap_or(Value::Null),
            units: list("units")
                .iter()
                .map(|u| (id(u), u.get("name").cloned().unwrap_or(Value::Null)))
                .collect(),
            groups: list("groups")
                .iter()
                .map(|g| {
                    let needs = g
                        .get("code_required")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    (id(g), g.get("label").cloned().unwrap_or(Value::Null), needs)
                })
                .collect(),
        }
    }

    pub fn group_label(&self, group: &str, lang: Lang) -> String {
        self.groups
            .iter()
            .find(|g| g.0 == group)
            .map(|g| label(&g.1, lang))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| group.to_string())
    }
}

/// Everything the page polls.
#[derive(Clone, Copy)]
pub struct Live {
    pub dashboard: RwSignal<Option<Dashboard>>,
    pub sources: RwSignal<Option<Sources>>,
    pub codes: RwSignal<Option<CodeCounts>>,
    pub campaign: RwSignal<Option<Campaign>>,
    pub error: RwSignal<Option<String>>,
}

#[component]
pub fn CampaignPage(id: String, version: String) -> impl IntoView {
    let ctx = ctx();
    let form = RwSignal::new(FormInfo::default());
    let info = RwSignal::new(None::<Info>);
    let rules = RwSignal::new(String::new());
    let live = Live {
        dashboard: RwSignal::new(None),
        sources: RwSignal::new(None),
        codes: RwSignal::new(None),
        campaign: RwSignal::new(None),
        error: RwSignal::new(None),
    };
    {
        let form_url = format!(
            "/api/v1/forms/{}/{}",
            js_sys::encode_uri_component(&id),
            js_sys::encode_uri_component(&version)
        );
        leptos::task::spawn_local(async move {
            if let Ok(f) = api::get::<Value>(&form_url).await {
                form.set(FormInfo::from_json(&f));
            }
            if let Ok(i) = api::get::<Info>(&format!("{}/info", api::ADMIN)).await {
                info.set(Some(i));
            }
        });
    }
    let (id2, v2) = (id.clone(), version.clone());
    let refresh = move || refresh(ctx, live, id2.clone(), v2.clone(), rules.get_untracked());
    refresh();
    Effect::new({
        let refresh = refresh.clone();
        move |prev: Option<()>| {
            rules.track();
            if prev.is_some() {
                refresh();
            }
        }
    });
    if let Ok(handle) = set_interval_with_handle(refresh.clone(), REFRESH) {
        on_cleanup(move || handle.clear());
    }
    let title = move || {
        let lang = ctx.lang.get();
        let from_form = form.with(|f| label(&f.title, lang));
        if from_form.is_empty() {
            live.campaign
                .with(|c| c.as_ref().map(|c| label(&c.title, lang)))
                .unwrap_or_default()
        } else {
            from_form
        }
    };
    let poster = Route::Poster(id.clone(), version.clone());
    let poster_href = format!("#{}", poster.fragment());
    view! {
        <p class="no-print"><a href="#/" on:click=move |_| ctx.route.set(Route::Campaigns)>{move || ctx.t().back}</a></p>
        <h1 data-testid="campaign-title">{title}</h1>
        <p class="muted">{format!("{id}@{version}")}
            " · "<a href=poster_href data-testid="open-poster" on:click=move |_| ctx.route.set(poster.clone())>{move || ctx.t().poster}</a>
        </p>
        <ErrorLine msg=live.error testid="dashboard-error"/>
        <section class="card">
            <h2>{move || ctx.t().dashboard}
                <small class="muted" data-testid="computed-at">{move || live.dashboard.with(|d| d.as_ref().map(|d| fill(ctx.t().updated_at, &[("t", &local_time(&d.computed_at))]))).unwrap_or_default()}</small>
            </h2>
            <p class="big">{move || ctx.t().ballots}": "<strong data-testid="dash-ballots">{move || live.dashboard.with(|d| d.as_ref().map(|d| d.ballots.to_string()))}</strong></p>
            <UnitGroupTable live=live form=form/>
            <h3>{move || ctx.t().per_hour}</h3>
            {move || live.dashboard.with(|d| d.as_ref().map(|d| chart::hours(&d.per_hour, ctx.t())))}
            <Quorum live=live form=form/>
        </section>
        <Scores live=live info=info rules=rules/>
        <SourcesView live=live/>
        <actions::CodesSection id=id.clone() version=version.clone() live=live form=form/>
        <actions::MeetingSection id=id.clone() version=version.clone() form=form/>
        <actions::CloseSection id=id version=version live=live title=Signal::derive(title)/>
    }
}

/// Asks for the dashboard, the sources, the code counts and the campaign row at once;
/// each signal changes only when its answer arrives.
fn refresh(ctx: super::Ctx, live: Live, id: String, version: String, rules: String) {
    leptos::task::spawn_local(async move {
        let mut dash = campaign_url(&id, &version, "/dashboard");
        if !rules.is_empty() {
            dash.push_str(&format!("?rules={}", js_sys::encode_uri_component(&rules)));
        }
        match api::get::<Dashboard>(&dash).await {
            Ok(d) => {
                live.dashboard.set(Some(d));
                live.error.set(None);
            }
            Err(e) => live.error.set(Some(ctx.failed(&e))),
        }
        if let Ok(s) = api::get::<Sources>(&campaign_url(&id, &version, "/sources")).await {
            live.sources.set(Some(s));
        }
        if let Ok(c) = api::get::<CodeCounts>(&campaign_url(&id, &version, "/codes")).await {
            live.codes.set(Some(c));
        }
        if let Ok(list) = api::get::<Campaigns>(&format!("{}/campaigns", api::ADMIN)).await {
            let row = list
                .campaigns
                .into_iter()
                .find(|c| c.form_id == id && c.form_version == version);
            live.campaign.set(row);
        }
    });
}

#[component]
fn UnitGroupTable(live: Live, form: RwSignal<FormInfo>) -> impl IntoView {
    let ctx = ctx();
    move || {
        let t = ctx.t();
        let lang = ctx.lang.get();
        let cells = live
            .dashboard
            .with(|d| d.as_ref().map(|d| d.by_unit_group.clone()))?;
        let f = form.get();
        // Groups: the form's order, then any the ballots name that the form does not.
        let mut groups: Vec<String> = f.groups.iter().map(|g| g.0.clone()).collect();
        let mut units: Vec<String> = f.units.iter().map(|u| u.0.clone()).collect();
        for c in &cells {
            if !groups.contains(&c.group) {
                groups.push(c.group.clone());
            }
            if !units.contains(&c.unit) {
                units.push(c.unit.clone());
            }
        }
        let n = |u: &str, g: &str| {
            cells
                .iter()
                .filter(|c| c.unit == u && c.group == g)
                .map(|c| c.n)
                .sum::<u64>()
        };
        let unit_label = |u: &str| {
            f.units
                .iter()
                .find(|x| x.0 == u)
                .map(|x| label(&x.1, lang))
                .filter(|l| !l.is_empty())
                .unwrap_or_else(|| u.to_string())
        };
        let codes = live.codes.get().map(|c| c.groups).unwrap_or_default();
        let code_line = groups
            .iter()
            .map(|g| {
                let text = codes
                    .iter()
                    .find(|c| &c.group == g)
                    .filter(|c| c.issued > 0 || f.groups.iter().any(|x| &x.0 == g && x.2))
                    .map(|c| format!("{}/{}", c.used, c.issued))
                    .unwrap_or_default();
                view! { <td data-testid=format!("codes-used-{g}")>{text}</td> }
            })
            .collect_view();
        Some(view! {
            <h3>{t.by_unit_group}</h3>
            <div class="scroll">
            <table data-testid="unit-group-table">
                <thead><tr><th>{t.unit}</th>
                    {groups.iter().map(|g| view! { <th>{f.group_label(g, lang)}</th> }).collect_view()}
                    <th>{t.total}</th></tr></thead>
                <tbody>
                    {units.iter().map(|u| {
                        let total: u64 = groups.iter().map(|g| n(u, g)).sum();
                        view! { <tr><th>{unit_label(u)}</th>
                            {groups.iter().map(|g| view! { <td class="num" data-testid=format!("cell-{u}-{g}")>{n(u, g)}</td> }).collect_view()}
                            <td class="num">{total}</td></tr> }
                    }).collect_view()}
                    <tr class="codes"><th>{t.codes_issued_used}</th>{code_line}<td></td></tr>
                </tbody>
            </table>
            </div>
        })
    }
}

#[component]
fn Quorum(live: Live, form: RwSignal<FormInfo>) -> impl IntoView {
    let ctx = ctx();
    move || {
        let t = ctx.t();
        let lang = ctx.lang.get();
        let d = live.dashboard.get()?;
        let f = form.get();
        // The form's groups, then any the head counts name that the form does not.
        let mut groups: Vec<String> = f.groups.iter().map(|g| g.0.clone()).collect();
        groups.extend(
            d.head_counts
                .keys()
                .filter(|g| !groups.contains(g))
                .cloned()
                .collect::<Vec<_>>(),
        );
        Some(view! {
            <h3>{t.quorum}</h3>
            <div class="scroll"><table data-testid="quorum-table">
                <thead><tr><th>{t.group}</th><th>{t.present}</th><th>{t.members}</th><th>{t.returned_of_issued}</th><th>{t.quorum}</th></tr></thead>
                <tbody>
                {groups.iter().map(|g| {
                    let h = d.head_counts.get(g).cloned().unwrap_or_default();
                    let opt = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_else(|| "—".into());
                    let state = match void_reason(&d.scores, g) {
                        Some(reason) => format!("{}: {reason}", t.group_void),
                        None => t.group_counts.to_string(),
                    };
                    view! { <tr data-testid=format!("quorum-{g}")>
                        <th>{f.group_label(g, lang)}</th>
                        <td class="num">{opt(h.present)}</td>
                        <td class="num">{opt(h.members)}</td>
                        <td class="num">{format!("{}/{}", opt(h.returned), opt(h.issued))}</td>
                        <td>{state}</td>
                    </tr> }
                }).collect_view()}
                </tbody>
            </table></div>
        })
    }
}

/// Why the score report left a group's vote out (quorum not met, more returned than
/// issued), in the report's own words; `None` when the group counts.
fn void_reason(scores: &Value, group: &str) -> Option<String> {
    scores
        .get("void_groups")?
        .as_array()?
        .iter()
        .find(|v| v.get("group").and_then(Value::as_str) == Some(group))
        .map(|v| {
            v.get("reason")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        })
}

/// A number as the score table shows it: two decimals.
pub fn two(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "—".into())
}

#[component]
fn Scores(live: Live, info: RwSignal<Option<Info>>, rules: RwSignal<String>) -> impl IntoView {
    let ctx = ctx();
    let choices = move || info.with(|i| i.as_ref().map(|i| i.rules.clone()).unwrap_or_default());
    let rows = move || {
        let t = ctx.t();
        let units = live.dashboard.with(|d| {
            d.as_ref()
                .and_then(|d| d.scores.get("units").and_then(Value::as_array).cloned())
        })?;
        if units.is_empty() {
            return Some(view! { <p>{t.no_scores}</p> }.into_any());
        }
        let num = |u: &Value, k: &str| u.get(k).and_then(Value::as_f64);
        Some(view! {
            <div class="scroll"><table data-testid="scores-table">
                <thead><tr><th>{t.rank}</th><th>{t.unit}</th><th>{t.score}</th><th>{t.interval}</th><th>"n"</th><th>{t.grade}</th><th>{t.flags}</th></tr></thead>
                <tbody>
                {units.iter().map(|u| {
                    let unit = u.get("unit").and_then(Value::as_str).unwrap_or_default().to_string();
                    let name = u.get("name").and_then(Value::as_str).unwrap_or(&unit).to_string();
                    let ci = u.get("score_ci").and_then(Value::as_array).map(|a| {
                        format!("[{}, {}]", two(a.first().and_then(Value::as_f64)), two(a.get(1).and_then(Value::as_f64)))
                    }).unwrap_or_else(|| "—".into());
                    let flags = u.get("flags").and_then(Value::as_array).map(|f| {
                        f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")
                    }).unwrap_or_default();
                    view! { <tr data-testid=format!("score-{unit}")>
                        <td class="num">{u.get("rank").and_then(Value::as_u64).map(|r| r.to_string()).unwrap_or_else(|| "—".into())}</td>
                        <th>{name}</th>
                        <td class="num" data-testid=format!("score-value-{unit}")>{two(num(u, "score"))}</td>
                        <td class="num">{ci}</td>
                        <td class="num" data-testid=format!("score-n-{unit}")>{num(u, "n").map(|n| n.to_string())}</td>
                        <td>{u.get("grade").and_then(Value::as_str).unwrap_or("—").to_string()}</td>
                        <td>{flags}</td>
                    </tr> }
                }).collect_view()}
                </tbody>
            </table></div>
        }.into_any())
    };
    view! {
        <section class="card">
            <h2>{move || ctx.t().scores}</h2>
            <label>{move || ctx.t().rules}" "
                <select data-testid="rules-choice" on:change=move |e| rules.set(event_target_value(&e))>
                    <option value="" selected=move || rules.with(String::is_empty)>{move || ctx.t().no_rules}</option>
                    {move || choices().into_iter().map(|r| {
                        let shown = if r.title.is_empty() { r.name.clone() } else { format!("{} ({})", r.title, r.name) };
                        view! { <option value=r.name.clone()>{shown}</option> }
                    }).collect_view()}
                </select>
            </label>
            {rows}
        </section>
    }
}

#[component]
fn SourcesView(live: Live) -> impl IntoView {
    let ctx = ctx();
    move || {
        let t = ctx.t();
        let s = live.sources.get()?;
        Some(view! {
            <section class="card">
                <h2>{t.devices}</h2>
                {if s.devices.is_empty() { Some(view! { <p>{t.no_devices}</p> }) } else { None }}
                <div class="scroll"><table data-testid="devices-table">
                    <thead><tr><th>{t.device}</th><th>{t.address}</th><th>{t.last_contact}</th><th>{t.waiting}</th><th>{t.ballots}</th><th>{t.refused}</th></tr></thead>
                    <tbody>{s.devices.iter().map(|d| view! { <tr>
                        <td class="mono">{d.device_id.clone()}</td><td class="mono">{d.address.clone()}</td>
                        <td>{local_time(&d.last_contact)}</td>
                        <td class="num">{d.waiting.map(|w| w.to_string()).unwrap_or_else(|| "—".into())}</td>
                        <td class="num">{d.ballots}</td><td class="num">{d.refused}</td>
                    </tr> }).collect_view()}</tbody>
                </table></div>
                <h3>{t.addresses}</h3>
                <div class="scroll"><table data-testid="addresses-table">
                    <thead><tr><th>{t.address}</th><th>{t.ballots}</th><th>{t.refused}</th></tr></thead>
                    <tbody>{s.addresses.iter().map(|a| view! { <tr>
                        <td class="mono">{a.address.clone()}</td><td class="num">{a.ballots}</td><td class="num">{a.refused}</td>
                    </tr> }).collect_view()}</tbody>
                </table></div>
                <h3>{t.refused_by_reason}</h3>
                <table data-testid="refused-table">
                    <thead><tr><th>{t.reason}</th><th>{t.count}</th></tr></thead>
                    <tbody>{s.refused_by_reason.iter().map(|r| view! { <tr>
                        <td>{reason(t, &r.reason)}</td><td class="num">{r.count}</td>
                    </tr> }).collect_view()}</tbody>
                </table>
            </section>
        })
    }
}
