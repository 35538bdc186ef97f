//! The device store at its limits: how many default-form ballots one browser holds, the
//! warning at 80 %, and a full store that refuses the next ballot and keeps every old one.

use crate::flows;
use crate::harness::Session;

/// Copies the one stored ballot line into new chunks (fresh ids, same answers) until
/// local storage holds `limit` UTF-16 units, or until the browser refuses when `limit` is
/// `None` (and then fills the last few units with empty values under other keys, so the
/// browser takes nothing more at all). Returns how many lines were added. Only the chunk layout is assumed: keys
/// under `pingyi.v1.b.` (the copies use the older `pingyi.v1.b.NNNNNN` names, which the
/// store still reads), a header line, then one ballot per line, the id first.
async fn replicate(s: &Session, limit: Option<u64>) -> u64 {
    let limit = limit.map_or("Infinity".to_string(), |l| l.to_string());
    let script = format!(
        r#"
        const prefix = 'pingyi.v1.b.';
        const keys = Object.keys(localStorage).filter(k => k.startsWith(prefix)).sort();
        const [header, line] = localStorage.getItem(keys[0]).split('\n');
        const row = JSON.parse(line);
        const used = () => Object.keys(localStorage).reduce((n, k) => n + k.length + localStorage.getItem(k).length, 0);
        const limit = {limit};
        let added = 0, per = 200, chunk = keys.length + 1, total = used();
        while (true) {{
          const lines = [];
          for (let j = 0; j < per; j++) {{ row[0] = 'copy-' + String(added + j).padStart(8, '0'); lines.push(JSON.stringify(row)); }}
          const value = header + '\n' + lines.join('\n');
          const key = prefix + String(chunk).padStart(6, '0');
          if (total + key.length + value.length > limit) {{ if (per === 1) break; per = Math.max(1, Math.floor(per / 4)); continue; }}
          try {{ localStorage.setItem(key, value); }} catch (e) {{ if (per === 1) break; per = Math.max(1, Math.floor(per / 4)); continue; }}
          added += per; chunk += 1; total += key.length + value.length;
        }}
        if (limit === Infinity) {{
          // Then whatever room the last line left, so that not one more unit fits.
          let n = 0;
          while (true) {{
            try {{ localStorage.setItem('zz.filler.' + n, ''); n += 1; }} catch (e) {{ break; }}
          }}
          // A shorter key may still fit where the last long one did not: down to one unit.
          for (const k of ['zz.f', 'z0', 'z1', 'z2', 'z3', 'z4', 'z5', 'z6', 'z7', 'z8', 'z9', 'y', 'x', 'w', 'v', 'u']) {{
            try {{ localStorage.setItem(k, ''); }} catch (e) {{}}
          }}
        }}
        return added;"#
    );
    s.js(&script).await.as_u64().expect("a count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_warning_and_a_full_store_that_keeps_every_ballot() {
    let s = Session::open().await;
    // A device away from its server: the copies below stay waiting, not sent.
    s.block_api(true).await;
    let answers = flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    s.find("start").await;
    // The room is probed once the service worker has cached the app, 1.5 s later.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let capacity = loop {
        let probed = s
            .js("return Number(localStorage.getItem('pingyi.v1.capacity'))")
            .await
            .as_u64()
            .unwrap();
        if probed > 0 || std::time::Instant::now() > deadline {
            break probed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        capacity > 1_000_000,
        "capacity probed at first start: {capacity}"
    );

    // 85 % full: both the start screen and the admin screen say so, ballots still go in.
    let first = replicate(&s, Some(capacity * 85 / 100)).await;
    s.reload().await;
    s.find("storage-warning").await;
    assert!(!s.shown("storage-full").await);
    assert!(!s.disabled("start-button").await);

    // Full to the last line the browser accepts.
    let rest = replicate(&s, None).await;
    let held = 1 + first + rest;
    println!("capacity: {held} default-form ballots (with comments) in {capacity} UTF-16 units of local storage");
    assert!(
        held >= 20_000,
        "one device must hold at least 20,000 ballots, holds {held}"
    );
    s.reload().await;
    s.find("storage-full").await;
    assert!(s.page_text().await.contains("请联系工作人员导出数据"));
    assert!(s.disabled("start-button").await);

    // Every ballot is still there and exports whole. The official can still choose a PIN,
    // and the export is recorded, on a device where not one more unit fits.
    assert!(
        s.js(
            "try { localStorage.setItem('zz.more', '') ; return false } catch (e) { return true }"
        )
        .await
            == true,
        "the browser takes nothing more"
    );
    flows::open_admin(&s, "2580", true).await;
    s.find("admin-storage-full").await;
    assert_eq!(flows::admin_total(&s).await as u64, held);
    let ballots = flows::export(&s, true).await;
    assert_eq!(ballots.len() as u64, held);
    assert_eq!(
        ballots[0].answers, answers,
        "the real ballot comes back first and unchanged"
    );
    assert!(
        ballots[1..].iter().all(|b| b.answers == answers),
        "the copies read back too"
    );
    flows::clear_device(&s).await;
    s.close().await;
}
