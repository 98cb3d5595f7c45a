//! Where the config a command acts on lives: the scope (user or system
//! layer), the layout (Zoi ≥ 1.26 reads XDG paths, Zoi ≤ 1.25 `~/.zoi`),
//! and the paths that follow from them.
//!
//! The layout is chosen, in order: `--layout`; else the installed Zoi's
//! version (the one that will read the file); else the legacy layout when
//! only its file exists; else XDG. The reason is kept, for `status` and
//! the apply report to say why this file was chosen.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::zoi::paths::{Env, LayoutKind};

/// Which config layer a command acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    System,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::System => "system",
        }
    }

    /// The bundle file carrying this scope's layer.
    pub fn bundle_layer(self) -> &'static str {
        match self {
            Scope::User => crate::bundle::CONFIG_USER,
            Scope::System => crate::bundle::CONFIG_SYSTEM,
        }
    }
}

/// The file a command acts on, and how it was chosen.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub scope: Scope,
    pub layout: LayoutKind,
    pub layout_reason: String,
    pub config_path: PathBuf,
    pub state_dir: PathBuf,
    /// Zoi's user data dir (user scope).
    pub zoi_data_dir: Option<PathBuf>,
}

/// Decides between the XDG and the legacy layout: `--layout`, else the
/// installed Zoi's version, else which file exists (XDG when neither).
pub fn resolve_target(
    env: &Env,
    scope: Scope,
    layout: Option<LayoutKind>,
    zoi_version: Option<&semver::Version>,
) -> Result<Target> {
    let (layout, reason) = match (layout, zoi_version) {
        (Some(l), _) => (l, "--layout".to_string()),
        (None, Some(v)) => (LayoutKind::for_version(v), format!("installed zoi {v}")),
        (None, None) => {
            let xdg = env.user_config(LayoutKind::Xdg)?;
            let legacy = env.user_config(LayoutKind::Legacy)?;
            if !xdg.exists() && legacy.exists() {
                (
                    LayoutKind::Legacy,
                    format!("only {} exists", legacy.display()),
                )
            } else {
                (LayoutKind::Xdg, "default (no zoi found)".to_string())
            }
        }
    };
    let (config_path, zoi_data_dir) = match scope {
        Scope::User => (env.user_config(layout)?, Some(env.user_data(layout)?)),
        Scope::System => (env.system_config(), None),
    };
    Ok(Target {
        scope,
        layout,
        layout_reason: reason,
        config_path,
        state_dir: env.state_dir(scope == Scope::System)?,
        zoi_data_dir,
    })
}

pub(super) fn layout_name(l: LayoutKind) -> &'static str {
    match l {
        LayoutKind::Xdg => "xdg",
        LayoutKind::Legacy => "legacy",
    }
}
