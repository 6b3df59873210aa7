//! Access decisions: what a principal may do to a repository.

use wharf_db::{NamespaceKind, OrgRole, RepoPermission};
use wharf_oci::{OFFICIAL_NAMESPACE, RepoName};

use crate::{Hub, HubError};

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub is_admin: bool,
    /// The most this sign-in may do: everything with a password, the token's scope with an
    /// access token.
    pub cap: Actions,
    /// The access token used to sign in, if any.
    pub token_id: Option<String>,
    /// For an organization access token: the organization it acts for (and only there).
    pub org_token: Option<String>,
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    User(User),
}

impl Principal {
    pub fn user(&self) -> Option<&User> {
        match self {
            Self::Anonymous => None,
            Self::User(u) => Some(u),
        }
    }
}

/// Registry actions on one repository.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Actions {
    pub pull: bool,
    pub push: bool,
    pub delete: bool,
}

impl Actions {
    pub const NONE: Self = Self {
        pull: false,
        push: false,
        delete: false,
    };
    pub const PULL: Self = Self {
        pull: true,
        push: false,
        delete: false,
    };
    pub const PUSH: Self = Self {
        pull: true,
        push: true,
        delete: false,
    };
    pub const DELETE: Self = Self {
        pull: false,
        push: false,
        delete: true,
    };
    pub const ALL: Self = Self {
        pull: true,
        push: true,
        delete: true,
    };

    /// Parses the actions of a token scope (`pull,push`, `*`); unknown words are ignored.
    pub fn parse(list: &str) -> Self {
        let mut a = Self::NONE;
        for w in list.split(',') {
            match w.trim() {
                "pull" => a.pull = true,
                "push" => a.push = true,
                "delete" => a.delete = true,
                "*" => a = Self::ALL,
                _ => {}
            }
        }
        a
    }

    pub fn names(self) -> Vec<&'static str> {
        let mut v = Vec::new();
        if self.pull {
            v.push("pull");
        }
        if self.push {
            v.push("push");
        }
        if self.delete {
            v.push("delete");
        }
        v
    }

    pub fn intersect(self, other: Self) -> Self {
        Self {
            pull: self.pull && other.pull,
            push: self.push && other.push,
            delete: self.delete && other.delete,
        }
    }

    /// Whether every action in `needed` is in `self`.
    pub fn covers(self, needed: Self) -> bool {
        (!needed.pull || self.pull)
            && (!needed.push || self.push)
            && (!needed.delete || self.delete)
    }
}

impl Hub {
    /// What `who` may do to `repo`. A repository that does not exist is treated like a private
    /// one, so that nobody can tell a private repository from a missing one: only those who
    /// could create it may pull from it.
    ///
    /// Decisions are cached on this node for `DECISION_TTL`: a change of privacy, membership
    /// or grant takes at most that long to reach every node.
    pub async fn actions_for(&self, who: &Principal, repo: &RepoName) -> Result<Actions, HubError> {
        let key = decision_key(who, repo);
        if let Some(a) = self.decisions.get(&key) {
            return Ok(a);
        }
        let (a, exists) = self.decide(who, repo).await?;
        // A repository can appear at any moment (first push, on any node): only decisions
        // about existing repositories are reused.
        if exists {
            self.decisions.put(key, a);
        }
        Ok(a)
    }

    /// The decision, and whether the repository exists.
    async fn decide(&self, who: &Principal, repo: &RepoName) -> Result<(Actions, bool), HubError> {
        let exists = self.db.repo_id(repo).await?.is_some();
        Ok((self.decide_for(who, repo, exists).await?, exists))
    }

