//! The components. [`App`] loads the form, restores the draft, provides [`Ctx`] and
//! switches between the screens: start, the form's pages, thank-you, administration.

mod admin;
mod items;
mod kiosk;
mod pages;
mod start;
mod sync;

use std::sync::Arc;
use std::time::Duration;

use analysis::form::DEFAULT_FORM_JSON;
use leptos::prelude::*;

use crate::i18n::{self, Texts};
use crate::model::{self, keys, Draft, Settings, Shown};
use crate::platform::{self, BrowserStorage};
use crate::store::{self, BallotStore, KeyValue};
use crate::{FormSource, LoadedForm};

/// Which screen is shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Screen {
    /// Title, notice, group, language, start.
    Start,
    /// The form's pages (the page number is in the draft).
    Form,
    /// Thank-you, with the stored ballot's id.
    Thanks(String),
    /// Administration (behind the PIN).
    Admin,
}

/// Shared state, provided once as context.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub form: RwSignal<Option<Arc<LoadedForm>>>,
    pub settings: RwSignal<Settings>,
    pub draft: RwSignal<Option<Draft>>,
    pub screen: RwSignal<Screen>,
    pub lang: RwSignal<String>,
    pub large: RwSignal<bool>,
    pub store: StoredValue<BallotStore<BrowserStorage>, LocalStorage>,
    /// Bumped whenever the store changes, so counts and space are re-read.
    pub store_rev: RwSignal<u32>,
    /// UTF-16 units local storage can hold in all (probed once, remembered).
    pub capacity: RwSignal<Option<u64>>,
    /// Items whose problems are shown (after a refused Next or Submit).
    pub shown: RwSignal<Shown>,
    /// A message across the top (e.g. a save that failed).
    pub notice: RwSignal<Option<String>>,
    /// When the last ballot was stored (ms).
    pub last_submit: RwSignal<f64>,
    /// A clock ticking once a second, for countdowns.
    pub now: RwSignal<f64>,
    /// When the person at the screen last did something (ms).
    pub last_input: StoredValue<f64>,
    /// Whether the browser granted persistent storage.
    pub persisted: RwSignal<Option<bool>>,
    /// The respondent group picked on the start screen, before the draft exists.
    pub chosen_group: RwSignal<Option<String>>,
    /// The 投票码 as typed on the start screen (or brought by a link), before the draft
    /// exists; emptied when a ballot starts and when the screen goes back to the start.
    pub typed_code: RwSignal<String>,
    /// Whether the PIN was given for this visit to the admin screen.
    pub admin_unlocked: RwSignal<bool>,
    /// The served form, held back while a draft started on an earlier one is finished.
    pub next_form: StoredValue<Option<Arc<LoadedForm>>>,
    /// Why no form can be used (the served one was refused): every problem, shown instead
    /// of the screens so that no ballot is taken on the wrong form.
    pub refused_form: RwSignal<Option<Vec<String>>>,
    /// Bumped whenever the server's answers were noted (here or in another tab).
    pub sync_rev: RwSignal<u32>,
    /// The last contact with the collection server.
    pub contact: RwSignal<Option<sync::Contact>>,
    /// The sending loop (see [`sync`]).
    pub sync: StoredValue<sync::Driver, LocalStorage>,
    /// Where the ballot last submitted in this tab was stored (for the thank-you screen).
    pub last_stored: StoredValue<Option<store::Stored>>,
}

