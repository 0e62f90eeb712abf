//! Every key of the console, once: what the help (`?`) lists, what the
//! README's console section and the man page print, and what the footers
//! of the screens are checked against (tests below and in `cli`).

use super::symbols::Symbols;

/// Where a key acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Everywhere,
    /// Every screen with a list or a page (not in a dialog).
    Screens,
    Matrix,
    Servers,
    Findings,
    Log,
    History,
    Detail,
    /// A dialog taller than the terminal.
    Dialog,
    /// The push's confirmation (the plan, before anything is written).
    PushConfirm,
}

impl Place {
    pub fn name(self) -> &'static str {
        match self {
            Place::Everywhere => "everywhere",
            Place::Screens => "every screen",
            Place::Matrix => "Matrix",
            Place::Servers => "Servers",
            Place::Findings => "Findings",
            Place::Log => "Log",
            Place::History => "History",
            Place::Detail => "Detail",
            Place::Dialog => "a dialog taller than the terminal",
            Place::PushConfirm => "the push's confirmation",
        }
    }
}

/// A key (or keys that do the same), where, and what it does.
#[derive(Debug)]
pub struct KeyDoc {
    /// The keys' names; [`ARROWS`] and [`UPDOWN`] are drawn with the
    /// active symbols.
    pub keys: &'static [&'static str],
    pub places: &'static [Place],
    pub what: &'static str,
    /// Offered only when servers may be changed (not under --read-only).
    pub changes_servers: bool,
}

/// The four arrow keys.
pub const ARROWS: &str = "arrows";
/// The up and down arrow keys.
pub const UPDOWN: &str = "up/down";

const fn k(keys: &'static [&'static str], places: &'static [Place], what: &'static str) -> KeyDoc {
    KeyDoc {
        keys,
        places,
        what,
        changes_servers: false,
    }
}

const fn changes(
    keys: &'static [&'static str],
    places: &'static [Place],
    what: &'static str,
) -> KeyDoc {
    KeyDoc {
        keys,
        places,
        what,
        changes_servers: true,
    }
}

use Place::*;

/// The console's keys, in the order the help lists them.
pub const KEYS: &[KeyDoc] = &[
    k(
        &["?", "F1"],
        &[Everywhere],
        "this help (Esc, q or ? closes it)",
    ),
    k(&["q", "F10"], &[Everywhere], "quit"),
    k(
        &["Ctrl-C"],
        &[Everywhere],
        "quit; during a push, stop it (it rolls back what it changed)",
    ),
    k(
        &["1", "2", "3", "4", "5"],
        &[Screens],
        "Matrix, Servers, Findings, Log, History",
    ),
    k(&["Tab", "Shift-Tab"], &[Screens], "next / previous screen"),
    k(&[ARROWS, "h", "j", "k", "l"], &[Screens], "move"),
    k(&["PgUp", "PgDn"], &[Screens], "a page up / down"),
    k(&["g", "Home"], &[Screens], "to the top"),
    k(
        &["G", "End"],
        &[Screens],
        "to the bottom (on the Log: the newest line)",
    ),
    k(&["r", "F5"], &[Screens], "rescan every server"),
    k(
        &["R"],
        &[Screens],
        "rescan the selected server (a column of the Matrix, a row of Servers)",
    ),
    k(
        &["a"],
        &[Screens],
        "show Cora sites only / every IIS application (footer: a Cora / a all)",
    ),
    k(
        &["Esc"],
        &[Screens],
        "clears the filter; else back where Enter came from, more than one level (Detail, Matrix, Findings), and from a push to the list",
    ),
    k(
        &["/"],
        &[Matrix, Servers, Findings, Log, History],
        "filter by substring: sites or servers, findings, log lines, pushes",
    ),
    k(
        &["s"],
        &[Matrix, Servers, Findings, History],
        "sort by the next column (the title says which)",
    ),
    k(
        &["S"],
        &[Matrix, Servers, Findings, History],
        "reverse the order",
    ),
    k(
        &["Enter"],
        &[Matrix],
        "detail of the site (first column) or of the site on one server",
    ),
    changes(
        &["p"],
        &[Matrix, Detail],
        "push a key set to the site (choose, plan, confirm)",
    ),
    k(
        &["v"],
        &[Matrix, Detail],
        "reveal the keys of a site on one server, after a confirmation; they hide after 10 s or at any key",
    ),
    k(&["Enter"], &[Findings], "go to the site in the Matrix"),
    k(
        &["J", "K"],
        &[Matrix, Findings],
        "scroll the selected site's findings / the What to do panel (its border says how many lines are below)",
    ),
    k(
        &["w"],
        &[Log],
        "wrap long lines (the default) / cut them at the edge, marked, to scroll sideways",
    ),
    k(
        &["left/right", "h", "l"],
        &[Log],
        "with lines cut (w): scroll them sideways",
    ),
    k(
        &["Enter"],
        &[History],
        "the push server by server (Esc back to the list)",
    ),
    changes(
        &["u"],
        &[History],
        "roll the push back, after a confirmation (Cancel is the default)",
    ),
    k(
        &["b"],
        &[History],
        "the backups beside the selected push's site on every server, read again (b or Esc back to the pushes)",
    ),
    k(
        &["w"],
        &[PushConfirm],
        "save the plan to a file (asks for its name) instead of pushing: for review, then `farmkey apply FILE` (not for generated keys: import a key file)",
    ),
    k(
        &[UPDOWN, "j", "k", "PgUp", "PgDn", "Home", "End", "g", "G"],
        &[Dialog],
        "scroll its text (left/right and Tab still move between its buttons)",
    ),
];