    async fn decide_for(
        &self,
        who: &Principal,
        repo: &RepoName,
        exists: bool,
    ) -> Result<Actions, HubError> {
        let namespace = repo.namespace();
        let private = exists && self.db.repo_is_private(repo.as_str()).await?;
        let public_pull = exists && !private;
        let Principal::User(user) = who else {
            return Ok(if public_pull {
                Actions::PULL
            } else {
                Actions::NONE
            });
        };
        if let Some(org) = &user.org_token {
            // An organization token acts in its organization's namespace, nowhere else.
            let inside = namespace == org;
            return Ok(Actions {
                pull: public_pull || inside,
                push: inside,
                delete: inside,
            }
            .intersect(user.cap));
        }
        if user.is_admin {
            return Ok(Actions::ALL.intersect(user.cap));
        }
        let (write, read) = if namespace == OFFICIAL_NAMESPACE {
            (false, false)
        } else {
            match self.db.namespace_kind(namespace).await? {
                Some(NamespaceKind::User) => {
                    let own = namespace == user.name;
                    (own, own)
                }
                Some(NamespaceKind::Org) => match self.db.org_role(namespace, user.id).await? {
                    Some(OrgRole::Owner | OrgRole::Editor) => (true, true),
                    Some(OrgRole::Member) => (false, true),
                    None => (false, false),
                },
                None => (false, false),
            }
        };
        let granted = match self.db.repo_permission(repo.as_str(), user.id).await? {
            Some(RepoPermission::Admin) => Actions::ALL,
            Some(RepoPermission::Write) => Actions::PUSH,
            Some(RepoPermission::Read) => Actions::PULL,
            None => Actions::NONE,
        };
        Ok(Actions {
            pull: read || public_pull || granted.pull,
            push: write || granted.push,
            delete: write || granted.delete,
        }
        .intersect(user.cap))
    }
}

/// How long an access decision is reused on this node.
pub const DECISION_TTL: std::time::Duration = std::time::Duration::from_secs(2);
const MAX_DECISIONS: usize = 100_000;

fn decision_key(who: &Principal, repo: &RepoName) -> String {
    match who {
        Principal::Anonymous => format!("-\n{repo}"),
        Principal::User(u) => format!(
            "{}\n{}\n{}\n{}\n{repo}",
            u.id,
            u.token_id.as_deref().unwrap_or(""),
            u.org_token.as_deref().unwrap_or(""),
            u.cap.names().join(",")
        ),
    }
}

/// A small time-bounded cache of access decisions.
#[derive(Debug, Default)]
pub(crate) struct Decisions {
    map: std::sync::RwLock<std::collections::HashMap<String, (std::time::Instant, Actions)>>,
}

