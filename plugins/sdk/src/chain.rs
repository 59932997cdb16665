//! A module's releases declared once (contract 0.2): each release's `up`
//! step and, where it can be undone, its `down` step. The SDK derives the
//! rest: `describe` (which releases the plugin upgrades from and rolls back
//! to), `inspect` (from the release recorded in the module's state), the
//! walk from the stored release up to the plugin's, and the walk back down
//! in a rollback. No hand-kept list of releases, positions or
//! `unreachable!`.
//!
//! ```ignore
//! struct Widgets;
//!
//! impl ReleaseChain for Widgets {
//!     fn releases() -> Releases {
//!         Releases::new("mod-widgets")
//!             .release("1.0.0", create)
//!             .release("1.1.0", add_colour)
//!             .down(remove_colour)
//! }
//!
//! graft_plugin_sdk::export_migration!(graft_plugin_sdk::Chain<Widgets>);
//! ```
//!
//! The plugin of release 1.1.0 is this chain; that of 1.0.0 is the same
//! chain without its last release.

use crate::{
    data, state, Context, DataKind, Description, Error, Migration, Outcome, Result, StoredState,
};
use std::marker::PhantomData;

/// A step of a release: brings the data from the release before it up (or,
/// for a `down` step, back down to it).
pub type Step = fn(&Context) -> Result<()>;

struct Release {
    version: &'static str,
    up: Step,
    down: Option<Step>,
}

/// A module's releases, oldest first; the last is the plugin's own.
pub struct Releases {
    module: &'static str,
    releases: Vec<Release>,
    from_data: Option<fn() -> Result<StoredState>>,
}

impl Releases {
    /// The releases of `module` (the name of its ModuleDescriptor's id).
    pub fn new(module: &'static str) -> Self {
        Releases {
            module,
            releases: Vec::new(),
            from_data: None,
        }
    }

    /// The next release and its `up` step: from the release before it (for
    /// the first release: from nothing) to this one.
    pub fn release(mut self, version: &'static str, up: Step) -> Self {
        self.releases.push(Release {
            version,
            up,
            down: None,
        });
        self
    }

    /// The `down` step of the release added last: from it back to the
    /// release before it, exactly. Rolling back over several releases runs
    /// each one's `down`, newest first.
    pub fn down(mut self, down: Step) -> Self {
        if let Some(last) = self.releases.last_mut() {
            last.down = Some(down);
        }
        self
    }

    /// How to find the release of data that no plugin of this chain has
    /// recorded in the module's state (data written by releases built for
    /// contract 0.1): asked only where the state holds no release, and
    /// after a rollback, so that data this function recognises carry no
    /// state an older plugin could be misled by.
    pub fn from_data(mut self, inspect: fn() -> Result<StoredState>) -> Self {
        self.from_data = Some(inspect);
        self
    }

    fn versions(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.releases.iter().map(|r| r.version)
    }

    fn position(&self, version: &str) -> Option<usize> {
        self.versions().position(|v| v == version)
    }

    fn own(&self) -> Result<&Release> {
        self.releases
            .last()
            .ok_or_else(|| Error::failed(format!("{}: the release chain is empty", self.module)))
    }

    /// Who the plugin is: its own release, every earlier one as a release
    /// it upgrades from, and those its `down` steps reach.
    pub fn describe(&self) -> Description {
        let versions: Vec<&str> = self.versions().collect();
        let Some((own, earlier)) = versions.split_last() else {
            return Description::new(self.module, "0.0.0");
        };
        let reachable = self
            .releases
            .iter()
            .rev()
            .take_while(|r| r.down.is_some())
            .count();
        let rolls_back: Vec<&str> = earlier.iter().rev().take(reachable).copied().collect();
        Description::new(self.module, own)
            .upgrades_from(earlier)
            .rolls_back_to(&rolls_back)
    }

    /// The release the data is at: as the module's state records it, else
    /// as `from_data` finds it, else empty.
    pub fn inspect(&self) -> Result<StoredState> {
        if let Some(release) = state::release()? {
            return Ok(StoredState::Release(release));
        }
        match self.from_data {
            Some(inspect) => inspect(),
            None => Ok(StoredState::Empty),
        }
    }

