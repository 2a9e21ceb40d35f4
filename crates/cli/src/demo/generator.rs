//! The demo's click events: a small web shop's visitors, simulated session by session.
//!
//! Each session belongs to a user (a pool of returning users, each on one device), arrives from
//! a referrer on a landing page that suits it, then browses: category and product pages, clicks
//! on the page, add-to-cart, the cart, checkout and sometimes a purchase, a few seconds to a
//! minute apart, until it leaves. A few sessions are crawlers (bot user agents, pages a second
//! apart); a few events come from a buggy client (a field missing, a bad timestamp, an unknown
//! event type) and a few are not JSON at all (cut short). The processor drops the first two
//! kinds and the third goes to its dead-letter stream; [`Kind`] says which each record is, so
//! the demo knows what the lake should end up with.
//!
//! Time is simulated: the timeline covers `history` before the demo started, replayed as fast
//! as the demo puts records, so the lake gets several hour partitions in a short run. Events of
//! the sessions open at once interleave in time order (a heap of each session's next event).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The four event types, in funnel order.
pub const EVENT_TYPES: [&str; 4] = ["page_view", "click", "add_to_cart", "purchase"];

/// What one generated record is, for the tally of what the pipeline should keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A well-formed event of a person: kept, enriched, in the lake.
    Valid,
    /// A crawler's page view: filtered out by the processor.
    Bot,
    /// JSON, but not a usable event: filtered out by the processor.
    Malformed,
    /// Not JSON: the processor fails on it, so it goes to the dead-letter stream.
    NotJson,
}

/// One record to put.
#[derive(Debug, Clone)]
pub struct Record {
    pub data: Vec<u8>,
    /// The session id: a session's events stay in order on one shard.
    pub partition_key: String,
    pub kind: Kind,
    /// For valid events: the type and the (UTC) `yyyy-MM-dd` and `HH` of the event time.
    pub event_type: &'static str,
    pub date_hour: (String, String),
}

const CATEGORIES: [&str; 5] = ["shoes", "jackets", "bags", "accessories", "sale"];
const PRODUCTS_PER_CATEGORY: u32 = 8;
/// Returning users; each keeps one device.
const USERS: u32 = 5_000;
const BOT_SESSION_PROBABILITY: f64 = 0.04;
const MALFORMED_PROBABILITY: f64 = 0.01;
const NOT_JSON_PROBABILITY: f64 = 0.004;
/// Mean seconds between two events of a person's session (uniform 4..=44 s).
const THINK_S: (u64, u64) = (4, 44);
const THINK_MEAN_S: f64 = 24.0;

/// Devices: (device label, user agent), each with its share of sessions.
const DEVICES: [(&str, &str, f64); 6] = [
    (
        "iPhone",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        0.30,
    ),
    (
        "Android phone",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
        0.25,
    ),
    (
        "iPad",
        "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        0.07,
    ),
    (
        "Windows PC",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
        0.22,
    ),
    (
        "Mac",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
        0.12,
    ),
    (
        "Linux PC",
        "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        0.04,
    ),
];

const BOTS: [&str; 3] = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
];

/// Referrers with their share of sessions; `None` is direct traffic.
const REFERRERS: [(Option<&str>, f64); 7] = [
    (None, 0.30),
    (Some("https://www.google.com/"), 0.32),
    (Some("https://www.bing.com/"), 0.05),
    (Some("https://www.instagram.com/"), 0.12),
    (Some("https://t.co/"), 0.05),
    (
        Some("https://mail.example-shop.com/newsletter?utm_source=newsletter"),
        0.10,
    ),
    (Some("https://blog.example.org/best-winter-jackets"), 0.06),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Home,
    Category(usize),
    Product(u32),
    Cart,
    Checkout,
}

impl Page {
    fn path(self) -> String {
        match self {
            Page::Home => "/".into(),
            Page::Category(c) => format!("/c/{}", CATEGORIES[c]),
            Page::Product(p) => format!("/p/{}", product_id(p)),
            Page::Cart => "/cart".into(),
            Page::Checkout => "/checkout".into(),
        }
    }
}

fn product_id(p: u32) -> String {
    format!("sku-{}", 1000 + p)
}

