-- Organization access tokens: an access token that belongs to an organization (user_id is
-- the member who created it) and acts on the organization's namespace only.
ALTER TABLE access_tokens ADD COLUMN org_id BIGINT REFERENCES orgs (id) ON DELETE CASCADE;
