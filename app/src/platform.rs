//! Everything that talks to the browser directly: local storage, the clock, randomness,
//! file downloads and uploads, focus, full screen, persistent storage and fetching the
//! form. The rest of the app calls these small functions and stays testable.

use analysis::time::format_rfc3339;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use gloo_storage::{LocalStorage, Storage};

use crate::store::KeyValue;

/// `window.localStorage` as a [`KeyValue`], through `gloo-storage`. Values are stored as the
/// plain text given (gloo's own `get`/`set` would wrap them in JSON quotes and escapes,
/// which costs room on every ballot line), so reads and writes go through the raw
/// `Storage` it hands out.
#[derive(Clone)]
pub struct BrowserStorage(());

impl BrowserStorage {
    /// The page's local storage, if the browser allows it (gloo-storage assumes it does,
    /// so ask first: a browser that blocks site data throws on the first access).
    pub fn local() -> Option<BrowserStorage> {
        web_sys::window()?.local_storage().ok().flatten()?;
        Some(BrowserStorage(()))
    }
}

fn describe(e: JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.name()) + ": " + &String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "unknown error".into())
}

impl KeyValue for BrowserStorage {
    fn get(&self, key: &str) -> Option<String> {
        LocalStorage::raw().get_item(key).ok().flatten()
    }
    fn set(&self, key: &str, value: &str) -> Result<(), String> {
        LocalStorage::raw().set_item(key, value).map_err(describe)
    }
    fn remove(&self, key: &str) {
        LocalStorage::delete(key);
    }
    fn keys(&self) -> Vec<String> {
        let raw = LocalStorage::raw();
        (0..LocalStorage::length())
            .filter_map(|i| raw.key(i).ok().flatten())
            .collect()
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_iso() -> String {
    format_rfc3339(now_ms() as i64)
}

/// Cryptographically random bytes (works outside secure contexts too).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Some(crypto) = web_sys::window().and_then(|w| w.crypto().ok()) {
        let _ = crypto.get_random_values_with_u8_array(&mut buf);
    }
    buf
}

/// Offers `content` as a file download named `filename`.
pub fn download(filename: &str, mime: &str, content: &str) -> Result<(), String> {
    let doc = web_sys::window()
        .and_then(|w| w.document())
        .ok_or("no document")?;
    let parts = js_sys::Array::of1(&JsValue::from_str(content));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts).map_err(describe)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(describe)?;
    let a: web_sys::HtmlAnchorElement = doc.create_element("a").map_err(describe)?.unchecked_into();
    a.set_href(&url);
    a.set_download(filename);
    doc.body()
        .ok_or("no body")?
        .append_child(&a)
        .map_err(describe)?;
    a.click();
    a.remove();
    // Revoking at once can cancel the download in some browsers; a minute is plenty.
    leptos::prelude::set_timeout(
        move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        },
        std::time::Duration::from_secs(60),
    );
    Ok(())
}

/// Reads a file the user picked, as text.
pub async fn read_file(file: web_sys::File) -> Result<String, String> {
    let text = JsFuture::from(file.text()).await.map_err(describe)?;
    text.as_string()
        .ok_or_else(|| "the file is not text".into())
}

/// Fetches a text resource (through the service worker when offline).
pub async fn fetch_text(url: &str) -> Result<String, String> {
    let window = web_sys::window().ok_or("no window")?;
    let resp: web_sys::Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(describe)?
        .unchecked_into();
    if !resp.ok() {
        return Err(format!("HTTP {}", resp.status()));
    }
    let text = JsFuture::from(resp.text().map_err(describe)?)
        .await
        .map_err(describe)?;
    text.as_string().ok_or_else(|| "not text".into())
}

/// Moves keyboard focus to the element with this id (after the DOM has caught up).
pub fn focus(id: String) {
    leptos::prelude::request_animation_frame(move || {
        if let Some(el) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id(&id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
            el.scroll_into_view_with_bool(false);
        }
    });
}

/// Scrolls to the top of the page.
pub fn scroll_top() {
    if let Some(w) = web_sys::window() {
        w.scroll_to_with_x_and_y(0.0, 0.0);
    }
}

/// Sets `<html lang>` so screen readers and fonts follow the chosen language.
pub fn set_document_lang(lang: &str) {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = el.set_attribute("lang", lang);
    }
}

/// Asks for full screen (must run inside a click handler).
pub fn request_fullscreen() {
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = el.request_fullscreen();
    }
}

