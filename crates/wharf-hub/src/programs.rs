//! Trusted-content programs: an organization applies to the Verified Publisher or the
//! Sponsored Open Source program with its publisher profile; an administrator approves,
//! rejects or revokes. An approved program gives the organization's repositories a badge,
//! repository logos and priority in search; later perks (analytics, scanning, rate-limit
//! exemption) ask `Hub::program_of` — this is the one place membership is decided.

use bytes::Bytes;
use wharf_db::{ApplicationRow, NamespaceKind, NewApplication, OrgRole};
use wharf_oci::{Digest, OFFICIAL_NAMESPACE};

use crate::content::check_profile_logo;
use crate::repos::Badge;
use crate::{Hub, HubError, User};

/// A publisher profile, as an organization submits it.
#[derive(Debug, Clone)]
pub struct PublisherProfile {
    pub legal_name: String,
    pub website: String,
    pub phone: String,
    pub email: String,
    pub logo: Bytes,
}

/// What an administrator does with an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Reject,
    Revoke,
}

impl Decision {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approve" | "approved" => Some(Self::Approve),
            "reject" | "rejected" => Some(Self::Reject),
            "revoke" | "revoked" => Some(Self::Revoke),
            _ => None,
        }
    }
}

fn check_field(name: &str, value: &str, max: usize) -> Result<(), HubError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(HubError::InvalidInput(format!("the {name} is required")));
    }
    if v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(HubError::InvalidInput(format!(
            "the {name} must be one line of at most {max} characters"
        )));
    }
    Ok(())
}

fn check_profile(p: &PublisherProfile) -> Result<(), HubError> {
    check_field("legal entity name", &p.legal_name, 200)?;
    check_field("website", &p.website, 200)?;
    let w = p.website.trim().to_ascii_lowercase();
    if !(w.starts_with("https://") || w.starts_with("http://")) || w.contains(char::is_whitespace) {
        return Err(HubError::InvalidInput(
            "the website must be an http:// or https:// address".into(),
        ));
    }
    check_field("phone", &p.phone, 40)?;
    if !p
        .phone
        .trim()
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        || p.phone.chars().filter(char::is_ascii_digit).count() < 5
    {
        return Err(HubError::InvalidInput(
            "the phone number must be digits, spaces and + - ( ) . only, with at least 5 digits"
                .into(),
        ));
    }
    check_field("email", &p.email, 254)?;
    let e = p.email.trim();
    match e.split_once('@') {
        Some((local, domain))
            if !local.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace) => {}
        _ => {
            return Err(HubError::InvalidInput(
                "the email must be an address like name@example.com".into(),
            ));
        }
    }
    Ok(())
}

impl Hub {
    /// The program a namespace is in: `library` is official; an organization may hold an
    /// approved Verified Publisher or Sponsored Open Source membership.
    pub async fn program_of(&self, namespace: &str) -> Result<Option<Badge>, HubError> {
        if namespace == OFFICIAL_NAMESPACE {
            return Ok(Some(Badge::Official));
        }
        let (program, _) = self.db.namespace_program(namespace).await?;
        Ok(program.as_deref().and_then(Badge::parse))
    }

    /// An owner of `org` applies to a program with the publisher profile.
    pub async fn apply_program(
        &self,
        who: &User,
        org: &str,
        program: Badge,
        profile: PublisherProfile,
    ) -> Result<i64, HubError> {
        if program == Badge::Official {
            return Err(HubError::InvalidInput(
                "official images are the library namespace; apply to verified_publisher or open_source".into(),
            ));
        }
        if self.db.namespace_kind(org).await? != Some(NamespaceKind::Org) {
            return Err(HubError::NotFound(format!("organization {org:?}")));
        }
        let role = self.db.org_role(org, who.id).await?;
        if role.is_none() && !who.acts_as_admin() {
            return Err(HubError::NotFound(format!("organization {org:?}")));
        }
        let owner = role == Some(OrgRole::Owner) && who.full_authority();
        if !(owner || who.acts_as_admin()) {
            return Err(HubError::Forbidden(format!(
                "only owners of {org}, signed in with their password or an admin-scope token, can apply to a program"
            )));
        }
        check_profile(&profile)?;
        let logo = check_profile_logo(&profile.logo)?;
        let pending = || {
            HubError::Conflict(format!(
                "{org} already has a pending application to the {} program",
                program.label()
            ))
        };
        // Checked before the logo is stored, so refused applications store nothing.
        if self.db.has_pending_application(org, program.slug()).await? {
            return Err(pending());
        }
        let digest = Digest::sha256_of(&profile.logo).to_string();
        self.db
            .put_logo(&digest, logo.media_type, &profile.logo)
            .await?;
        self.db
            .create_application(&NewApplication {
                namespace: org,
                program: program.slug(),
                legal_name: profile.legal_name.trim(),
                website: profile.website.trim(),
                phone: profile.phone.trim(),
                email: profile.email.trim(),
                logo: &digest,
                applied_by: who.id,
            })
            .await?
            .ok_or_else(pending)
    }

    /// An organization's applications (members and administrators).
    pub async fn org_applications(
        &self,
        who: &User,
        org: &str,
    ) -> Result<Vec<ApplicationRow>, HubError> {
        if !who.acts_as_admin() && self.db.org_role(org, who.id).await?.is_none() {
            return Err(HubError::NotFound(format!("organization {org:?}")));
        }
        Ok(self.db.applications(Some(org), None, 0, 100).await?.1)
    }

    /// Applications for administrators, newest first, optionally with one status.
    pub async fn all_applications(
        &self,
        who: &User,
        status: Option<&str>,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<ApplicationRow>), HubError> {
        if !who.acts_as_admin() {
            return Err(HubError::Forbidden(
                "only administrators (signed in with their password or an admin-scope token) review program applications".into(),
            ));
        }
        if let Some(s) = status
            && !["pending", "approved", "rejected", "revoked"].contains(&s)
        {
            return Err(HubError::InvalidInput(format!(
                "{s:?} is not a status; use pending, approved, rejected or revoked"
            )));
        }
        Ok(self.db.applications(None, status, offset, limit).await?)
    }

    /// An administrator decides: approve or reject a pending application, revoke an
    /// approved one.
    pub async fn decide_program(
        &self,
        who: &User,
        id: i64,
        decision: Decision,
        note: &str,
    ) -> Result<ApplicationRow, HubError> {
        if !who.acts_as_admin() {
            return Err(HubError::Forbidden(
                "only administrators (signed in with their password or an admin-scope token) decide program applications".into(),
            ));
        }
        let app = self
            .db
            .application(id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("application {id}")))?;
        let (from, to): (&[&str], &str) = match decision {
            Decision::Approve => (&["pending"], "approved"),
            Decision::Reject => (&["pending"], "rejected"),
            Decision::Revoke => (&["approved"], "revoked"),
        };
        let note: String = note.chars().filter(|c| !c.is_control()).take(500).collect();
        if !self
            .db
            .decide_application(id, from, to, who.id, &note)
            .await?
        {
            return Err(HubError::Conflict(format!(
                "application {id} is {}; only {} applications can be {to}",
                app.status,
                from.join(" or ")
            )));
        }
        self.decisions.clear();
        self.db
            .application(id)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("application {id}")))
    }
}