/// A product's price in cents, fixed per product.
fn price_cents(p: u32) -> u64 {
    1_999 + u64::from(p.wrapping_mul(2_654_435_761) % 180) * 100
}

#[derive(Debug)]
struct Session {
    user_id: String,
    session_id: String,
    device: &'static str,
    user_agent: &'static str,
    referrer: Option<&'static str>,
    bot: bool,
    page: Page,
    /// Events so far (the first is the landing page view).
    events: u32,
    /// Bots: pages left to crawl.
    pages_left: u32,
    cart: Vec<u32>,
    next_ms: i64,
    done: bool,
}

pub struct Generator {
    rng: StdRng,
    sessions: Vec<Session>,
    heap: BinaryHeap<Reverse<(i64, usize)>>,
    /// The latest event time (milliseconds since the epoch) a record may have.
    end_ms: i64,
    next_session: u64,
}

impl Generator {
    /// A generator whose `expected_events` events cover about `history_ms` of simulated time
    /// ending at `end_ms`: enough sessions run at once for that (at least 3).
    pub fn new(seed: u64, expected_events: u64, history_ms: i64, end_ms: i64) -> Generator {
        let history_s = (history_ms.max(1_000) as f64) / 1000.0;
        let concurrent = ((expected_events as f64) * THINK_MEAN_S / history_s)
            .round()
            .clamp(3.0, 2_000.0) as usize;
        let start_ms = end_ms - history_ms.max(0);
        let mut g = Generator {
            rng: StdRng::seed_from_u64(seed),
            sessions: Vec::with_capacity(concurrent),
            heap: BinaryHeap::with_capacity(concurrent),
            end_ms,
            next_session: 0,
        };
        for _ in 0..concurrent {
            // Spread the first arrivals over one think time.
            let at = start_ms + g.rng.gen_range(0..(THINK_S.1 as i64 * 1000));
            g.open_session(at);
        }
        g
    }

    fn open_session(&mut self, at_ms: i64) {
        let rng = &mut self.rng;
        self.next_session += 1;
        let session_id = format!(
            "s-{:08x}{:04x}",
            rng.gen::<u32>(),
            self.next_session & 0xffff
        );
        let bot = rng.gen_bool(BOT_SESSION_PROBABILITY);
        let session = if bot {
            Session {
                user_id: format!("anon-{:06x}", rng.gen_range(0..0x100_0000u32)),
                session_id,
                device: "bot",
                user_agent: BOTS[rng.gen_range(0..BOTS.len())],
                referrer: None,
                bot: true,
                page: Page::Home,
                events: 0,
                pages_left: rng.gen_range(10..40),
                cart: Vec::new(),
                next_ms: at_ms,
                done: false,
            }
        } else {
            let user = rng.gen_range(0..USERS);
            // A user's device is fixed: picked by their number.
            let mut u = (f64::from(user.wrapping_mul(2_246_822_519) % 10_000)) / 10_000.0;
            let mut device = DEVICES[0];
            for d in DEVICES {
                device = d;
                if u < d.2 {
                    break;
                }
                u -= d.2;
            }
            let referrer = pick(rng, &REFERRERS).unwrap_or(None);
            let page = landing(rng, referrer);
            Session {
                user_id: format!("u-{user:05}"),
                session_id,
                device: device.0,
                user_agent: device.1,
                referrer,
                bot: false,
                page,
                events: 0,
                pages_left: 0,
                cart: Vec::new(),
                next_ms: at_ms,
                done: false,
            }
        };
        let i = match self.sessions.iter().position(|s| s.done) {
            Some(i) => {
                self.sessions[i] = session;
                i
            }
            None => {
                self.sessions.push(session);
                self.sessions.len() - 1
            }
        };
        self.heap.push(Reverse((at_ms, i)));
    }

    /// The next record, in event-time order.
    pub fn next_record(&mut self) -> Record {
        loop {
            let Some(Reverse((_, i))) = self.heap.pop() else {
                // Never empty (a closed session opens another), but stay total.
                self.open_session(self.end_ms);
                continue;
            };
            if let Some(r) = self.step(i) {
                return r;
            }
        }
    }