impl Ctx {
    /// The interface texts in the current language. Screens are rebuilt when the language
    /// changes, so they read it once (untracked) and render plain text: far less code in
    /// the wasm than a reactive closure per label.
    pub fn t(&self) -> &'static Texts {
        i18n::texts(&self.lang.get_untracked())
    }

    /// The form in use, untracked. Only screens shown after the form has loaded call it
    /// (the App shows "loading" until then).
    pub fn form_now(&self) -> Arc<LoadedForm> {
        self.form
            .get_untracked()
            .expect("screens show once the form is loaded")
    }

    /// The current language, untracked (see [`Ctx::t`]).
    pub fn lang_now(&self) -> String {
        self.lang.get_untracked()
    }

    /// Reads the local storage underneath the store.
    pub fn kv(&self) -> BrowserStorage {
        self.store.with_value(|s| s.kv().clone())
    }

    /// Changes the draft and saves it at once, so a reload or crash loses nothing typed.
    pub fn edit_draft(&self, f: impl FnOnce(&mut Draft)) {
        let mut saved = None;
        self.draft.update(|d| {
            if let Some(d) = d.as_mut() {
                f(d);
                saved = serde_json::to_string(d).ok();
            }
        });
        if let Some(json) = saved {
            if let Err(e) = self.kv().set(keys::DRAFT, &json) {
                self.notice
                    .set(Some(i18n::fill(self.t().save_failed, &[("e", &e)])));
            }
        }
    }

    /// Drops the draft (submitted, or discarded for the next person's privacy).
    pub fn drop_draft(&self) {
        self.draft.set(None);
        self.shown.set(Shown::new());
        self.kv().remove(keys::DRAFT);
        self.kv().remove(keys::DRAFT_FORM);
        if let Some(next) = self.next_form.try_update_value(Option::take).flatten() {
            self.form.set(Some(next));
        }
    }

    /// Starts a draft on the form in use, keeping a copy of that form until the draft ends
    /// if the store has none, so the draft survives a change of the served form.
    pub fn begin_draft(&self, draft: Draft) {
        let kept = self
            .store
            .with_value(|s| s.form_json(&draft.form_key).is_some());
        if !kept {
            if let Some(f) = self.form.get_untracked() {
                // Without room for it the draft still works; it just cannot outlive a change.
                let _ = self.kv().set(keys::DRAFT_FORM, &f.json);
            }
        }
        self.draft.set(Some(draft));
        self.edit_draft(|_| {});
    }

    /// The form a draft was started on, from the store or the draft's own copy.
    fn draft_form(&self, form_key: &str) -> Option<Arc<LoadedForm>> {
        let json = self
            .store
            .with_value(|s| s.form_json(form_key))
            .or_else(|| self.kv().get(keys::DRAFT_FORM))?;
        LoadedForm::parse(form_key, json, FormSource::Server)
            .ok()
            .filter(|f| f.key == form_key)
    }

    /// Saves the settings.
    pub fn save_settings(&self, s: Settings) -> Result<(), String> {
        let json = serde_json::to_string(&s).map_err(|e| e.to_string())?;
        store::set_vital(&self.kv(), keys::SETTINGS, &json)?;
        self.settings.set(s);
        Ok(())
    }

    /// Room used in local storage now, in UTF-16 units (tracks `store_rev`).
    pub fn used(&self) -> u64 {
        self.store_rev.track();
        self.store.with_value(|s| s.used())
    }

    /// Storage state for warnings: (used fraction, whether one more ballot fits).
    pub fn space(&self) -> (f64, bool) {
        let used = self.used();
        let Some(cap) = self.capacity.get() else {
            return (0.0, true);
        };
        let largest = self.store.with_value(|s| s.largest_line());
        // Room for the next ballot's line and the draft while it is filled in, with a margin.
        let reserve = 2 * largest.max(512) + 4096;
        (used as f64 / cap as f64, used + reserve <= cap)
    }

    /// Back to the start screen, ready for the next person.
    pub fn go_to_start(&self) {
        let s = self.settings.get_untracked();
        if s.kiosk.enabled {
            self.large.set(false);
            if let Some(f) = self.form.get_untracked() {
                self.lang.set(f.form.languages[0].clone());
            }
        }
        self.notice.set(None);
        self.admin_unlocked.set(false);
        self.typed_code.set(String::new());
        self.screen.set(Screen::Start);
        platform::scroll_top();
    }
}