/// A key's name as drawn with `symbols` (arrows as arrows).
pub fn key_name(key: &'static str, symbols: &Symbols) -> &'static str {
    match key {
        ARROWS => symbols.arrows,
        UPDOWN => symbols.updown,
        k => k,
    }
}

impl KeyDoc {
    /// Its keys, drawn with `symbols`: `? F1`.
    pub fn keys_text(&self, symbols: &Symbols) -> String {
        let names: Vec<&str> = self.keys.iter().map(|k| key_name(k, symbols)).collect();
        names.join(" ")
    }

    pub fn places_text(&self) -> String {
        let names: Vec<&str> = self.places.iter().map(|p| p.name()).collect();
        names.join(", ")
    }

    /// Whether it is offered: what changes servers is not under --read-only.
    pub fn offered(&self, read_only: bool) -> bool {
        !(read_only && self.changes_servers)
    }
}

/// The keys offered, grouped by where they act, in the table's order.
pub fn groups(read_only: bool) -> Vec<(String, Vec<&'static KeyDoc>)> {
    let mut out: Vec<(String, Vec<&'static KeyDoc>)> = Vec::new();
    for doc in KEYS.iter().filter(|d| d.offered(read_only)) {
        let place = doc.places_text();
        match out.last_mut() {
            Some((p, docs)) if *p == place => docs.push(doc),
            _ => out.push((place, vec![doc])),
        }
    }
    out
}

/// The README's table of keys (between `<!-- keys -->` and `<!-- /keys -->`).
pub fn markdown() -> String {
    let mut out = String::from("| key | where | what |\n|---|---|---|\n");
    for doc in KEYS {
        let keys: Vec<String> = doc
            .keys
            .iter()
            .map(|k| match *k {
                ARROWS => "arrows".to_string(),
                UPDOWN => "`↑`/`↓`".to_string(),
                k => format!("`{k}`"),
            })
            .collect();
        let mut what = doc.what.to_string();
        if doc.changes_servers {
            what.push_str("; not offered under `--read-only`");
        }
        out.push_str(&format!(
            "| {} | {} | {what} |\n",
            keys.join(", "),
            doc.places_text()
        ));
    }
    out
}

/// The man page's section of the console's keys (roff).
pub fn roff() -> String {
    let esc = |s: &str| s.replace('\\', "\\e").replace('-', "\\-");
    let mut out = String::from(".SH \"CONSOLE KEYS\"\n");
    for doc in KEYS {
        out.push_str(&format!(
            ".TP\n\\fB{}\\fR ({})\n{}{}\n",
            esc(&doc.keys_text(&super::symbols::ASCII)),
            esc(&doc.places_text()),
            esc(doc.what),
            if doc.changes_servers {
                " (not under \\-\\-read\\-only)"
            } else {
                ""
            }
        ));
    }
    out
}

/// Every mark the console draws, with what it means, in `symbols`.
pub fn marks(s: &Symbols) -> Vec<(&'static str, &'static str)> {
    let mut out = vec![
        (s.ok, "site in step: read on every server, nothing wrong"),
        (s.drift, "site out of step"),
        (s.unverified, "site unverified: a server was not read"),
        (s.error, "error finding"),
        (s.warning, "warning finding"),
        (s.info, "information finding"),
        (s.pointer, "the selected row"),
    ];
    out.extend(super::symbols::legend(s));
    out.extend([
        (s.ellipsis, "text cut here"),
        (s.above, "more above"),
        (s.below, "more below"),
    ]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::screens::{ScreenId, Screens};
    use crate::console::symbols::UNICODE;
    use crate::console::ui::Ui;

    fn place_of(id: ScreenId) -> Place {
        match id {
            ScreenId::Matrix => Matrix,
            ScreenId::Servers => Servers,
            ScreenId::Findings => Findings,
            ScreenId::Log => Log,
            ScreenId::History => History,
            ScreenId::Detail => Detail,
        }
    }

    /// The keys of the table that act on screen `id`.
    fn keys_on(id: ScreenId) -> Vec<&'static str> {
        KEYS.iter()
            .filter(|d| {
                d.places
                    .iter()
                    .any(|p| matches!(p, Everywhere | Screens) || *p == place_of(id))
            })
            .flat_map(|d| d.keys.iter().map(|k| key_name(k, &UNICODE)))
            .collect()
    }

    #[test]
    fn every_footer_key_is_in_the_table() {
        let ui = Ui {
            theme: crate::console::theme::Theme::built_in("default", false).unwrap(),
            symbols: UNICODE,
            tick: 0,
        };
        let screens = Screens::default();
        let ids = ScreenId::TABS.iter().chain([&ScreenId::Detail]);
        for &id in ids {
            let known = keys_on(id);
            for (key, what) in screens.get(id).keys(&ui) {
                for k in key.split('/') {
                    // The arrows' short forms are the arrows.
                    let k = if k == UNICODE.updown {
                        UNICODE.arrows
                    } else {
                        k
                    };
                    assert!(
                        known.contains(&k),
                        "{id:?}'s footer offers {k:?} ({what}), which the key table does not list there"
                    );
                }
            }
        }
    }

    #[test]
    fn no_key_is_listed_twice_for_a_place() {
        let mut seen = Vec::new();
        for doc in KEYS {
            for key in doc.keys {
                for place in doc.places {
                    assert!(
                        !seen.contains(&(*key, *place)),
                        "{key} is listed twice for {place:?}"
                    );
                    seen.push((*key, *place));
                }
            }
        }
    }

    #[test]
    fn read_only_offers_neither_push_nor_rollback() {
        let offered: Vec<&str> = groups(true)
            .into_iter()
            .flat_map(|(_, docs)| docs)
            .flat_map(|d| d.keys.iter().copied())
            .collect();
        assert!(!offered.contains(&"p") && !offered.contains(&"u"));
        let all: Vec<&str> = groups(false)
            .into_iter()
            .flat_map(|(_, docs)| docs)
            .flat_map(|d| d.keys.iter().copied())
            .collect();
        assert!(all.contains(&"p") && all.contains(&"u"));
    }

    #[test]
    fn the_readme_lists_the_keys_of_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).unwrap();
        let start = readme
            .find("<!-- keys -->\n")
            .expect("README has a <!-- keys --> marker")
            + "<!-- keys -->\n".len();
        let end = readme
            .find("<!-- /keys -->")
            .expect("README has a <!-- /keys --> marker");
        if std::env::var_os("FARMKEY_BLESS").is_some() {
            let blessed = format!("{}{}{}", &readme[..start], markdown(), &readme[end..]);
            std::fs::write(path, blessed).unwrap();
            return;
        }
        assert_eq!(
            &readme[start..end],
            markdown(),
            "README's console keys differ from the key table (src/console/keys.rs): paste markdown()'s output"
        );
    }

    #[test]
    fn marks_are_in_the_active_symbols() {
        let ascii = marks(&crate::console::symbols::ASCII);
        assert!(ascii.iter().all(|(m, _)| m.is_ascii()));
        assert!(ascii.contains(&("!=", "site out of step")));
        assert!(marks(&UNICODE).contains(&("≠", "site out of step")));
    }
}