    /// Emits session `i`'s next event and schedules the one after (or ends the session and
    /// opens another in its place).
    fn step(&mut self, i: usize) -> Option<Record> {
        let rng = &mut self.rng;
        let s = self.sessions.get_mut(i)?;
        let at_ms = s.next_ms.min(self.end_ms);
        let mut element = None;
        let mut product = None;
        let mut order = None;
        let event_type = if s.bot {
            if s.events > 0 {
                s.page = crawl(rng);
            }
            s.pages_left = s.pages_left.saturating_sub(1);
            "page_view"
        } else if s.events == 0 {
            "page_view"
        } else {
            let (event_type, page) = next_action(rng, s);
            if event_type == "click" {
                element = Some(click_target(rng, s.page));
            }
            if event_type == "add_to_cart" {
                if let Page::Product(p) = s.page {
                    s.cart.push(p);
                    product = Some(p);
                }
            }
            if event_type == "purchase" {
                let total: u64 = s.cart.iter().map(|p| price_cents(*p)).sum();
                order = Some((
                    format!("o-{:010}", rng.gen_range(0..10_000_000_000u64)),
                    total,
                    s.cart.len(),
                ));
                s.cart.clear();
            }
            s.page = page;
            event_type
        };
        if let (None, Page::Product(p)) = (product, s.page) {
            product = Some(p);
        }
        s.events += 1;
        let mut event = json!({
            "event_id": format!("e-{:016x}", rng.gen::<u64>()),
            "event_type": event_type,
            "user_id": s.user_id,
            "session_id": s.session_id,
            "page": s.page.path(),
            "referrer": s.referrer,
            "user_agent": s.user_agent,
            "device": s.device,
            "timestamp": iso_ms(at_ms),
        });
        if let Some(e) = element {
            event["element"] = json!(e);
        }
        if let Some(p) = product {
            event["product_id"] = json!(product_id(p));
            event["price"] = json!(price_cents(p) as f64 / 100.0);
        }
        if let Some((id, total, items)) = order {
            event["order_id"] = json!(id);
            event["price"] = json!(total as f64 / 100.0);
            event["items"] = json!(items);
        }
        let partition_key = s.session_id.clone();
        // What happens next: the session's next event, or it leaves and another arrives.
        let ends = if s.bot {
            s.pages_left == 0
        } else {
            let leave = match (event_type, s.page) {
                ("purchase", _) => 0.75,
                (_, Page::Home) => 0.08,
                (_, Page::Checkout) => 0.10,
                _ => 0.06,
            };
            s.events > 1 && rng.gen_bool(leave)
        };
        let gap_ms = if s.bot {
            rng.gen_range(300..2_000)
        } else {
            rng.gen_range(THINK_S.0 * 1000..=THINK_S.1 * 1000) as i64
        };
        let bot = s.bot;
        if ends {
            s.done = true;
            let arrive = at_ms + rng.gen_range(0..THINK_S.1 as i64 * 1000);
            self.open_session(arrive);
        } else {
            s.next_ms = at_ms + gap_ms;
            self.heap.push(Reverse((s.next_ms, i)));
        }
        let (kind, data) = if bot {
            (Kind::Bot, event.to_string().into_bytes())
        } else if self.rng.gen_bool(NOT_JSON_PROBABILITY) {
            // A client that lost the end of its payload.
            let text = event.to_string();
            let cut = text.len() / 2;
            (Kind::NotJson, text.as_bytes()[..cut].to_vec())
        } else if self.rng.gen_bool(MALFORMED_PROBABILITY) {
            malform(&mut self.rng, &mut event);
            (Kind::Malformed, event.to_string().into_bytes())
        } else {
            (Kind::Valid, event.to_string().into_bytes())
        };
        let stamp = iso_ms(at_ms);
        Some(Record {
            data,
            partition_key,
            kind,
            event_type,
            date_hour: (stamp[..10].to_string(), stamp[11..13].to_string()),
        })
    }
}

/// A value by weight from `(value, weight)` pairs.
fn pick<T: Copy>(rng: &mut StdRng, choices: &[(T, f64)]) -> Option<T> {
    let total: f64 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.gen_range(0.0..total);
    for (v, w) in choices {
        if x < *w {
            return Some(*v);
        }
        x -= w;
    }
    choices.last().map(|c| c.0)
}

fn random_product(rng: &mut StdRng) -> u32 {
    rng.gen_range(0..CATEGORIES.len() as u32 * PRODUCTS_PER_CATEGORY)
}