/// Reads settings, creating the device id on first use. A damaged record is set aside raw
/// (it is exported with the damaged entries), and what could be read of it is kept: see
/// [`model::read_settings`], which never lets a lost PIN look like a new device.
fn load_settings(kv: &BrowserStorage) -> Settings {
    let (mut s, damaged) = match kv.get(keys::SETTINGS) {
        None => (Settings::default(), None),
        Some(raw) => {
            let read = model::read_settings(&raw);
            let damaged = (!read.lost.is_empty()).then_some(raw);
            (read.settings, damaged)
        }
    };
    let generated = s.device_id.is_empty();
    if generated {
        s.device_id = model::new_device_id(&platform::random_bytes::<4>());
    }
    // A repaired record replaces a damaged one only once the raw text is set aside; until
    // then the damaged one stays, and is read (and repaired in memory) again next time.
    let may_write = match &damaged {
        None => generated,
        Some(raw) => store::quarantine(kv, "settings", raw, platform::now_ms() as u64).is_ok(),
    };
    if may_write {
        if let Ok(json) = serde_json::to_string(&s) {
            let _ = store::set_vital(kv, keys::SETTINGS, &json);
        }
    }
    // After the settings, so that a first start on a nearly full browser still gets them.
    store::keep_reserve(kv);
    s
}

/// Keeps a tab's view of the store and the settings in step with other tabs: the browser
/// tells every other tab of the same site when local storage changes.
fn follow_other_tabs(ctx: Ctx) {
    let handle = window_event_listener(leptos::ev::storage, move |ev| {
        let key = ev.key().unwrap_or_default();
        if key.is_empty()
            || key.starts_with(store::CHUNK_PREFIX)
            || key.starts_with(store::FORM_PREFIX)
            || key.starts_with(store::QUARANTINE_PREFIX)
        {
            ctx.store.update_value(|s| s.refresh());
            ctx.store_rev.update(|r| *r += 1);
        }
        if key.is_empty() || key.starts_with(crate::outbox::MARKS_PREFIX) {
            ctx.sync_rev.update(|r| *r += 1);
        }
        if key.is_empty() || key == keys::SETTINGS {
            if let Some(raw) = ctx.kv().get(keys::SETTINGS) {
                ctx.settings.set(model::read_settings(&raw).settings);
            }
        }
    });
    // Kept for the page's life: the app never unmounts.
    std::mem::forget(handle);
}

