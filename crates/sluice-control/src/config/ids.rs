//! The intrusion detector: the `[ids]` section, and an interface's `ids`
//! key.
//!
//! ```toml
//! [ids]
//! rules = "/etc/sluice/local.rules"   # Snort-subset rules, read at start
//! mode = "prevent"                    # or "detect" (the default): alert only
//! log-per-second = 100                # alert lines a worker writes, on average
//! log-burst = 200                     # ... and at most in a burst
//!
//! [[interface]]
//! name = "outside"
//! ids = true                          # ipN-ids on its unicast arcs, after conntrack
//! ```
//!
//! The rule file is read, parsed and compiled when the configuration is
//! read, so a bad rule refuses the configuration (with the rule file's
//! line and the `ids.rules` key) instead of a data plane that starts
//! without its detector. The compiled set is shared by every worker.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sluice_fn::ids::{IdsConfig, Mode, RuleSet, parse_rules};
use toml::Spanned;

use super::{Checker, ConfigError};

/// `[ids]`: the rules and how matches are handled.
#[derive(Debug, Clone)]
pub struct IdsSettings {
    /// The rule file, as the configuration names it.
    pub rules_file: PathBuf,
    /// Its rules, compiled.
    pub rules: Arc<RuleSet>,
    /// Detect or prevent, and the alert log's rate.
    pub alerting: IdsConfig,
}

/// Two settings are the same when they name the same file with the same
/// rules and alert the same way (the compiled automata follow the rules).
impl PartialEq for IdsSettings {
    fn eq(&self, other: &IdsSettings) -> bool {
        self.rules_file == other.rules_file
            && self.rules.rules() == other.rules.rules()
            && self.alerting == other.alerting
    }
}

/// The word for `mode`.
pub fn mode_word(m: Mode) -> &'static str {
    match m {
        Mode::Detect => "detect",
        Mode::Prevent => "prevent",
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawIds {
    rules: Spanned<String>,
    mode: Option<Spanned<String>>,
    log_per_second: Option<Spanned<i64>>,
    log_burst: Option<Spanned<i64>>,
}

/// `[ids]`: reads and compiles the rule file.
pub(super) fn ids(c: &Checker<'_>, raw: &RawIds) -> Result<IdsSettings, ConfigError> {
    let mut alerting = IdsConfig::default();
    if let Some(v) = &raw.mode {
        alerting.mode = match v.get_ref().as_str() {
            "detect" => Mode::Detect,
            "prevent" => Mode::Prevent,
            other => {
                return c.err(
                    v.span(),
                    "ids.mode",
                    format!("`{other}`: use \"detect\" or \"prevent\""),
                );
            }
        };
    }
    if let Some(v) = &raw.log_per_second {
        alerting.log_per_second = c.int(v, "ids.log-per-second", 0, 1_000_000)?;
    }
    if let Some(v) = &raw.log_burst {
        alerting.log_burst = c.int(v, "ids.log-burst", 0, 1_000_000)?;
    }
    let file = raw.rules.get_ref();
    let span = raw.rules.span();
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => return c.err(span, "ids.rules", format!("cannot read `{file}`: {e}")),
    };
    // The parser's error names the rule file's line; the key and line of
    // the configuration say which file.
    let rules = match parse_rules(&text) {
        Ok(r) => r,
        Err(e) => return c.err(span, "ids.rules", format!("`{file}` {e}")),
    };
    if rules.is_empty() {
        return c.err(
            span,
            "ids.rules",
            format!("`{file}` has no rule: the detector would watch for nothing"),
        );
    }
    let set = match RuleSet::new(rules) {
        Ok(s) => s,
        Err(e) => return c.err(span, "ids.rules", format!("`{file}`: {e}")),
    };
    Ok(IdsSettings {
        rules_file: PathBuf::from(file),
        rules: Arc::new(set),
        alerting,
    })
}

/// An interface's `ids`: refused without `[ids]` (there are no rules to
/// run) and on a switched interface (features stand on the routed path).
pub(super) fn interface_ids(
    c: &Checker<'_>,
    v: &Spanned<bool>,
    configured: bool,
    switched: bool,
    key: &dyn Fn(&str) -> String,
) -> Result<bool, ConfigError> {
    let on = *v.get_ref();
    if on && !configured {
        return c.err(
            v.span(),
            key("ids"),
            "intrusion detection needs its rules: add an [ids] section with `rules = \"FILE\"`",
        );
    }
    if on && switched {
        return c.err(
            v.span(),
            key("ids"),
            "this interface switches frames (a bridge port or cross-connect); features stand on the routed path: give them to its bvi",
        );
    }
    Ok(on)
}

#[derive(Serialize)]
#[serde(rename_all = "kebab-case")]
pub(super) struct OutIds {
    rules: String,
    mode: &'static str,
    log_per_second: u64,
    log_burst: u64,
}

pub(super) fn ids_out(s: &IdsSettings) -> OutIds {
    OutIds {
        rules: s.rules_file.display().to_string(),
        mode: mode_word(s.alerting.mode),
        log_per_second: s.alerting.log_per_second,
        log_burst: s.alerting.log_burst,
    }
}
