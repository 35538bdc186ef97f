//! The ballots-per-hour bar chart, drawn as inline SVG (bars need no chart library). It
//! scales to its box, so it fits a phone as well as a desktop.

use leptos::prelude::*;

use crate::api::Hour;
use crate::i18n::Texts;
use crate::platform::local_hour;

const BAR: f64 = 24.0;
const GAP: f64 = 6.0;
const HEIGHT: f64 = 120.0;
const LABELS: f64 = 16.0;

pub fn hours(per_hour: &[Hour], t: &Texts) -> AnyView {
    if per_hour.is_empty() {
        return view! { <p class="muted">{t.no_ballots_yet}</p> }.into_any();
    }
    let max = per_hour.iter().map(|h| h.ballots).max().unwrap_or(1).max(1) as f64;
    let width = per_hour.len() as f64 * (BAR + GAP) + GAP;
    let total = HEIGHT + 2.0 * LABELS;
    let bars = per_hour
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let x = GAP + i as f64 * (BAR + GAP);
            let height = (h.ballots as f64 / max * HEIGHT).max(1.0);
            let y = LABELS + HEIGHT - height;
            let tip = format!("{} {}: {}", crate::platform::local_time(&h.hour), t.ballots, h.ballots);
            view! {
                <g>
                    <title>{tip}</title>
                    <rect x=x y=y width=BAR height=height class="bar"/>
                    <text x=x + BAR / 2.0 y=y - 3.0 text-anchor="middle" class="count">{h.ballots}</text>
                    <text x=x + BAR / 2.0 y=total - 3.0 text-anchor="middle" class="hour">{local_hour(&h.hour)}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="hours" data-testid="per-hour-chart" role="img" aria-label=t.per_hour
            viewBox=format!("0 0 {width} {total}") preserveAspectRatio="xMinYMid meet"
            style=format!("max-width: {}px", width * 2.0)>
            {bars}
        </svg>
    }
    .into_any()
}