/// The form to use: an administrator's, else `form.json`, else (when the server cannot be
/// reached) the built-in one. A `form.json` that arrives but does not pass the checks
/// `pingyi form check` makes is refused with its problems: taking ballots on the built-in
/// form instead would rate the wrong units, and a form whose version breaks the storage
/// keys would lose ballots.
async fn load_form(kv: &BrowserStorage) -> Result<(Arc<LoadedForm>, bool), Vec<String>> {
    if let Some(json) = kv.get(keys::ACTIVE_FORM) {
        if let Ok(f) = LoadedForm::parse("form.active", json, FormSource::Admin) {
            return Ok((f, false));
        }
    }
    if let Ok(json) = platform::fetch_text("form.json").await {
        return match LoadedForm::parse("form.json", json, FormSource::Server) {
            Ok(f) => Ok((f, false)),
            Err(p) => Err(p.problems.iter().map(ToString::to_string).collect()),
        };
    }
    let f = LoadedForm::parse(
        "default form",
        DEFAULT_FORM_JSON.to_string(),
        FormSource::BuiltIn,
    )
    .expect("the built-in form is checked by the analysis tests");
    Ok((f, true))
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let Some(kv) = BrowserStorage::local() else {
        // No storage, no ballots: say so in both languages, since none can be chosen.
        return view! {
            <main class="fatal" role="alert">
                <p lang="zh-CN">{i18n::ZH.storage_blocked}</p>
                <p lang="en">{i18n::EN.storage_blocked}</p>
            </main>
        }
        .into_any();
    };
    let settings = load_settings(&kv);
    let last_submit = kv
        .get(keys::LAST_SUBMIT)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let capacity = kv.get(keys::CAPACITY).and_then(|v| v.parse().ok());
    let ctx = Ctx {
        form: RwSignal::new(None),
        settings: RwSignal::new(settings),
        draft: RwSignal::new(None),
        screen: RwSignal::new(Screen::Start),
        lang: RwSignal::new("zh-CN".into()),
        large: RwSignal::new(false),
        // A writer id of this page load's own: no other tab ever rewrites its chunks.
        store: StoredValue::new_local(BallotStore::open(
            kv.clone(),
            &store::writer_id(&platform::random_bytes::<8>()),
        )),
        store_rev: RwSignal::new(0),
        capacity: RwSignal::new(capacity),
        shown: RwSignal::new(Shown::new()),
        notice: RwSignal::new(None),
        last_submit: RwSignal::new(last_submit),
        now: RwSignal::new(platform::now_ms()),
        last_input: StoredValue::new(platform::now_ms()),
        persisted: RwSignal::new(None),
        chosen_group: RwSignal::new(None),
        typed_code: RwSignal::new(String::new()),
        admin_unlocked: RwSignal::new(false),
        next_form: StoredValue::new(None),
        refused_form: RwSignal::new(None),
        sync_rev: RwSignal::new(0),
        contact: RwSignal::new(sync::Contact::read(&kv)),
        sync: StoredValue::new_local(sync::Driver::default()),
        last_stored: StoredValue::new(None),
    };
    provide_context(ctx);
    follow_other_tabs(ctx);
    // Ballots waiting from earlier visits go out at once.
    sync::start(ctx);

    // Large text stays on for the browser session (sessionStorage), not across people on a kiosk.
    if let Some(ss) = web_sys::window().and_then(|w| w.session_storage().ok().flatten()) {
        ctx.large
            .set(ss.get_item("pingyi.large").ok().flatten().as_deref() == Some("1"));
        Effect::new(move |_| {
            let _ = ss.set_item("pingyi.large", if ctx.large.get() { "1" } else { "0" });
        });
    }
    Effect::new(move |_| platform::set_document_lang(&ctx.lang.get()));

    leptos::task::spawn_local(async move {
        let kv = ctx.kv();
        let (mut loaded, fell_back) = match load_form(&kv).await {
            Ok(found) => found,
            Err(problems) => {
                ctx.refused_form.set(Some(problems));
                return;
            }
        };
        let draft: Option<Draft> = kv
            .get(keys::DRAFT)
            .and_then(|j| serde_json::from_str(&j).ok());
        // A draft started on another form (the served one changed since) is finished on
        // the form it was started on; the new one is used from the next ballot on.
        if let Some(d) = draft.as_ref().filter(|d| d.form_key != loaded.key) {
            if let Some(old) = ctx.draft_form(&d.form_key) {
                ctx.next_form
                    .set_value(Some(std::mem::replace(&mut loaded, old)));
            }
        }
        match draft {
            Some(d) if d.form_key == loaded.key => {
                ctx.lang.set(d.lang.clone());
                ctx.draft.set(Some(d));
                ctx.screen.set(Screen::Form);
            }
            Some(_) => {
                // Its form is nowhere on this device (there was no room for a copy when
                // the draft began), so it cannot be shown any more.
                kv.remove(keys::DRAFT);
                kv.remove(keys::DRAFT_FORM);
                ctx.lang.set(loaded.form.languages[0].clone());
            }
            None => {
                kv.remove(keys::DRAFT_FORM);
                ctx.lang.set(loaded.form.languages[0].clone());
            }
        }
        if fell_back {
            ctx.notice.set(Some(ctx.t().form_fallback.to_string()));
        }
        // A link from a code slip: its group chosen and its code filled in (never over a
        // draft being finished, which has its own group and code).
        let (group, code) = platform::take_link_params();
        if ctx.draft.with_untracked(Option::is_none) {
            if let Some(g) = group.filter(|g| loaded.form.group(g).is_some()) {
                ctx.chosen_group.set(Some(g));
            }
            if let Some(c) = code {
                ctx.typed_code.set(c);
            }
        }
        ctx.form.set(Some(loaded));
        // User Timing mark for the load-time benchmark: the form can be used from here on.
        request_animation_frame(platform::mark_interactive);
        if ctx.capacity.get_untracked().is_none() {
            // Measuring the room writes megabytes: do it once, after the first screen is up
            // and the service worker has finished caching the app (see
            // `platform::service_worker_settled`).
            leptos::task::spawn_local(async move {
                platform::service_worker_settled(Duration::from_secs(60)).await;
                set_timeout(
                    move || {
                        let kv = ctx.kv();
                        let cap = store::used(&kv) + store::probe_free(&kv);
                        let _ = kv.set(keys::CAPACITY, &cap.to_string());
                        ctx.capacity.set(Some(cap));
                    },
                    Duration::from_millis(1500),
                );
            });
        }
        ctx.persisted.set(platform::persist_storage().await);
    });

    kiosk::watch_activity(ctx);
    let _ = set_interval_with_handle(
        move || {
            ctx.now.set(platform::now_ms());
            kiosk::tick(ctx);
        },
        Duration::from_secs(1),
    );

    // Screens are rebuilt when the screen or the language changes, not when the form is
    // replaced (only the admin screen does that, and it keeps its state).
    let form_loaded = Memo::new(move |_| ctx.form.with(Option::is_some));
    view! {
        <div class="app" class:large=move || ctx.large.get()>
            <TopBar/>
            {move || ctx.notice.get().map(|n| view! { <p class="notice" role="alert" data-testid="notice">{n}</p> })}
            <main id="main">
                {move || ctx.refused_form.get().map(|problems| view! { <RefusedForm problems=problems/> })}
                {move || match (form_loaded.get(), ctx.screen.get(), ctx.lang.get()) {
                    (false, ..) if ctx.refused_form.with(Option::is_some) => ().into_any(),
                    (false, ..) => view! { <p class="loading" role="status">{ctx.t().loading}</p> }.into_any(),
                    (true, Screen::Start, _) => view! { <start::StartScreen/> }.into_any(),
                    (true, Screen::Form, _) => view! { <pages::FormPages/> }.into_any(),
                    (true, Screen::Thanks(id), _) => view! { <start::Thanks id=id/> }.into_any(),
                    (true, Screen::Admin, _) => view! { <admin::AdminScreen/> }.into_any(),
                }}
            </main>
            <kiosk::IdleWarning/>
        </div>
    }
    .into_any()
}