fn category_of(p: u32) -> usize {
    (p / PRODUCTS_PER_CATEGORY) as usize % CATEGORIES.len()
}

/// Where a session starts: search and social traffic lands on products, the newsletter on the
/// sale, a blog post on jackets, direct traffic on the home page.
fn landing(rng: &mut StdRng, referrer: Option<&str>) -> Page {
    match referrer {
        None => Page::Home,
        Some(r) if r.contains("newsletter") => Page::Category(4),
        Some(r) if r.contains("blog") => Page::Category(1),
        Some(r) if r.contains("google") || r.contains("bing") => {
            if rng.gen_bool(0.6) {
                Page::Product(random_product(rng))
            } else {
                Page::Category(rng.gen_range(0..CATEGORIES.len()))
            }
        }
        Some(_) => Page::Product(random_product(rng)),
    }
}

/// A crawler's next page: anything.
fn crawl(rng: &mut StdRng) -> Page {
    match rng.gen_range(0..10) {
        0 => Page::Home,
        1..=3 => Page::Category(rng.gen_range(0..CATEGORIES.len())),
        _ => Page::Product(random_product(rng)),
    }
}

/// A person's next event on their current page, and the page they are on after it.
fn next_action(rng: &mut StdRng, s: &Session) -> (&'static str, Page) {
    let x: f64 = rng.gen();
    let cart = !s.cart.is_empty();
    match s.page {
        Page::Home => {
            if x < 0.25 {
                ("click", Page::Home)
            } else {
                (
                    "page_view",
                    Page::Category(rng.gen_range(0..CATEGORIES.len())),
                )
            }
        }
        Page::Category(c) => {
            if x < 0.2 {
                ("click", s.page)
            } else if x < 0.85 {
                let p = c as u32 * PRODUCTS_PER_CATEGORY + rng.gen_range(0..PRODUCTS_PER_CATEGORY);
                ("page_view", Page::Product(p))
            } else if cart && x < 0.95 {
                ("page_view", Page::Cart)
            } else {
                ("page_view", Page::Home)
            }
        }
        Page::Product(p) => {
            if x < 0.25 {
                ("click", s.page)
            } else if x < 0.45 {
                ("add_to_cart", s.page)
            } else if x < 0.65 {
                let q = category_of(p) as u32 * PRODUCTS_PER_CATEGORY
                    + rng.gen_range(0..PRODUCTS_PER_CATEGORY);
                ("page_view", Page::Product(q))
            } else if cart && x < 0.85 {
                ("page_view", Page::Cart)
            } else {
                ("page_view", Page::Category(category_of(p)))
            }
        }
        Page::Cart => {
            if cart && x < 0.55 {
                ("page_view", Page::Checkout)
            } else if x < 0.7 {
                ("click", Page::Cart)
            } else {
                (
                    "page_view",
                    Page::Category(rng.gen_range(0..CATEGORIES.len())),
                )
            }
        }
        Page::Checkout => {
            if cart && x < 0.65 {
                ("purchase", Page::Checkout)
            } else if x < 0.8 {
                ("click", Page::Checkout)
            } else {
                ("page_view", Page::Cart)
            }
        }
    }
}

fn click_target(rng: &mut StdRng, page: Page) -> &'static str {
    let choices: &[&'static str] = match page {
        Page::Home => &["banner:winter-sale", "nav:search", "nav:account"],
        Page::Category(_) => &["filter:size", "filter:color", "sort:price", "nav:next-page"],
        Page::Product(_) => &["gallery:next-image", "button:size-guide", "tab:reviews"],
        Page::Cart => &["button:apply-coupon", "link:continue-shopping"],
        Page::Checkout => &["radio:express-shipping", "button:edit-address"],
    };
    choices[rng.gen_range(0..choices.len())]
}

/// Breaks an event the way a buggy client would.
fn malform(rng: &mut StdRng, event: &mut Value) {
    let Some(o) = event.as_object_mut() else {
        return;
    };
    match rng.gen_range(0..4) {
        0 => {
            o.remove("session_id");
        }
        1 => {
            o.insert("user_id".into(), Value::Null);
        }
        2 => {
            o.insert("timestamp".into(), json!("yesterday"));
        }
        _ => {
            o.insert("event_type".into(), json!("PageView"));
        }
    }
}