    /// From the stored release up to the plugin's own, one release's `up`
    /// at a time, the state recording each.
    pub fn upgrade(&self, ctx: &Context) -> Result<Outcome> {
        let own = self.own()?.version;
        let start = match self.inspect()? {
            StoredState::Empty => 0,
            StoredState::Release(release) => match self.position(&release) {
                Some(_) if release == own => return Ok(Outcome::Unchanged),
                Some(position) => position + 1,
                None => {
                    return Err(Error::unsupported(format!(
                        "tenant {} holds {} {release}, which this plugin ({own}) does not know: \
                         a newer release is downgraded with its own package",
                        ctx.tenant, self.module
                    )))
                }
            },
            StoredState::Unrecognised(what) => {
                return Err(Error::failed(format!("storage not recognised: {what}")))
            }
        };
        for release in &self.releases[start..] {
            (release.up)(ctx)?;
            state::set_release(release.version)?;
        }
        Ok(if start == 0 {
            Outcome::Created
        } else {
            Outcome::Upgraded
        })
    }

    /// From the stored release back down to `ctx`'s target, one release's
    /// `down` at a time, newest first.
    pub fn rollback(&self, ctx: &Context) -> Result<Outcome> {
        let target = ctx.release_to();
        let stored = match self.inspect()? {
            StoredState::Release(release) => release,
            other => {
                return Err(Error::unsupported(format!(
                    "rollback to {target} needs data at a release of {}, found {other:?}",
                    self.module
                )))
            }
        };
        let (Some(from), Some(to)) = (self.position(&stored), self.position(target)) else {
            return Err(Error::unsupported(format!(
                "{} {} rolls back to [{}], not from {stored} to {target}",
                self.module,
                self.own()?.version,
                self.describe().rolls_back_to.join(", ")
            )));
        };
        if from == to {
            return Ok(Outcome::Unchanged);
        }
        if from < to {
            return Err(Error::unsupported(format!(
                "storage is at {} {stored}, older than {target}: upgrade instead",
                self.module
            )));
        }
        for release in self.releases[to + 1..=from].iter().rev() {
            let Some(down) = release.down else {
                return Err(Error::unsupported(format!(
                    "{} {} has no down step: cannot roll back to {target}",
                    self.module, release.version
                )));
            };
            down(ctx)?;
        }
        // Where the data tell their release, keep no state that a plugin
        // of that release (which may not read it) would leave stale.
        let told = match self.from_data {
            Some(inspect) => {
                state::remove(state::RELEASE_KEY)?;
                matches!(inspect()?, StoredState::Release(r) if r == target)
            }
            None => false,
        };
        if !told {
            state::set_release(target)?;
        }
        Ok(Outcome::Upgraded)
    }
}

/// A plugin made of a release chain. Export it with
/// `graft_plugin_sdk::export_migration!(graft_plugin_sdk::Chain<MyPlugin>)`.
pub trait ReleaseChain {
    /// The module's releases up to this plugin's.
    fn releases() -> Releases;

    /// Load vendor data of one kind; by default every collection folder of
    /// the package's data folder, through the overlay.
    fn load_data(_ctx: &Context, kind: DataKind) -> Result<Outcome> {
        data::load_folder(kind)
    }
}

/// The [`Migration`] a [`ReleaseChain`] makes.
pub struct Chain<T>(PhantomData<T>);

impl<T: ReleaseChain> Migration for Chain<T> {
    fn describe() -> Description {
        T::releases().describe()
    }

    fn inspect() -> StoredState {
        T::releases()
            .inspect()
            .unwrap_or_else(|e| StoredState::Unrecognised(e.to_string()))
    }

    fn upgrade(ctx: &Context) -> Result<Outcome> {
        T::releases().upgrade(ctx)
    }

    fn rollback(ctx: &Context) -> Result<Outcome> {
        T::releases().rollback(ctx)
    }

    fn load_data(ctx: &Context, kind: DataKind) -> Result<Outcome> {
        T::load_data(ctx, kind)
    }
}