/// Waits until the service worker is active (it has cached the whole app), or `max` at
/// most: a browser without service workers, or a page served where they cannot register,
/// returns at once or after `max`. Heavy storage work waits for this, because Chromium
/// keeps local storage and the worker's Cache Storage in one backend, and an install
/// queued behind megabytes of writing left a first visit without offline use.
pub async fn service_worker_settled(max: std::time::Duration) {
    let Some(window) = web_sys::window() else {
        return;
    };
    let ready = js_sys::Reflect::get(&window.navigator(), &JsValue::from_str("serviceWorker"))
        .ok()
        .filter(|sw| !sw.is_undefined() && !sw.is_null())
        .and_then(|sw| js_sys::Reflect::get(&sw, &JsValue::from_str("ready")).ok())
        .and_then(|p| p.dyn_into::<js_sys::Promise>().ok());
    let Some(ready) = ready else {
        return;
    };
    let ms = i32::try_from(max.as_millis()).unwrap_or(i32::MAX);
    let timeout = js_sys::Promise::new(&mut |resolve, _| {
        let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(js_sys::Promise::race(&js_sys::Array::of2(&ready, &timeout))).await;
}

/// Asks the browser to keep this site's storage when space runs short; `Some(true)` when granted.
pub async fn persist_storage() -> Option<bool> {
    let storage = web_sys::window()?.navigator().storage();
    let granted = JsFuture::from(storage.persist().ok()?).await.ok()?;
    granted.as_bool()
}

/// Marks the moment the form became usable (`performance.mark`), for load-time measurements.
pub fn mark_interactive() {
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark("pingyi-interactive");
    }
}

/// The `group` and `code` a link opened the page with (`/?group=npc&code=K7QM-3XWD`, the
/// QR code on a code slip). The code is taken out of the address bar at once
/// (`history.replaceState`), so neither the next person at a kiosk nor the history keeps it.
pub fn take_link_params() -> (Option<String>, Option<String>) {
    let Some(window) = web_sys::window() else {
        return (None, None);
    };
    let Ok(url) = window.location().href().and_then(|h| web_sys::Url::new(&h)) else {
        return (None, None);
    };
    let params = url.search_params();
    let (group, code) = (params.get("group"), params.get("code"));
    if code.is_some() {
        params.delete("code");
        if let Ok(history) = window.history() {
            let _ = history.replace_state_with_url(&JsValue::NULL, "", Some(&url.href()));
        }
    }
    (group, code)
}

/// Encodes one path segment of a URL (a device id may hold Chinese or a slash).
pub fn path_segment(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// Sends `body` as JSON to `url` with `method` (never through the service worker's cache,
/// which only answers GET). Returns the status, the body and the `Retry-After` header; an
/// error when no answer came (the network, or no answer within `timeout`).
pub async fn send_json(
    method: &str,
    url: &str,
    body: &str,
    timeout: std::time::Duration,
) -> Result<(u16, String, Option<String>), String> {
    let window = web_sys::window().ok_or("no window")?;
    let headers = web_sys::Headers::new().map_err(describe)?;
    headers
        .set("content-type", "application/json")
        .map_err(describe)?;
    let abort = web_sys::AbortController::new().map_err(describe)?;
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_body(&JsValue::from_str(body));
    init.set_headers(&headers);
    init.set_cache(web_sys::RequestCache::NoStore);
    init.set_signal(Some(&abort.signal()));
    // A server that accepts the connection and never answers must not stall the outbox.
    let timer = leptos::prelude::set_timeout_with_handle(move || abort.abort(), timeout).ok();
    let answer = async {
        let resp: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
            .await
            .map_err(describe)?
            .unchecked_into();
        let after = resp.headers().get("retry-after").ok().flatten();
        let text = JsFuture::from(resp.text().map_err(describe)?)
            .await
            .map_err(describe)?;
        Ok((resp.status(), text.as_string().unwrap_or_default(), after))
    }
    .await;
    if let Some(t) = timer {
        t.clear();
    }
    answer
}

/// Runs `work` holding the Web Lock `name` (`navigator.locks`), so that of several tabs
/// only one does it at a time; where the browser has no Web Locks (an insecure context),
/// runs it at once.
pub async fn exclusive(name: &str, work: std::pin::Pin<Box<dyn std::future::Future<Output = ()>>>) {
    use std::cell::RefCell;
    use std::rc::Rc;
    let work = Rc::new(RefCell::new(Some(work)));
    let locks = web_sys::window()
        .and_then(|w| js_sys::Reflect::get(&w.navigator(), &JsValue::from_str("locks")).ok())
        .filter(|l| !l.is_undefined() && !l.is_null());
    let request = locks.as_ref().and_then(|l| {
        js_sys::Reflect::get(l, &JsValue::from_str("request"))
            .ok()?
            .dyn_into::<js_sys::Function>()
            .ok()
    });
    if let (Some(locks), Some(request)) = (locks, request) {
        let inner = work.clone();
        let callback = wasm_bindgen::closure::Closure::once(move |_lock: JsValue| {
            let job = inner.borrow_mut().take();
            wasm_bindgen_futures::future_to_promise(async move {
                if let Some(job) = job {
                    job.await;
                }
                Ok(JsValue::UNDEFINED)
            })
        });
        if let Ok(held) = request.call2(&locks, &JsValue::from_str(name), callback.as_ref()) {
            let _ = JsFuture::from(js_sys::Promise::from(held)).await;
        }
    }
    // Without the lock (no Web Locks, or the request was refused) the work still runs.
    let job = work.borrow_mut().take();
    if let Some(job) = job {
        job.await;
    }
}

/// Calls `f` whenever the browser comes back online or the page becomes visible again.
pub fn on_online_or_visible(f: impl Fn() + 'static) {
    let f = std::rc::Rc::new(f);
    let Some(window) = web_sys::window() else {
        return;
    };
    let g = f.clone();
    let online = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || g());
    let _ = window.add_event_listener_with_callback("online", online.as_ref().unchecked_ref());
    online.forget();
    if let Some(doc) = window.document() {
        let d = doc.clone();
        let visible = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
            if !d.hidden() {
                f();
            }
        });
        let _ = doc
            .add_event_listener_with_callback("visibilitychange", visible.as_ref().unchecked_ref());
        visible.forget();
    }
}