/// `2026-01-02T10:00:00.123Z` for milliseconds since the epoch.
pub fn iso_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let tod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

/// (year, month, day) of a day number since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_ms(1_767_348_000_123), "2026-01-02T10:00:00.123Z");
        assert_eq!(iso_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn sessions_make_sense() {
        let end = 1_767_348_000_000;
        let mut g = Generator::new(7, 5_000, 3 * 3_600_000, end);
        let mut kinds: HashMap<&str, u64> = HashMap::new();
        let mut by_session: HashMap<String, Vec<Value>> = HashMap::new();
        // Every event type of each session, whatever the client made of it.
        let mut types: HashMap<String, Vec<&str>> = HashMap::new();
        let mut hours = std::collections::BTreeSet::new();
        for _ in 0..5_000 {
            let r = g.next_record();
            let k = match r.kind {
                Kind::Valid => "valid",
                Kind::Bot => "bot",
                Kind::Malformed => "malformed",
                Kind::NotJson => "not_json",
            };
            *kinds.entry(k).or_default() += 1;
            if r.kind != Kind::Bot {
                types
                    .entry(r.partition_key.clone())
                    .or_default()
                    .push(r.event_type);
            }
            if r.kind == Kind::NotJson {
                assert!(serde_json::from_slice::<Value>(&r.data).is_err());
                continue;
            }
            let v: Value = serde_json::from_slice(&r.data).unwrap();
            if r.kind == Kind::Valid {
                assert_eq!(v["event_type"], r.event_type);
                assert_eq!(v["session_id"], r.partition_key.as_str());
                let ts = v["timestamp"].as_str().unwrap().to_string();
                assert_eq!(ts[..10], r.date_hour.0);
                assert_eq!(ts[11..13], r.date_hour.1);
                hours.insert(r.date_hour.clone());
                by_session
                    .entry(r.partition_key.clone())
                    .or_default()
                    .push(v);
            }
        }
        assert!(kinds["valid"] > 4_500, "{kinds:?}");
        assert!(kinds["bot"] > 20, "{kinds:?}");
        assert!(
            kinds.get("malformed").copied().unwrap_or(0) > 10,
            "{kinds:?}"
        );
        // Three hours of history: three or four hour partitions.
        assert!((3..=5).contains(&hours.len()), "{hours:?}");
        let mut purchases = 0;
        for (session, events) in &by_session {
            // A session is one user's, on one device, in time order, starting with a page view.
            assert_eq!(events[0]["event_type"], "page_view");
            let ts: Vec<&str> = events
                .iter()
                .map(|e| e["timestamp"].as_str().unwrap())
                .collect();
            assert!(ts.windows(2).all(|w| w[0] <= w[1]));
            assert!(events.iter().all(|e| e["user_id"] == events[0]["user_id"]));
            assert!(events.iter().all(|e| e["device"] == events[0]["device"]));
            // A purchase is on the checkout page, after an add to cart.
            for e in events {
                if e["event_type"] == "purchase" {
                    purchases += 1;
                    assert_eq!(e["page"], "/checkout");
                    assert!(e["price"].as_f64().unwrap() > 0.0);
                }
            }
            let t = &types[session];
            if let Some(p) = t.iter().position(|t| *t == "purchase") {
                assert!(t[..p].contains(&"add_to_cart"), "{t:?}");
            }
        }
        assert!(purchases > 5, "{purchases}");
        // The last events are near the end of the timeline, none after it.
        let last = iso_ms(end);
        assert!(by_session
            .values()
            .flatten()
            .all(|e| e["timestamp"].as_str().unwrap() <= last.as_str()));
    }

    #[test]
    fn seeded_runs_repeat() {
        let a: Vec<Vec<u8>> = {
            let mut g = Generator::new(42, 100, 3_600_000, 1_767_348_000_000);
            (0..100).map(|_| g.next_record().data).collect()
        };
        let mut g = Generator::new(42, 100, 3_600_000, 1_767_348_000_000);
        let b: Vec<Vec<u8>> = (0..100).map(|_| g.next_record().data).collect();
        assert_eq!(a, b);
    }
}