/// The served form was refused: say so in both languages (no form, so no language to
/// choose), with every problem, so nobody takes ballots on it.
#[component]
fn RefusedForm(problems: Vec<String>) -> impl IntoView {
    view! {
        <section class="fatal" role="alert" data-testid="form-refused">
            <p lang="zh-CN">{i18n::ZH.form_refused}</p>
            <p lang="en">{i18n::EN.form_refused}</p>
            <ul class="problems">
                {problems.into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
            </ul>
        </section>
    }
}

/// Language switch and large-text toggle, on every screen.
#[component]
fn TopBar() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let pick = move |l: String| {
        ctx.lang.set(l.clone());
        if ctx.draft.get_untracked().is_some() {
            ctx.edit_draft(|d| d.lang = l);
        }
    };
    move || {
        let current = ctx.lang.get();
        let large = ctx.large.get();
        let t = ctx.t();
        let langs = ctx
            .form
            .get()
            .map(|f| f.form.languages.clone())
            .unwrap_or_else(|| vec!["zh-CN".into(), "en".into()]);
        view! {
            <header class="topbar">
                <span class="brand" aria-hidden="true">"评议"</span>
                <nav class="tools" aria-label=t.language>
                    {langs
                        .into_iter()
                        .map(|l| {
                            let short = if l.starts_with("en") { "en" } else { "zh" };
                            let pressed = (l == current).to_string();
                            view! {
                                <button class="tool" lang=l.clone() data-testid=format!("lang-{short}") aria-pressed=pressed
                                    on:click=move |_| pick(l.clone())>
                                    {i18n::texts(&l).lang_name}
                                </button>
                            }
                        })
                        .collect_view()}
                    <button class="tool" data-testid="large-text" aria-pressed=large.to_string()
                        on:click=move |_| ctx.large.set(!large)>
                        {if large { t.normal_text } else { t.large_text }}
                    </button>
                </nav>
            </header>
        }
    }
}
