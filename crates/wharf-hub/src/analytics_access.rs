//! Who sees a namespace's analytics: its members (or the user it belongs to) and
//! administrators, when an administrator gave it analytics or it is in a trusted-content
//! program. Administrators switch analytics on and off per namespace.

use wharf_db::AnalyticsNamespaceRow;

use crate::repos::Badge;
use crate::{Hub, HubError, User};

/// Repositories one series may show at most.
pub const MAX_SERIES_REPOS: usize = 50;

/// What a viewer allowed to see a namespace's analytics learns about them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalyticsAccess {
    /// `user` or `organization`.
    pub kind: &'static str,
    /// Whether an administrator enabled analytics for the namespace.
    pub enabled_by_admin: bool,
    /// The namespace's program (which always gives analytics).
    pub program: Option<Badge>,
}

impl AnalyticsAccess {
    /// Whether the namespace has analytics at all.
    pub fn enabled(&self) -> bool {
        self.enabled_by_admin || self.program.is_some()
    }
}

impl Hub {
    /// Whether `who` may see the analytics of `namespace`, and whether it has any. Anyone
    /// else (signed out, not a member) is told the namespace does not exist, exactly as for
    /// a missing one.
    pub async fn analytics_access(
        &self,
        who: Option<&User>,
        namespace: &str,
    ) -> Result<AnalyticsAccess, HubError> {
        let missing = || HubError::NotFound(format!("namespace {namespace:?}"));
        let Some(who) = who else {
            return Err(missing());
        };
        let Some(kind) = self.namespace_kind(namespace).await? else {
            return Err(missing());
        };
        let inside = who.acts_as_admin()
            || (kind == "user" && who.name == namespace)
            || (kind == "organization" && self.is_org_member(namespace, who).await?);
        if !inside {
            return Err(missing());
        }
        Ok(AnalyticsAccess {
            kind,
            enabled_by_admin: self.db.analytics_enabled(namespace).await?,
            program: self.program_of(namespace).await?,
        })
    }

    /// One page of the namespaces with analytics, and how many there are (administrators).
    pub async fn analytics_namespaces(
        &self,
        who: &User,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<AnalyticsNamespaceRow>), HubError> {
        require_admin(who)?;
        Ok(self
            .db
            .analytics_namespace_page(i64::from(offset), i64::from(limit))
            .await?)
    }

    /// Gives `namespace` analytics (administrators). Enabling twice is not an error.
    pub async fn enable_analytics(&self, who: &User, namespace: &str) -> Result<(), HubError> {
        require_admin(who)?;
        if self.namespace_kind(namespace).await?.is_none() {
            return Err(HubError::NotFound(format!("namespace {namespace:?}")));
        }
        Ok(self.db.enable_analytics(namespace, &who.name).await?)
    }

    /// Takes away the analytics an administrator gave `namespace`; a program's stay.
    pub async fn disable_analytics(&self, who: &User, namespace: &str) -> Result<(), HubError> {
        require_admin(who)?;
        if !self.db.disable_analytics(namespace).await? {
            return Err(HubError::NotFound(format!(
                "analytics enabled by an administrator for namespace {namespace:?}"
            )));
        }
        Ok(())
    }
}

fn require_admin(who: &User) -> Result<(), HubError> {
    if who.acts_as_admin() {
        Ok(())
    } else {
        Err(HubError::Forbidden(
            "only administrators (signed in with their password or an admin-scope token) choose which namespaces have analytics".into(),
        ))
    }
}