impl Decisions {
    fn get(&self, key: &str) -> Option<Actions> {
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < DECISION_TTL)
            .map(|(_, a)| *a)
    }

    fn put(&self, key: String, actions: Actions) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_DECISIONS {
            map.retain(|_, (at, _)| at.elapsed() < DECISION_TTL);
            if map.len() >= MAX_DECISIONS {
                map.clear();
            }
        }
        map.insert(key, (std::time::Instant::now(), actions));
    }

    /// Forgets every decision (after a change made through this node).
    pub(crate) fn clear(&self) {
        self.map.write().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl User {
    /// Whether this sign-in carries the user's whole authority: a password, or a personal
    /// access token of scope admin. Managing tokens, reviewing programs and acting as an
    /// organization's owner need it; a narrower token or an organization token does not do.
    pub fn full_authority(&self) -> bool {
        self.token_id.is_none() || (self.cap == Actions::ALL && self.org_token.is_none())
    }

    /// An administrator with their whole authority (see `full_authority`).
    pub fn acts_as_admin(&self) -> bool {
        self.is_admin && self.full_authority()
    }

    /// A user signed in with their password: no cap beyond their rights.
    pub fn password(id: i64, name: String, is_admin: bool) -> Self {
        Self {
            id,
            name,
            is_admin,
            cap: Actions::ALL,
            token_id: None,
            org_token: None,
        }
    }
}

impl Hub {
    /// Creates a team in an organization.
    pub async fn add_team(&self, org: &str, team: &str) -> Result<(), HubError> {
        crate::validate_account_name(team)?;
        if self.db.create_team(org, team).await? {
            Ok(())
        } else {
            Err(HubError::NotFound(format!("organization {org:?}")))
        }
    }

    /// Adds a user to a team; the user must be a member of the team's organization.
    pub async fn add_team_member(&self, org: &str, team: &str, user: &str) -> Result<(), HubError> {
        let team_id = self
            .db
            .team_id(org, team)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("team {org}/{team}")))?;
        let u = self
            .user(user)
            .await?
            .ok_or_else(|| HubError::NotFound(format!("user {user:?}")))?;
        if self.db.org_role(org, u.id).await?.is_none() {
            return Err(HubError::InvalidInput(format!(
                "{user} is not a member of {org}; add them with `wharf org member {org} {user} --role member` first"
            )));
        }
        self.db.add_team_member(team_id, u.id).await?;
        self.decisions.clear();
        Ok(())
    }

    /// Whether `who` may create repositories in `namespace`: their own, an organization they
    /// own or edit, or anywhere for an administrator (within the sign-in's cap).
    pub async fn may_create_in(&self, who: &Principal, namespace: &str) -> Result<bool, HubError> {
        let Principal::User(user) = who else {
            return Ok(false);
        };
        if !user.cap.push {
            return Ok(false);
        }
        if let Some(org) = &user.org_token {
            return Ok(org == namespace);
        }
        if user.is_admin || user.name == namespace {
            return Ok(true);
        }
        Ok(matches!(
            self.db.org_role(namespace, user.id).await?,
            Some(OrgRole::Owner | OrgRole::Editor)
        ))
    }

    /// Whether `viewer` may see `org`'s teams and members (members and administrators).
    async fn org_visible(&self, viewer: &User, org: &str) -> Result<bool, HubError> {
        Ok(viewer.is_admin || self.db.org_role(org, viewer.id).await?.is_some())
    }

    /// Whether `viewer` may manage `org` (owners and administrators).
    pub async fn org_owner(&self, viewer: &User, org: &str) -> Result<bool, HubError> {
        Ok(viewer.is_admin || self.db.org_role(org, viewer.id).await? == Some(OrgRole::Owner))
    }

    /// An organization's teams with member counts; outsiders get "not found".
    pub async fn teams(
        &self,
        viewer: &User,
        org: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<(String, u64)>), HubError> {
        if !self.org_visible(viewer, org).await? {
            return Err(HubError::NotFound(format!("organization {org:?}")));
        }
        Ok(self.db.teams(org, offset, limit).await?)
    }

    /// A team's members; outsiders get "not found".
    pub async fn team_members(
        &self,
        viewer: &User,
        org: &str,
        team: &str,
        offset: u32,
        limit: u32,
    ) -> Result<(u64, Vec<String>), HubError> {
        let not_found = || HubError::NotFound(format!("team {org}/{team}"));
        if !self.org_visible(viewer, org).await? {
            return Err(not_found());
        }
        let id = self.db.team_id(org, team).await?.ok_or_else(not_found)?;
        Ok(self.db.team_members(id, offset, limit).await?)
    }

    /// Grants `permission` on `repo` to a user (`alice`) or a team (`acme/devs`).
    pub async fn grant(
        &self,
        repo: &RepoName,
        grantee: &str,
        permission: RepoPermission,
    ) -> Result<(), HubError> {
        let (team, id) = match grantee.split_once('/') {
            Some((org, team)) => (
                true,
                self.db
                    .team_id(org, team)
                    .await?
                    .ok_or_else(|| HubError::NotFound(format!("team {grantee}")))?,
            ),
            None => (
                false,
                self.user(grantee)
                    .await?
                    .ok_or_else(|| HubError::NotFound(format!("user {grantee:?}")))?
                    .id,
            ),
        };
        self.db
            .grant_repo_permission(repo, team, id, permission)
            .await?;
        self.decisions.clear();
        Ok(())
    }

    /// Makes a repository private (only those who may read its namespace see it) or public.
    pub async fn set_repo_private(&self, repo: &RepoName, private: bool) -> Result<(), HubError> {
        self.db.set_repo_private(repo, private).await?;
        self.decisions.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_sets() {
        assert_eq!(Actions::parse("pull,push"), Actions::PUSH);
        assert_eq!(Actions::parse("*"), Actions::ALL);
        assert_eq!(Actions::parse("nonsense"), Actions::NONE);
        assert!(Actions::ALL.covers(Actions::PUSH));
        assert!(!Actions::PULL.covers(Actions::PUSH));
        assert_eq!(Actions::ALL.intersect(Actions::PULL), Actions::PULL);
        assert_eq!(Actions::PUSH.names(), ["pull", "push"]);
    }
}
