//! The browser entry point: a panic hook, then the console.

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(pingyi_console::Console);
}
